"""SAM-family networks, the model registry and checkpoint loading."""

from .loading import load_model
from .registry import MODELS, ModelInfo, list_models
from .sam import MODEL_TYPES, Sam, build_sam

__all__ = ["MODELS", "MODEL_TYPES", "ModelInfo", "Sam", "build_sam", "list_models", "load_model"]
