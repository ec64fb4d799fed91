"""What an edit of a :class:`~samkit.labels.LabelImage` changes, as journal parts: checked pixels in, parts out.

A part is one rectangle of changed pixels that all get one value (see
:class:`samkit._journal.Part`); an edit gives one part per chunk and value it
touches, so it reads and writes only the chunks under its pixels, however far
apart they are (a long brush stroke).
"""

from __future__ import annotations

import numpy as np

from ._journal import Part
from .engine.mask import Box, Mask
from .errors import InvalidImageError, InvalidLabelError, InvalidPromptError


def check_shape(shape) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
        raise InvalidImageError(f"a label image is 2D: shape must be (H, W) positive ints, not {shape}")
    return int(shape[0]), int(shape[1])


def check_box(bbox, shape, error=InvalidPromptError) -> Box:
    """``bbox`` (y0, x0, y1, x1) as ints, or ``error`` when it is empty or reaches outside ``shape``."""
    y0, x0, y1, x1 = (int(v) for v in bbox)
    if not (0 <= y0 < y1 <= shape[0] and 0 <= x0 < x1 <= shape[1]):
        raise error(f"bbox {tuple(bbox)} is empty or outside the image {tuple(shape)} (y0, x0, y1, x1)")
    return y0, x0, y1, x1


def check_label(label, dtype) -> int:
    """``label`` as an int, or InvalidLabelError when it is no object id for ``dtype``."""
    limit = np.iinfo(dtype).max
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 1 <= label <= limit:
        raise InvalidLabelError(f"label must be an int in 1..{limit} for {np.dtype(dtype)}, not {label!r}")
    return int(label)


def tight_part(bbox: Box, changed: np.ndarray, current: np.ndarray, value: int) -> Part:
    """The part that writes ``value`` at ``changed`` (a bool array over ``bbox``), cropped to the changed pixels."""
    tight = Mask.from_array(changed, offset=bbox[:2]).bbox
    local = slice(tight[0] - bbox[0], tight[2] - bbox[0]), slice(tight[1] - bbox[1], tight[3] - bbox[1])
    changed = np.ascontiguousarray(changed[local])
    return Part(tight, changed, current[local][changed], value)


def check_pixels(ys, xs, values, shape, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ys, xs, values) as int64 arrays of one length; InvalidPromptError / InvalidLabelError naming what is wrong."""
    coords = []
    for name, array in (("ys", ys), ("xs", xs)):
        array = np.asarray(array)
        if array.ndim != 1 or not (array.dtype.kind in "iu" or array.size == 0):
            raise InvalidPromptError(f"set_pixels: {name} must be a 1-D array of integer pixel coordinates, "
                                     f"not {array.dtype} of shape {array.shape}")  # fmt: skip
        coords.append(array.astype(np.int64, copy=False))
    ys, xs = coords
    if ys.shape != xs.shape:
        raise InvalidPromptError(f"set_pixels: {ys.size} ys but {xs.size} xs; give one (y, x) per pixel")
    h, w = shape
    outside = (ys < 0) | (ys >= h) | (xs < 0) | (xs >= w)
    if outside.any():
        i = int(np.argmax(outside))
        raise InvalidPromptError(f"set_pixels: pixel (y, x) = ({ys[i]}, {xs[i]}) is outside the image {tuple(shape)}")
    values = np.asarray(values)
    if values.dtype.kind not in "iu" or values.shape not in ((), ys.shape):
        raise InvalidLabelError(f"set_pixels: values must be one integer label (0 erases) or {ys.size} of them, "
                                f"not {values.dtype} of shape {values.shape}")  # fmt: skip
    limit = np.iinfo(dtype).max
    if values.size and (values.min() < 0 or values.max() > limit):
        raise InvalidLabelError(f"set_pixels: labels must lie in 0..{limit} for {np.dtype(dtype)}")
    return ys, xs, np.broadcast_to(values.astype(np.int64), ys.shape)


def pixel_parts(array, ys: np.ndarray, xs: np.ndarray, values: np.ndarray) -> list[Part]:
    """The parts that set pixels (ys, xs) of ``array`` to ``values`` (the last value wins for a repeated pixel).

    Pixels that already hold their value are left out; no parts: nothing changes.
    """
    if ys.size == 0:
        return []
    cy, cx = array.chunks
    cells = (ys // cy) * (-(-array.shape[1] // cx)) + xs // cx
    order = np.argsort(cells, kind="stable")
    ys, xs, values, cells = ys[order], xs[order], values[order], cells[order]
    starts = np.flatnonzero(np.r_[True, cells[1:] != cells[:-1]])
    parts = []
    for start, stop in zip(starts, np.r_[starts[1:], cells.size]):
        y, x, v = ys[start:stop], xs[start:stop], values[start:stop]
        box = (int(y.min()), int(x.min()), int(y.max()) + 1, int(x.max()) + 1)
        current = array[box[0] : box[2], box[1] : box[3]]
        new = current.astype(np.int64)
        new[y - box[0], x - box[1]] = v
        changed = new != current
        for value in np.unique(new[changed]):
            parts.append(tight_part(box, changed & (new == value), current, int(value)))
    return parts
