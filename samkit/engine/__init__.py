"""The shared backend: tile grid, embedding store, background worker, sessions."""

from .mask import Mask

__all__ = ["Mask"]
