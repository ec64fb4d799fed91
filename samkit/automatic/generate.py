"""Automatic mask generation in one window: SAM's "segment everything", on a cached embedding.

The steps of SAM's automatic mask generator (Kirillov et al. 2023, and the
defaults of its reference implementation), written for samkit's windows:

1. a regular grid of ``points_per_side`` x ``points_per_side`` single-point
   prompts over the window (cell centres);
2. the prompts decoded in batches (three candidate masks each for SAM);
3. masks kept when their predicted IoU >= ``pred_iou_thresh`` and their
   stability score (IoU of the masks at logit thresholds +- ``offset``)
   >= ``stability_score_thresh``;
4. greedy non-maximum suppression on the masks' bounding boxes (IoU >
   ``box_nms_thresh``: the lower-scored mask goes);
5. with ``min_area``: holes and islands smaller than it removed from each
   mask (islands that touch an inner window edge are kept: they may be part
   of an object continuing into the next window), masks left smaller than
   it dropped, and boxes suppressed again;
6. the masks painted into a window label image, largest first, so a part
   found inside a larger mask stays visible on top of it.

Everything above the window (which window owns which pixel, merging objects
across windows, ids) is :mod:`samkit.automatic.stitch`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..engine.mask import tight
from ..engine.stitch import connected_to
from ..errors import InvalidSettingError


@dataclass(frozen=True)
class Settings:
    """The parameters of automatic mask generation (SAM's reference defaults).

    See :func:`samkit.segment_all` for what each one does.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_area: int = 0

    def __post_init__(self) -> None:
        for name in ("points_per_side", "points_per_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidSettingError(f"{name}={value!r}: must be a positive int")
        for name in ("pred_iou_thresh", "stability_score_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InvalidSettingError(f"{name}={getattr(self, name)!r}: must lie in [0, 1] (0 keeps every mask)")
        if not 0.0 < self.box_nms_thresh <= 1.0:
            raise InvalidSettingError(f"box_nms_thresh={self.box_nms_thresh!r}: must lie in (0, 1] (1 keeps all but exact duplicates)")
        if not self.stability_score_offset > 0:
            raise InvalidSettingError(f"stability_score_offset={self.stability_score_offset!r}: must be > 0 (SAM uses 1.0)")
        if isinstance(self.min_area, bool) or not isinstance(self.min_area, (int, np.integer)) or self.min_area < 0:
            raise InvalidSettingError(f"min_area={self.min_area!r}: must be an int >= 0 (pixels; 0 keeps every size)")


def point_grid(shape: tuple[int, int], points_per_side: int) -> np.ndarray:
    """(n * n, 2) (y, x) prompts at the cell centres of an n x n grid over a window of ``shape``."""
    n = points_per_side
    ys = (np.arange(n) + 0.5) * shape[0] / n
    xs = (np.arange(n) + 0.5) * shape[1] / n
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (y0, x0, y1, x1) box with (N, 4) boxes (end exclusive)."""
    inter_h = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    inter_w = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = inter_h * inter_w
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    A box is dropped when its IoU with a kept, higher-scored box exceeds
    ``threshold``; equal scores keep the earlier box.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    # boxes equal to a better-scored one are suppressed by it (IoU 1) or by what suppresses it: drop them first
    _, first = np.unique(boxes[order], axis=0, return_index=True)
    order = order[np.sort(first)]
    ranked = boxes[order]
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed[i + 1 :] |= box_iou(ranked[i], ranked[i + 1 :]) > threshold
    return order[np.array(keep, int)]


def clean(crop: np.ndarray, offset, min_area: int, inner_edges) -> np.ndarray:
    """``crop`` without holes and islands smaller than ``min_area`` (islands touching an inner edge stay).

    ``offset`` is where ``crop`` lies in the window; ``inner_edges`` is (y0,
    x0, y1, x1) in window coordinates: where the window's edges that are not
    image edges lie (None where the edge is an image edge).
    """
    # background touching the crop's border is outside the object, not a hole: pad it first
    filled = ~_drop_small(~np.pad(crop, 1), min_area, np.ones((3, 3), bool) ^ _CORNERS)[1:-1, 1:-1]
    kept = _drop_small(filled, min_area, np.ones((3, 3), bool))
    (oy, ox), (h, w) = offset, crop.shape
    y0, x0, y1, x1 = inner_edges
    touching = np.zeros_like(filled)  # put back islands on an inner window edge: their true size is unknown here
    touching[0] |= y0 is not None and oy == y0
    touching[:, 0] |= x0 is not None and ox == x0
    touching[-1] |= y1 is not None and oy + h == y1
    touching[:, -1] |= x1 is not None and ox + w == x1
    return kept | connected_to(filled & ~kept, touching) if touching.any() else kept


_CORNERS = np.array([[1, 0, 1], [0, 0, 0], [1, 0, 1]], bool)


def _drop_small(mask: np.ndarray, min_area: int, structure: np.ndarray) -> np.ndarray:
    """``mask`` without its connected components of fewer than ``min_area`` pixels."""
    components, _ = ndimage.label(mask, structure)
    small = np.bincount(components.ravel()) < min_area
    small[0] = False
    return mask & ~small[components]


def window_objects(decode_points, shape: tuple[int, int], settings: Settings, inner_edges=(None,) * 4) -> list:
    """Automatic masks of one window: [(crop, (y, x) offset, score)], after filtering and NMS.

    Parameters
    ----------
    decode_points : callable
        The window's ``point_decoder`` (see :mod:`samkit.engine.models`).
    shape : (h, w)
        The window's size.
    settings : Settings
    inner_edges : (y0, x0, y1, x1)
        Window coordinates of the window's edges that are not image edges
        (None for image edges); see :func:`clean`.
    """
    found = decode_points(
        point_grid(shape, settings.points_per_side), multimask=True, min_score=settings.pred_iou_thresh,
        min_stability=settings.stability_score_thresh, stability_offset=settings.stability_score_offset,
        batch=settings.points_per_batch,
    )
    crops, offsets, scores = found.crops, [tuple(o) for o in found.offsets.tolist()], found.score.tolist()
    keep = box_nms(_boxes(crops, offsets), found.score, settings.box_nms_thresh) if crops else []
    objects = [(crops[i], offsets[i], scores[i]) for i in keep]
    if settings.min_area > 0 and objects:
        cleaned = []
        for crop, offset, score in objects:
            crop, offset = tight(clean(crop, offset, settings.min_area, inner_edges), offset)
            if crop.size:
                cleaned.append((crop, offset, score))
        objects = []
        if cleaned:  # cleaning changed boxes: suppress again
            crops, offsets, scores = zip(*cleaned)
            objects = [cleaned[i] for i in box_nms(_boxes(crops, offsets), np.array(scores), settings.box_nms_thresh)]
    return objects


def paint(objects, shape: tuple[int, int]) -> np.ndarray:
    """Window labels (h, w) int32, 1..n: masks painted largest first, so smaller ones stay on top.

    Masks hidden entirely by later ones are left out; ids follow the painting order.
    """
    labels = np.zeros(shape, np.int32)
    order = sorted(range(len(objects)), key=lambda i: (-int(objects[i][0].sum()), tuple(objects[i][1])))
    for k, i in enumerate(order, start=1):
        crop, (oy, ox), _ = objects[i]
        labels[oy : oy + crop.shape[0], ox : ox + crop.shape[1]][crop] = k
    visible = np.unique(labels[labels > 0])
    lookup = np.zeros(len(order) + 1, np.int32)
    lookup[visible] = np.arange(1, len(visible) + 1)
    return lookup[labels]


def _boxes(crops, offsets) -> np.ndarray:
    return np.array([(oy, ox, oy + c.shape[0], ox + c.shape[1]) for c, (oy, ox) in zip(crops, offsets)], np.float64)
