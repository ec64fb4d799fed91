"""PLACEHOLDER: the registry helper replaces this file."""
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str
    model_type: str


MODELS: dict = {}


def list_models():
    return list(MODELS)


