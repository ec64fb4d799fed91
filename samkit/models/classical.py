"""A classical, weight-free stand-in for SAM, for when no checkpoint is at hand.

A window model (see :mod:`samkit.engine.models`), so sessions, the demo and
the front ends run without downloads. It is NOT SAM and is always announced
as such. It suits bright or dark blob-like objects (nuclei, cells) on a
plain background. Each window is labelled once ("embedding"):

* smooth, split foreground from background by Otsu's threshold (polarity
  chosen so the foreground is the minority), and
* cut the foreground into objects by a watershed on its distance transform,
  seeded no closer than the median object radius;

then prompts pick objects as described in :mod:`samkit.engine.lookup` (a
click selects the object under it, a box the object that best fills it).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, measure, segmentation
from skimage.feature import peak_local_max

from ..engine.lookup import LabelLookupModel

NAME = "classical (Otsu + watershed; not SAM)"


def watershed_objects(rgb: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """(h, w) int32 object labels of an (h, w, 3) uint8 image, by the rule in this module's docstring."""
    grey = filters.gaussian(rgb.mean(axis=2), sigma=smoothing, preserve_range=True)
    foreground = grey > filters.threshold_otsu(grey) if np.ptp(grey) > 0 else np.zeros(grey.shape, bool)
    if foreground.mean() > 0.5:  # dark objects on a bright background
        foreground = ~foreground
    distance = ndimage.distance_transform_edt(foreground)
    components = measure.label(foreground)
    # seeds no closer than the typical object radius, so round objects stay whole
    radii = ndimage.maximum(distance, components, np.arange(1, components.max() + 1))
    min_distance = max(3, int(np.median(radii))) if components.max() else 3
    peaks = peak_local_max(distance, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(grey.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return segmentation.watershed(-distance, markers, mask=foreground).astype(np.int32)


class ClassicalModel(LabelLookupModel):
    """Click-to-object segmentation by thresholding and watershed (see module docstring)."""

    name = NAME

    def __init__(self, *, smoothing: float = 1.0) -> None:
        self.smoothing = smoothing

    def signature(self) -> dict:
        return {"model": "classical", "smoothing": self.smoothing, "version": 1}

    def label_window(self, pixels: np.ndarray, window) -> np.ndarray:
        return watershed_objects(pixels, self.smoothing)
