"""SAM 2.1's image path: Hiera trunk, FPN neck, SAM 2's mask decoder (see :mod:`.model`)."""

from .checkpoint import detect_sam2_type, is_sam2, load_sam2
from .model import SAM2_MODEL_TYPES, Sam2, Sam2DecoderContext, Sam2Embedding, build_sam2

__all__ = [
    "SAM2_MODEL_TYPES",
    "Sam2",
    "Sam2DecoderContext",
    "Sam2Embedding",
    "build_sam2",
    "detect_sam2_type",
    "is_sam2",
    "load_sam2",
]
