"""A classical, weight-free stand-in for SAM, for when no checkpoint is at hand.

Same API as :class:`samkit.Predictor` (``set_image`` / ``predict``) so the
demo and front ends run without downloads. It is NOT SAM and is always
announced as such. It suits bright or dark blob-like objects (nuclei, cells)
on a plain background:

* ``set_image``: smooth, split foreground from background by Otsu's
  threshold (polarity chosen so the foreground is the minority), and cut the
  foreground into objects by a watershed on its distance transform, seeded no
  closer than the median object radius.
* a positive point selects the object under it (clicks on background grow a
  region of similar intensity instead); negative points remove the objects
  under them; a box selects the objects whose centre lies in it, clipped to
  the box (or, if none, Otsu's foreground inside the box).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import filters, measure, segmentation, transform
from skimage.feature import peak_local_max

from ..errors import InvalidPromptError, NotReadyError
from ..intensity import to_rgb8
from ..predictor import Prediction
from ..prompts import LOWRES_SIZE, check_boxes, check_points

NAME = "classical (Otsu + watershed; not SAM)"


class ClassicalPredictor:
    """Click-to-object segmentation by thresholding and watershed (see module docstring)."""

    model_type = "classical"

    def __init__(self, *, smoothing: float = 1.0) -> None:
        self.smoothing = smoothing
        self.grey: np.ndarray | None = None
        self.objects: np.ndarray | None = None
        self.image_shape: tuple[int, int] | None = None

    def set_image(self, image, *, value_range: tuple[float, float] | None = None) -> None:
        rgb = to_rgb8(image, value_range=value_range)
        grey = filters.gaussian(rgb.mean(axis=2), sigma=self.smoothing, preserve_range=True)
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
        self.grey = grey
        self.objects = segmentation.watershed(-distance, markers, mask=foreground)
        self.image_shape = grey.shape

    def predict(self, points=None, labels=None, box=None, mask_input=None, multimask: bool = True) -> Prediction:
        """Masks (1, H, W) with score 1.0; ``multimask`` and ``mask_input`` are accepted and ignored."""
        if self.objects is None:
            raise NotReadyError("no image is set; call set_image(image) before predict()")
        if points is None and box is None:
            raise InvalidPromptError("the classical model needs points (+ labels) or a box")
        mask = np.zeros(self.image_shape, bool)
        if box is not None:
            boxes = check_boxes(box, self.image_shape)
            if len(boxes) > 1:
                return _stack([self.predict(points, labels, b) for b in boxes])
            mask = self._in_box(boxes[0].astype(int))
        if points is not None:
            pts, lab = check_points(points, labels, self.image_shape)
            for (y, x), positive in zip(pts[0].astype(int), lab[0]):
                region = self._at(y, x)
                mask = mask | region if positive else mask & ~region
        return _prediction(mask)

    def _at(self, y: int, x: int) -> np.ndarray:
        label = self.objects[y, x]
        if label:
            return self.objects == label
        tolerance = 0.1 * max(float(np.ptp(self.grey)), 1e-6)
        return segmentation.flood(self.grey, (y, x), tolerance=tolerance)

    def _in_box(self, box: np.ndarray) -> np.ndarray:
        y0, x0, y1, x1 = box
        inside = np.zeros(self.image_shape, bool)
        inside[y0:y1, x0:x1] = True
        mask = np.zeros(self.image_shape, bool)
        for region in measure.regionprops(self.objects * inside):
            cy, cx = region.centroid
            if y0 <= cy < y1 and x0 <= cx < x1:
                mask |= self.objects == region.label
        if not mask.any():
            crop = self.grey[y0:y1, x0:x1]
            if np.ptp(crop) > 0:
                fg = crop > filters.threshold_otsu(crop)
                mask[y0:y1, x0:x1] = fg if fg.mean() <= 0.5 else ~fg
        return mask & inside


def _prediction(mask: np.ndarray) -> Prediction:
    lowres = transform.resize(mask.astype(np.float32), (LOWRES_SIZE, LOWRES_SIZE), order=1)
    return Prediction(mask[None], np.ones(1, np.float32), ((lowres - 0.5) * 20)[None].astype(np.float32))


def _stack(predictions: list[Prediction]) -> Prediction:
    return Prediction(*(np.stack(parts) for parts in zip(*predictions)))
