"""Pixel edits of committed objects: brush, pixel eraser and flood fill, for every front end.

:func:`add_objects` pastes the objects of another label image (e.g. what
:func:`samkit.segment_all` found) as new objects, in one step too.
Each tool has two halves: a pure function that says which pixels a gesture covers
(``brush``, ``fill_pixels``), and one that writes them into a
:class:`~samkit.labels.LabelImage` through :meth:`~samkit.labels.LabelImage.set_pixels`, as
one undoable, autosaved step (``paint``, ``erase_pixels``, ``fill``). A front end calls the
second at the end of the gesture (mouse up), not on every mouse move.
All coordinates are (y, x) image pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import line

from ..errors import InvalidLabelError, InvalidPromptError
from .mask import Box

MAX_RADIUS = 512  # pixels; a larger brush is a fill


def brush(shape, points_yx, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """The pixels a round brush of ``radius`` covers along the stroke through ``points_yx``.

    Parameters
    ----------
    shape : (H, W)
        The image; the stroke is clipped to it.
    points_yx : (N, 2) array-like
        The stroke, (y, x) image coordinates (floats allowed), in drawing order; one point is a dab.
    radius : float
        Pixels whose centre lies within ``radius`` of the stroke are covered (0: the pixels the stroke
        passes through).

    Returns
    -------
    ys, xs : (M,) int64 arrays
        The covered pixels inside the image, each once.
    """
    points = np.asarray(points_yx, float).reshape(-1, 2)
    if points.size == 0 or not np.isfinite(points).all():
        raise InvalidPromptError(f"brush: the stroke needs (y, x) points, finite numbers; got {points_yx!r}")
    if not 0 <= radius <= MAX_RADIUS:
        raise InvalidPromptError(f"brush: radius must lie in 0..{MAX_RADIUS} pixels, not {radius}")
    centres = np.floor(points).astype(np.int64)
    # a long stroke is painted piece by piece, each in a small window, so its cost grows with its length only
    step = max(2 * int(radius), 8)
    pieces = [centres[:1]]
    for start, end in zip(centres[:-1], centres[1:]):
        n = int(np.ceil(np.abs(end - start).max() / step))
        pieces.append(np.round(start + (end - start) * np.arange(1, n + 1)[:, None] / max(n, 1)).astype(np.int64))
    track = np.concatenate(pieces)
    segments = zip(track, track[1:]) if len(track) > 1 else [(track[0], track[0])]
    pad = int(np.ceil(radius)) + 1
    found = [_covered(a, b, radius, pad, shape) for a, b in segments]
    ys, xs = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
    flat = np.unique(ys * shape[1] + xs)
    return flat // shape[1], flat % shape[1]


def _covered(a, b, radius: float, pad: int, shape) -> tuple[np.ndarray, np.ndarray]:
    """The pixels within ``radius`` of the pixel line from ``a`` to ``b`` (y, x), inside ``shape``."""
    low = np.minimum(a, b) - pad
    window = np.zeros(tuple(np.maximum(a, b) + pad + 1 - low), bool)
    window[line(*(int(v) for v in a - low), *(int(v) for v in b - low))] = True
    ys, xs = np.nonzero(ndimage.distance_transform_edt(~window) <= radius)
    ys, xs = ys + low[0], xs + low[1]
    inside = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    return ys[inside], xs[inside]


def paint(labels, points_yx, radius: float, label: int, *, preserve: bool = False) -> Box | None:
    """Paint object ``label`` along a stroke (one undoable step); return the changed box (None: nothing changed).

    ``preserve=True`` paints only background pixels, keeping other objects (as ``commit`` does
    by default); False paints over them.
    """
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 1:
        raise InvalidLabelError(f"paint: the label must be a positive int (erase_pixels erases), not {label!r}")
    ys, xs = brush(labels.shape, points_yx, radius)
    if preserve:
        keep = _values(labels, ys, xs) == 0
        ys, xs = ys[keep], xs[keep]
    return labels.set_pixels(ys, xs, int(label))


def erase_pixels(labels, points_yx, radius: float, *, label: int | None = None) -> Box | None:
    """Set the pixels along a stroke to background (one undoable step); ``label``: only that object's."""
    ys, xs = brush(labels.shape, points_yx, radius)
    if label is not None:
        keep = _values(labels, ys, xs) == label
        ys, xs = ys[keep], xs[keep]
    return labels.set_pixels(ys, xs, 0)


