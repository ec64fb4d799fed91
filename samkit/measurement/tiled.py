"""Measuring a label image block by block, so that large (zarr, dask) images are never loaded whole.

One pass reads the image in blocks of whole storage chunks (numpy arrays: slabs of
rows) of at most :data:`BLOCK_PIXELS` pixels. Objects that lie inside one block are
measured there, all at once. Objects that touch a block border inside the image, or
whose id turns up in more than one block, are measured again whole at the end: their
bounding boxes (merged over blocks) are grouped into windows along the block borders,
which are read and measured like blocks, keeping only those objects. Each object is
thus measured once, from all its pixels, and gets the same values as in memory (see
:mod:`samkit.measurement.fast` for why the bits agree). Memory stays near one block, or
the bounding box of the largest object when that is larger.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from . import crop, fast

BLOCK_PIXELS = 1 << 24  # pixels per block: ~16 M, a few hundred MB of temporary arrays at most


@dataclass
class Plan:
    """What to measure: intensity statistics (names of :func:`samkit.measurement.fast.intensity`),
    crop properties (scikit-image names), extra functions, and the spacing they use."""

    spacing: tuple[float, ...]
    stats: set[str] = field(default_factory=set)
    crop: list[str] = field(default_factory=list)
    extra: list = field(default_factory=list)
    failed: dict = field(default_factory=dict)  # property -> ids scikit-image could not measure


def measure_objects(labels, intensity, plan: Plan) -> dict:
    """Per-object measurements of a whole label image, sorted by id.

    Parameters
    ----------
    labels : samkit.measurement.inputs.Labels
    intensity : samkit.measurement.inputs.Intensity or None

    Returns
    -------
    dict
        "ids" (n,), "count" (n,), "lo", "hi" (n, ndim) bounding boxes (end exclusive),
        "centroid" (n, ndim) in pixels, the intensity statistics (n, C) of ``plan.stats``,
        the crop properties and extra functions by name.
    """
    shape = labels.shape
    size = block_shape(shape, labels.chunks, BLOCK_PIXELS)
    parts = []
    for box in boxes(shape, size):
        origin = tuple(s.start for s in box)
        block = labels.read(box)
        inner = [(s.start > 0, s.stop < n) for s, n in zip(box, shape)]  # faces shared with another block
        image = None if intensity is None else intensity.read(box)
        parts.append(measure_block(block, origin, image, plan, inner))
    found = _concat(parts)
    done, redo = _split(found)
    parts = [done]
    for window, ids in windows(redo["lo"], redo["hi"], redo["ids"], size):
        image = None if intensity is None else intensity.read(window)
        parts.append(measure_block(labels.read(window), tuple(s.start for s in window), image, plan, None, ids))
    result = _concat(parts)
    order = np.argsort(result["ids"], kind="stable")
    return {key: value[order] for key, value in result.items() if key != "touched"}


def measure_block(labels, origin, image, plan: Plan, inner, only=None) -> dict:
    """Everything ``plan`` asks for, for each object of one block.

    ``inner`` says per axis whether the (low, high) face of the block lies inside the
    image; objects touching such a face get ``touched`` and no crop properties (they are
    measured whole later). ``inner=None``: every object is whole. ``only``: sorted ids
    of the objects to return (a window measured for them; the others may be cut).
    """
    fast.check_labels(labels)
    geo = fast.geometry(labels, origin)
    touched = np.zeros(geo["ids"].size, bool)
    for axis, (low, high) in enumerate(inner or ()):
        if low:
            touched |= geo["lo"][:, axis] == origin[axis]
        if high:
            touched |= geo["hi"][:, axis] == origin[axis] + labels.shape[axis]
    wanted = ~touched if only is None else np.isin(geo["ids"], only, assume_unique=True)
    part = {key: geo[key] for key in ("ids", "count", "lo", "hi", "centroid")}
    part["touched"] = touched
    if image is not None and plan.stats:
        part.update(fast.intensity(labels, origin, image, geo, plan.stats))
    whole = np.flatnonzero(wanted)
    part.update(crop.measure_crops(labels, image, geo, origin, whole, plan.crop, plan.extra, plan.spacing, plan.failed))
    return part if only is None else {key: value[whole] for key, value in part.items()}


def block_shape(shape, chunks, limit: int) -> tuple[int, ...]:
    """Blocks of whole chunks (default chunks: one row or plane), doubled axis by axis up to ``limit`` pixels."""
    size = [1, *shape[1:]] if chunks is None else [min(c, n) for c, n in zip(chunks, shape)]
    grown = True
    while grown:
        grown = False
        for axis in range(len(shape)):
            if size[axis] < shape[axis] and math.prod(size) * 2 <= limit:
                size[axis] = min(2 * size[axis], shape[axis])
                grown = True
    return tuple(size)


def boxes(shape, size):
    """The blocks of a regular grid, as tuples of slices, in raster order."""
    starts = [range(0, n, s) for n, s in zip(shape, size)]
    for corner in itertools.product(*starts):
        yield tuple(slice(c, min(c + s, n)) for c, s, n in zip(corner, size, shape))


def windows(lo, hi, ids, size):
    """Group objects (bounding boxes ``lo``, ``hi``) into windows to read and measure together.

    Objects that cross the same block border (same crossed axes, same block for their
    last pixel) form a group, sorted along the border; a window takes consecutive
    objects of a group while it stays within a block's size.
    """
    if ids.size == 0:
        return
    first, last = lo // np.asarray(size), (hi - 1) // np.asarray(size)
    crossed = first != last
    pattern = crossed @ (1 << np.arange(lo.shape[1]))
    along = np.where(crossed, 0, lo)  # position along the border(s) crossed
    order = np.lexsort(tuple(along.T[::-1]) + tuple(last.T[::-1]) + (pattern,))
    group_of = np.column_stack([pattern, last])
    limit = math.prod(size)
    group, low, high = [], None, None
    for j in order:
        if group and np.array_equal(group_of[j], group_of[group[-1]]):
            new_low, new_high = np.minimum(low, lo[j]), np.maximum(high, hi[j])
            if np.prod(new_high - new_low) <= limit:
                group.append(j)
                low, high = new_low, new_high
                continue
        if group:
            yield _window(low, high), np.sort(ids[group])
        group, low, high = [j], lo[j].copy(), hi[j].copy()
    yield _window(low, high), np.sort(ids[group])


def _window(low, high) -> tuple[slice, ...]:
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def _concat(parts: list[dict]) -> dict:
    keys = parts[0].keys()
    return {key: np.concatenate([p[key] for p in parts]) for key in keys}


def _split(found: dict) -> tuple[dict, dict]:
    """(objects measured whole in one block, objects to measure again: ids and merged boxes)."""
    ids = found["ids"]
    order = np.argsort(ids, kind="stable")
    unique, first, repeats = np.unique(ids[order], return_index=True, return_counts=True)
    if unique.size == 0:
        return found, {"ids": unique, "lo": found["lo"], "hi": found["hi"]}
    touched = np.logical_or.reduceat(found["touched"][order], first)
    whole = (repeats == 1) & ~touched
    done = {key: value[order[first[whole]]] for key, value in found.items()}
    redo = {
        "ids": unique[~whole],
        "lo": np.minimum.reduceat(found["lo"][order], first)[~whole],
        "hi": np.maximum.reduceat(found["hi"][order], first)[~whole],
    }
    return done, redo
