"""napari-samkit: samkit's click-to-segment annotation and measurement in napari.

The plugin is a thin front end: segmentation, labels, undo and measurement
live in samkit's engine (:class:`samkit.Session`, :class:`samkit.Annotation`,
:class:`samkit.LabelImage`, :func:`samkit.measure`); this package wires napari
layers and buttons to it.
"""

__version__ = "0.1.0"

from ._annotator import Annotator
from ._reader import get_reader
from ._sample_data import nuclei, nuclei_with_truth
from ._widget import AnnotatorWidget

__all__ = ["Annotator", "AnnotatorWidget", "get_reader", "nuclei", "nuclei_with_truth", "__version__"]
