"""Checking prompts given in image coordinates, (y, x) like numpy.

A point is (y, x) in pixels: pixel (i, j) covers [i, i+1) x [j, j+1), so a
point inside an (H, W) image has 0 <= y < H and 0 <= x < W. A box is
(y0, x0, y1, x1) with 0 <= y0 < y1 <= H and 0 <= x0 < x1 <= W.
Labels: 1 = the object (positive), 0 = not the object (negative).
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidPromptError

LOWRES_SIZE = 256  # side of SAM's low-res mask logits


def _finite_float(value, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidPromptError(f"{what} must be numeric, got {value!r}") from exc
    if not np.isfinite(arr).all():
        raise InvalidPromptError(f"{what} contain NaN or inf: {arr.tolist()}")
    return arr


def check_points(points, labels, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N, 2) or (B, N, 2) (y, x) points and their labels; return (B, N, 2), (B, N)."""
    if labels is None:
        raise InvalidPromptError("points were given without labels; pass labels (1 = object, 0 = background)")
    pts = _finite_float(points, "points")
    if pts.ndim == 2:
        pts = pts[None]
    if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[1] == 0:
        raise InvalidPromptError(f"points must have shape (N, 2) or (B, N, 2) as (y, x), got {np.shape(points)}")
    lab = np.asarray(labels)
    if lab.ndim == 1:
        lab = lab[None]
    if lab.shape != pts.shape[:2]:
        raise InvalidPromptError(f"labels shape {np.shape(labels)} does not match points shape {np.shape(points)}")
    if lab.dtype == bool:
        lab = lab.astype(np.int64)
    if not np.isin(lab, (0, 1)).all():
        raise InvalidPromptError(f"labels must be 1 (object) or 0 (background), got {np.unique(lab).tolist()}")
    height, width = shape
    outside = (pts[..., 0] < 0) | (pts[..., 0] >= height) | (pts[..., 1] < 0) | (pts[..., 1] >= width)
    if outside.any():
        bad = pts[outside][0].tolist()
        raise InvalidPromptError(f"point (y, x) = {bad} is outside the image of shape {(height, width)}")
    return pts, lab.astype(np.int64)


def check_boxes(boxes, shape: tuple[int, int]) -> np.ndarray:
    """Validate (4,) or (B, 4) boxes as (y0, x0, y1, x1); return (B, 4)."""
    arr = _finite_float(boxes, "box coordinates")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] == 0:
        raise InvalidPromptError(f"box must have shape (4,) or (B, 4) as (y0, x0, y1, x1), got {np.shape(boxes)}")
    y0, x0, y1, x1 = arr.T
    empty = (y1 <= y0) | (x1 <= x0)
    if empty.any():
        raise InvalidPromptError(
            f"box {arr[empty][0].tolist()} is empty or inverted; expected y0 < y1 and x0 < x1 in (y0, x0, y1, x1)"
        )
    height, width = shape
    outside = (y0 < 0) | (x0 < 0) | (y1 > height) | (x1 > width)
    if outside.any():
        raise InvalidPromptError(f"box {arr[outside][0].tolist()} reaches outside the image of shape {(height, width)}")
    return arr


def check_mask_input(mask_input) -> np.ndarray:
    """Validate low-res mask logits (256, 256), (1, 256, 256) or (B, 1, 256, 256); return (B, 1, 256, 256)."""
    arr = _finite_float(mask_input, "mask_input values").astype(np.float32)
    while arr.ndim < 4:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1:] != (1, LOWRES_SIZE, LOWRES_SIZE):
        raise InvalidPromptError(
            f"mask_input must be low-res logits of shape (1, 256, 256) or (B, 1, 256, 256) "
            f"(the `logits` of an earlier prediction), got {np.shape(mask_input)}"
        )
    return arr


def batch_size(*arrays) -> int:
    """The common batch size of prompt arrays (None ignored); 1-batches broadcast."""
    sizes = {a.shape[0] for a in arrays if a is not None} - {1}
    if len(sizes) > 1:
        raise InvalidPromptError(f"prompts have different batch sizes {sorted(sizes)}; they must match or be 1")
    return sizes.pop() if sizes else 1
