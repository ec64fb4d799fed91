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

from typing import NamedTuple

import numpy as np
from scipy import ndimage

from ..engine.mask import tight
from ..engine.stitch import connected_to


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


class Found(NamedTuple):
    """One mask a window's prompts found: ``crop`` at ``offset`` (y, x) in the window, with its scores."""

    crop: np.ndarray
    offset: tuple[int, int]
    score: float
    stability: float


def window_objects(decode_points, shape: tuple[int, int], settings, inner_edges=(None,) * 4) -> list[Found]:
    """SAM's automatic masks of one window (its point grid), after filtering and NMS.

    Parameters
    ----------
    decode_points : callable
        The window's ``point_decoder`` (see :mod:`samkit.engine.models`).
    shape : (h, w)
        The window's size.
    settings : samkit.automatic.Settings
    inner_edges : (y0, x0, y1, x1)
        Window coordinates of the window's edges that are not image edges
        (None for image edges); see :func:`clean`.
    """
    return filtered(decode_points, point_grid(shape, settings.points_per_side), settings, inner_edges)


def filtered(decode_points, points: np.ndarray, settings, inner_edges=(None,) * 4) -> list[Found]:
    """The masks of single-point prompts at ``points`` (n, 2) that pass SAM's filters, NMS and ``min_area``."""
    found = decode_points(
        points, multimask=True, min_score=settings.pred_iou_thresh, min_stability=settings.stability_score_thresh,
        stability_offset=settings.stability_score_offset, batch=settings.points_per_batch,
    )  # fmt: skip
    return suppress(masks_of(found), settings, inner_edges)


def masks_of(found) -> list[Found]:
    """:class:`Found` masks from a ``point_decoder``'s PointMasks."""
    offsets = [tuple(o) for o in found.offsets.tolist()]
    return [Found(c, o, s, t) for c, o, s, t in zip(found.crops, offsets, found.score.tolist(), found.stability.tolist())]


def suppress(objects: list[Found], settings, inner_edges=(None,) * 4) -> list[Found]:
    """Box NMS on ``objects``, then (with ``min_area``) holes and islands removed and NMS again."""
    if not objects:
        return []
    objects = [objects[i] for i in box_nms(_boxes(objects), [o.score for o in objects], settings.box_nms_thresh)]
    if not settings.min_area:
        return objects
    cleaned = []
    for found in objects:
        crop, offset = tight(clean(found.crop, found.offset, settings.min_area, inner_edges), found.offset)
        if crop.size:
            cleaned.append(found._replace(crop=crop, offset=offset))
    if not cleaned:
        return []
    # cleaning changed boxes: suppress again
    return [cleaned[i] for i in box_nms(_boxes(cleaned), [o.score for o in cleaned], settings.box_nms_thresh)]


def paint(objects: list[Found], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window labels (h, w) int32, 1..n, with each label's (n,) score and stability.

    Masks are painted largest first, so smaller ones stay on top; masks hidden
    entirely by later ones are left out; ids follow the painting order.
    """
    labels = np.zeros(shape, np.int32)
    order = sorted(range(len(objects)), key=lambda i: (-int(objects[i].crop.sum()), tuple(objects[i].offset)))
    for k, i in enumerate(order, start=1):
        crop, (oy, ox) = objects[i].crop, objects[i].offset
        labels[oy : oy + crop.shape[0], ox : ox + crop.shape[1]][crop] = k
    visible = np.unique(labels[labels > 0])
    lookup = np.zeros(len(order) + 1, np.int32)
    lookup[visible] = np.arange(1, len(visible) + 1)
    painted = [objects[order[k - 1]] for k in visible]
    score = np.array([o.score for o in painted], np.float32)
    stability = np.array([o.stability for o in painted], np.float32)
    return lookup[labels], score, stability


def _boxes(objects) -> np.ndarray:
    return np.array([(o.offset[0], o.offset[1], o.offset[0] + o.crop.shape[0], o.offset[1] + o.crop.shape[1])
                     for o in objects], np.float64).reshape(-1, 4)  # fmt: skip
