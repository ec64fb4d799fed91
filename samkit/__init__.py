"""samkit: Segment Anything for scientists."""

from . import data, errors
from .models import list_models, load_model
from .predictor import Prediction, Predictor

__version__ = "0.1.0"

__all__ = ["Prediction", "Predictor", "data", "errors", "list_models", "load_model", "__version__"]