def fill_pixels(labels, y: int, x: int, *, region: Box | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The connected pixels (4-neighbours) holding the same value as pixel (y, x).

    Parameters
    ----------
    labels : LabelImage or (H, W) integer array
    y, x : int
        The seed pixel.
    region : (y0, x0, y1, x1), optional
        Where the fill may spread (e.g. the view); default: the seed object's bounding box,
        or the whole image for background. Only this box is read.

    Returns
    -------
    ys, xs : (M,) int64 arrays
    """
    h, w = labels.shape
    y, x = int(y), int(x)
    if not (0 <= y < h and 0 <= x < w):
        raise InvalidPromptError(f"fill: pixel (y, x) = ({y}, {x}) is outside the image {(h, w)}")
    seed = int(labels[y, x])
    objects = getattr(labels, "objects", {})
    if region is None:
        region = objects.get(seed, (0, 0, h, w)) if seed else (0, 0, h, w)
    y0, x0, y1, x1 = (int(v) for v in region)
    y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
    if not (y0 <= y < y1 and x0 <= x < x1):
        raise InvalidPromptError(f"fill: the seed ({y}, {x}) lies outside the region {region}")
    same = np.asarray(labels[y0:y1, x0:x1]) == seed
    components, _ = ndimage.label(same)
    ys, xs = np.nonzero(components == components[y - y0, x - x0])
    return ys + y0, xs + x0


def fill(labels, y: int, x: int, label: int, *, region: Box | None = None) -> Box | None:
    """Flood-fill from pixel (y, x) with ``label`` (0: erase the region), as one undoable step.

    Returns the changed box (None: it already held ``label``). ``region`` as for :func:`fill_pixels`.
    """
    ys, xs = fill_pixels(labels, y, x, region=region)
    return labels.set_pixels(ys, xs, label)


def add_objects(labels, found, *, mode: str = "grid", overwrite: bool = False) -> dict[int, int]:
    """Add the objects of ``found`` to ``labels`` as new objects, as one undoable step; return {found id: new id}.

    Parameters
    ----------
    labels : LabelImage
    found : LabelImage or (H, W) integer array
        Of the same shape (e.g. the result of :func:`samkit.segment_all`); read object by object.
        A LabelImage's attributes (scores) go along with its objects.
    mode : str
        The ``mode`` attribute of the new objects, unless ``found`` gives one.
    overwrite : bool
        False (default): only background pixels of ``labels`` are written, existing objects keep theirs.
    """
    from scipy import ndimage as ndi

    if tuple(found.shape) != tuple(labels.shape):
        raise InvalidLabelError(f"add_objects: found objects of shape {tuple(found.shape)} for labels of {tuple(labels.shape)}")
    boxes = getattr(found, "objects", None)
    if boxes is None:
        array = np.asarray(found)
        boxes = {i: (s[0].start, s[1].start, s[0].stop, s[1].stop)
                 for i, s in enumerate(ndi.find_objects(array), 1) if s is not None}  # fmt: skip
    extra = getattr(found, "attributes", {})
    ys, xs, values, new_ids, attributes = [], [], [], {}, {}
    next_id = labels.next_label
    for old in sorted(boxes):
        y0, x0, y1, x1 = boxes[old]
        mine = np.asarray(found[y0:y1, x0:x1]) == old
        if not overwrite:
            mine &= np.asarray(labels[y0:y1, x0:x1]) == 0
        if not mine.any():
            continue
        new_ids[old] = next_id
        attributes[next_id] = {"mode": mode, **extra.get(old, {})}
        y, x = np.nonzero(mine)
        ys.append(y + y0), xs.append(x + x0), values.append(np.full(y.size, next_id, np.int64))
        next_id += 1
    if new_ids:
        labels.set_pixels(np.concatenate(ys), np.concatenate(xs), np.concatenate(values), attributes=attributes)
    return new_ids


def _values(labels, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The labels at pixels (ys, xs), reading only their bounding box."""
    if ys.size == 0:
        return np.zeros(0, np.int64)
    y0, x0 = int(ys.min()), int(xs.min())
    window = np.asarray(labels[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1])
    return window[ys - y0, xs - x0]
