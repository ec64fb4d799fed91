"""The Jupyter annotator: ``samkit.Annotator(image)`` (needs ``pip install samkit[notebook]``)."""

from .annotator import Annotator

__all__ = ["Annotator"]
