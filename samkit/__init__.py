"""samkit: Segment Anything for scientists."""

from . import data, errors
from .engine import Annotation, EmbedJob, Mask, Session
from .io import Image, imread, open_image
from .labels import LabelImage
from .measurement import export_table, measure, read_table, save_labels, summarize
from .models import list_models, load_model
from .predictor import BestMask, Prediction, Predictor

__version__ = "0.1.0"

__all__ = [
    "Annotation",
    "Annotator",
    "BestMask",
    "EmbedJob",
    "Image",
    "LabelImage",
    "Mask",
    "Prediction",
    "Predictor",
    "Session",
    "data",
    "errors",
    "export_table",
    "imread",
    "list_models",
    "load_model",
    "measure",
    "metrics",
    "open_image",
    "read_table",
    "save_labels",
    "segment_all",
    "segment_all_many",
    "summarize",
    "__version__",
]


def __getattr__(name):
    if name in ("segment_all", "segment_all_many", "metrics"):  # imported on first use
        from importlib import import_module

        if name == "metrics":
            return import_module(".metrics", __name__)
        return getattr(import_module(".automatic", __name__), name)
    if name == "Annotator":  # the notebook widget needs ipywidgets and ipycanvas: imported on first use
        try:
            from .widget import Annotator
        except ImportError as e:
            raise ImportError(f"samkit.Annotator needs the notebook extra: pip install 'samkit[notebook]' ({e})") from e
        return Annotator
    raise AttributeError(f"module 'samkit' has no attribute {name!r}")
