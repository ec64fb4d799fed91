"""The exact oracle: ground-truth objects as a window model.

:class:`OracleModel` stands in for SAM with a perfect answer: clicked on an
object, it returns that object of a ground-truth label image, clipped to the
window the model would see. Run a :class:`samkit.Session` (or the widget, or
the plugin) with it on your own annotated images to check that tile size,
halo and stitching reproduce every object before trusting them with SAM.
samkit's own tests use it on real images with real ground truth.
"""

from __future__ import annotations

import time

import numpy as np

from ..engine.lookup import LabelLookupModel
from ..errors import InvalidImageError


class OracleModel(LabelLookupModel):
    """A window model that answers prompts with ground-truth objects.

    Parameters
    ----------
    labels : (H, W) integer array-like
        Ground-truth instance labels (0 = background) at the size of the
        image to be segmented (level 0). Read window by window, so a zarr
        or lazily read label image works.
    delay : float
        Seconds each window's embedding takes, like a real encoder (to try
        progress bars, cancelling and scale-out without SAM's cost).

    Notes
    -----
    A point selects the object under it, a box the object that best fills
    it (see :mod:`samkit.engine.lookup`). Only the part of the object inside
    the window is returned: putting objects back together across windows is
    the engine's job, and what this model lets you test.
    """

    name = "oracle (ground truth; not SAM)"

    def __init__(self, labels, *, delay: float = 0.0) -> None:
        if len(getattr(labels, "shape", ())) != 2:
            raise InvalidImageError(f"ground-truth labels must be 2D (H, W), got shape {getattr(labels, 'shape', None)}")
        self.labels = labels
        self.delay = float(delay)

    def signature(self) -> dict:
        # every label, not a sample: embeddings cached on disk must not outlive a change of the truth
        from ..io.identity import pixel_digest

        return {"model": "oracle", "labels": pixel_digest(np.asarray(self.labels)).hex()}

    def label_window(self, pixels: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
        if self.delay:
            time.sleep(self.delay)
        y0, x0, y1, x1 = window
        crop = np.asarray(self.labels[y0:y1, x0:x1])
        h, w = pixels.shape[:2]
        if crop.shape != (h, w):  # a window of a coarser pyramid level: nearest-neighbour lookup
            ys = (np.arange(h) + 0.5) * crop.shape[0] / h
            xs = (np.arange(w) + 0.5) * crop.shape[1] / w
            crop = crop[ys.astype(int)[:, None], xs.astype(int)[None, :]]
        return crop
