"""Window models whose "embedding" is a label image of the window.

A prompt is answered by looking up the object it designates. The oracle
(labels = ground truth) and the classical fallback (labels = a watershed of
the window) are both this; they differ only in how a window is labelled.

Decoding rule, on the window's labels:

* positive points: the object under most of them (ties: the first point's);
  positive points on background give an empty mask;
* otherwise a box: the object that best fills it, i.e. with the highest IoU
  between the object (within the window) and the box rectangle;
* negative points and ``mask_input`` are accepted and do not change the answer
  (an object is either designated or not).

For automatic segmentation, :meth:`LabelLookupModel.point_decoder` answers
each of many single-point prompts on its own, with the object under it
(score and stability 1; background points give no mask).
"""

from __future__ import annotations

import numpy as np

from scipy import ndimage

from .mask import tight
from .models import Decoded, PointMasks, empty_point_masks


class LabelLookupModel:
    """Base class: subclasses implement :meth:`label_window`."""

    is_sam = False
    accepts_mask_input = False
    name = "label lookup"
    dtype = "int32"

    def label_window(self, pixels: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
        """(h, w) integer labels of one window, 0 = background."""
        raise NotImplementedError

    def embedding_spec(self, window_shape: tuple[int, int]) -> tuple[tuple[int, ...], str]:
        return tuple(window_shape), self.dtype

    def signature(self) -> dict:
        return {"model": self.name}

    def embed(self, pixels: np.ndarray, windows) -> np.ndarray:
        return np.stack([self.label_window(p, w).astype(self.dtype) for p, w in zip(pixels, windows)])

    def decoder(self, embedding: np.ndarray, window):
        objects = np.asarray(embedding)

        def decode(points=None, labels=None, boxes=None, mask_input=None) -> list[Decoded]:
            if boxes is None:
                return [_decoded(objects, _pick_by_points(objects, points, labels))]
            return [_decoded(objects, _pick_by_points(objects, points, labels) or _pick_by_box(objects, b)) for b in boxes]

        return decode

    def point_decoder(self, embedding: np.ndarray, window):
        """Many single-point prompts: one mask per point on an object (see :mod:`samkit.engine.models`)."""
        objects = np.asarray(embedding)

        def decode_points(points, *, multimask=True, min_score=0.0, min_stability=0.0, stability_offset=1.0, batch=None):
            pts = np.asarray(points, float).reshape(-1, 2)
            h, w = objects.shape
            hits = objects[np.clip(pts[:, 0].astype(int), 0, h - 1), np.clip(pts[:, 1].astype(int), 0, w - 1)]
            point = np.flatnonzero(hits > 0)
            if point.size == 0 or min_score > 1 or min_stability > 1:
                return empty_point_masks()
            ids, which = np.unique(hits[point], return_inverse=True)
            designated = np.isin(objects, ids)
            dense = np.zeros(objects.shape, np.int32)  # the designated objects numbered 1..n, for find_objects
            dense[designated] = np.searchsorted(ids, objects[designated]) + 1
            crops, offsets = [], []
            for k, box in enumerate(ndimage.find_objects(dense, len(ids)), start=1):
                crops.append(dense[box] == k)
                offsets.append((box[0].start, box[1].start))
            ones = np.ones(point.size, np.float32)
            return PointMasks(point, ones, ones.copy(), [crops[k] for k in which], np.array(offsets, int)[which])

        return decode_points


def _pick_by_points(objects: np.ndarray, points, labels) -> int:
    if points is None:
        return 0
    pts = np.asarray(points, float).reshape(-1, 2)
    positive = pts[np.asarray(labels).reshape(-1) == 1]
    if len(positive) == 0:
        return 0
    h, w = objects.shape
    ys = np.clip(positive[:, 0].astype(int), 0, h - 1)
    xs = np.clip(positive[:, 1].astype(int), 0, w - 1)
    hits = objects[ys, xs]
    ids, counts = np.unique(hits[hits > 0], return_counts=True)
    if len(ids) == 0:
        return 0
    best = ids[counts == counts.max()]
    first = next(h for h in hits if h in best)
    return int(first)


def _pick_by_box(objects: np.ndarray, box) -> int:
    y0, x0, y1, x1 = (int(round(float(v))) for v in box)
    y0, x0 = max(y0, 0), max(x0, 0)
    inside = objects[y0:y1, x0:x1]
    ids, inner = np.unique(inside[inside > 0], return_counts=True)
    if len(ids) == 0:
        return 0
    total = np.bincount(objects.ravel(), minlength=int(ids.max()) + 1)[ids]
    box_area = inside.size
    iou = inner / (total + box_area - inner)
    return int(ids[np.argmax(iou)])


def _decoded(objects: np.ndarray, label: int) -> Decoded:
    if label == 0:
        return Decoded(np.zeros((0, 0), bool), (0, 0), 0.0)
    crop, offset = tight(objects == label)
    return Decoded(crop, offset, 1.0)
