"""The shared backend: tile grid, embedding store, background worker, sessions."""

from .annotation import Annotation
from .grid import TileGrid
from .mask import Mask
from .models import window_model
from .session import Session
from .worker import EmbedJob

__all__ = ["Annotation", "EmbedJob", "Mask", "Session", "TileGrid", "window_model"]
