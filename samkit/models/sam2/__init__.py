"""SAM 2.1: its image path (Hiera trunk, FPN neck, SAM 2's mask decoder; see :mod:`.model`) and its
memory path for following an object through frames (see :mod:`.tracker`)."""

from .checkpoint import detect_sam2_type, is_sam2, load_sam2
from .model import SAM2_MODEL_TYPES, Sam2, Sam2DecoderContext, Sam2Embedding, build_sam2
from .tracker import FrameEmbeddings, FrameResult, Sam2Tracker

__all__ = [
    "SAM2_MODEL_TYPES",
    "FrameEmbeddings",
    "FrameResult",
    "Sam2",
    "Sam2DecoderContext",
    "Sam2Embedding",
    "Sam2Tracker",
    "build_sam2",
    "detect_sam2_type",
    "is_sam2",
    "load_sam2",
]
