"""SAM-family networks, the model registry and checkpoint loading."""

from .loading import load_model
from .registry import MODELS, ModelInfo, list_models
from .sam import MODEL_TYPES, Sam, build_sam
from .sam2 import SAM2_MODEL_TYPES, Sam2, build_sam2

__all__ = [
    "MODELS", "MODEL_TYPES", "ModelInfo", "SAM2_MODEL_TYPES", "Sam", "Sam2",
    "build_sam", "build_sam2", "list_models", "load_model",
]
