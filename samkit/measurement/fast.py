"""Statistics of all objects of a block at once (vectorised), from runs and per-pixel bins.

Geometry comes from runs: stretches of one label along the last axis, found in one
comparison of neighbours (a label image has some 20-50 times fewer runs than pixels).
Intensity statistics use one bin per object (``np.bincount``) over the object pixels,
with a value histogram per object for the median of small integer types. As in
scikit-image, one NaN pixel makes every intensity statistic of its object NaN.

Every statistic of an object depends only on that object's pixels taken in raster
order (integer sums are exact; float sums add the pixels in the same order), so an
object measured inside a large block or inside its own crop gives the same bits:
this is what makes tile-wise results identical to in-memory ones.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidImageError

DENSE_IDS = 1 << 24  # label ids up to this are binned through a lookup table; larger ids are sorted
EXACT_INTEGERS = ("u1", "i1", "u2", "i2")  # intensity dtypes whose sums and squares add exactly (bool: as u1)


def runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Foreground runs of ``labels`` along its last axis, in raster order.

    Returns
    -------
    start : (R,) int64
        Flat index of each run's first pixel.
    length : (R,) int64
    label : (R,) labels.dtype
    """
    width = labels.shape[-1]
    lines = np.ascontiguousarray(labels).reshape(-1, width)
    edge = np.empty(lines.shape, dtype=bool)
    edge[:, 0] = True
    np.not_equal(lines[:, 1:], lines[:, :-1], out=edge[:, 1:])
    start = np.flatnonzero(edge)
    label = lines.reshape(-1)[start]
    length = np.diff(start, append=lines.size)
    keep = label != 0
    return start[keep], length[keep], label[keep]


def bins(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct ids, index of each entry's id in them) for the labels of runs."""
    if label.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.intp)
    top = int(label.max())
    if top >= 1 << 63:
        raise InvalidImageError(f"labels: id {top} is too large; ids must be below 2**63")
    if top < DENSE_IDS:
        present = np.bincount(label, minlength=top + 1)
        ids = np.flatnonzero(present)
        lut = np.zeros(top + 1, np.intp)
        lut[ids] = np.arange(ids.size)
        return ids, lut[label]
    ids, index = np.unique(label, return_inverse=True)
    return ids.astype(np.int64), index.reshape(-1)


def check_labels(block: np.ndarray) -> None:
    """Labels must be integers >= 0 (checked per block, so large images are never loaded whole)."""
    if block.dtype.kind == "i" and block.size and block.min() < 0:
        raise InvalidImageError(
            f"labels: negative value {int(block.min())}; labels are ids >= 0 with 0 for background"
        )


def geometry(labels: np.ndarray, origin) -> dict:
    """Ids, pixel counts, bounding boxes and centroids (pixels) of the objects in ``labels``.

    ``origin`` is the position of ``labels[0, 0(, 0)]`` in the whole image; boxes and
    centroids are in whole-image pixel coordinates. Also returns the runs ("run_bin",
    "run_length") that :func:`intensity` needs.
    """
    shape, ndim = labels.shape, labels.ndim
    start, length, label = runs(labels)
    ids, run_bin = bins(label)
    k = ids.size
    line, first = np.divmod(start, shape[-1])
    lead = np.unravel_index(line, shape[:-1]) if ndim > 1 else ()
    count = np.bincount(run_bin, length, minlength=k).astype(np.int64)
    lo = np.empty((k, ndim), np.int64)
    hi = np.empty((k, ndim), np.int64)
    total = np.empty((k, ndim), np.float64)  # sums of whole-image coordinates: exact integers
    for axis, coord in enumerate([*lead, first]):
        low = coord
        high = coord + length if axis == ndim - 1 else coord + 1
        lo[:, axis] = np.iinfo(np.int64).max
        hi[:, axis] = -1
        np.minimum.at(lo[:, axis], run_bin, low)
        np.maximum.at(hi[:, axis], run_bin, high)
        if axis == ndim - 1:
            weight = length * (2 * coord + length - 1) // 2  # sum of coord .. coord + length - 1
        else:
            weight = length * coord
        total[:, axis] = np.bincount(run_bin, weight.astype(np.float64), minlength=k) + count * origin[axis]
    lo += np.asarray(origin, np.int64)
    hi += np.asarray(origin, np.int64)
    centroid = total / np.maximum(count, 1)[:, None]
    return {
        "ids": ids, "count": count, "lo": lo, "hi": hi, "centroid": centroid, "run_bin": run_bin, "run_length": length,
    }  # fmt: skip


def intensity(labels: np.ndarray, origin, image: np.ndarray, geo: dict, stats: set[str]) -> dict:
    """Per-object, per-channel intensity statistics of ``image`` (``labels.shape + (C,)``).

    ``stats`` holds names from "intensity_mean", "intensity_std", "intensity_min",
    "intensity_max", "intensity_median", "intensity_sum", "centroid_weighted".
    Values are float64 arrays of shape (k, C) ((k, ndim, C) for "centroid_weighted").
    """
    k, channels = geo["ids"].size, image.shape[-1]
    inside = np.ascontiguousarray(labels).reshape(-1) != 0
    flat = image.reshape(-1, channels)
    pixels = flat.reshape(-1)[inside][:, None] if channels == 1 else np.compress(inside, flat, axis=0)  # (n, C)
    bin_ = np.repeat(geo["run_bin"], geo["run_length"])  # the object of each of those pixels
    out = {name: np.empty((k, channels)) for name in stats if name != "centroid_weighted"}
    if "centroid_weighted" in stats:
        out["centroid_weighted"] = np.empty((k, labels.ndim, channels))
        coords = np.unravel_index(np.flatnonzero(inside), labels.shape)
    for c in range(channels):
        values = pixels[:, c]
        values = values.view(np.uint8) if values.dtype.kind == "b" else values
        found = _channel(values, bin_, geo, stats)
        for name, stat in found.items():
            if name in out:
                out[name][:, c] = stat
        if "centroid_weighted" in out:
            weights = values.astype(np.float64)
            for axis, coord in enumerate(coords):
                moment = np.bincount(bin_, weights * (coord + origin[axis]), minlength=k)
                with np.errstate(divide="ignore", invalid="ignore"):
                    out["centroid_weighted"][:, axis, c] = moment / found["intensity_sum"]
    return out


def _channel(values, bin_, geo, stats) -> dict:
    """Statistics of one channel: sums and squares from a per-object histogram of values
    (integers of small range, when the median is asked for) or from ``np.bincount``."""
    k, count = geo["ids"].size, geo["count"]
    exact = values.dtype.str[1:] in EXACT_INTEGERS
    order = {"intensity_min", "intensity_max", "intensity_median"} & stats
    hist = _histogram(values, geo) if "intensity_median" in stats else None
    out = {}
    if hist is not None:
        counts, levels = hist  # (k, span), (span,)
        as_float = counts.astype(np.float64)
        total = as_float @ levels  # exact: integer products and sums below 2**53
        largest = max(levels[0] ** 2, levels[-1] ** 2) * float(count.max(initial=0))
        squares = as_float @ (levels * levels) if "intensity_std" in stats and largest < 2.0**53 else None
        cumulative = np.cumsum(counts, axis=None)
    else:
        total = np.bincount(bin_, values, minlength=k)
        squares = None
    out["intensity_sum"] = total
    out["intensity_mean"] = mean = total / np.maximum(count, 1)
    if "intensity_std" in stats:
        if not exact:
            deviation = values - mean[bin_]
            variance = np.bincount(bin_, deviation * deviation, minlength=k) / np.maximum(count, 1)
        else:
            squares = _squares(values, bin_, k, count) if squares is None else squares
            variance = _variance(total, squares, count)
        out["intensity_std"] = np.sqrt(variance)
    if order:
        first = np.cumsum(count) - count  # rank of each object's smallest value when sorted by (object, value)
        ranks = np.stack([first, first + (count - 1) // 2, first + count // 2, first + count - 1], axis=1)
        if hist is not None:
            span = levels.size
            picked = levels[np.searchsorted(cumulative, ranks.reshape(-1), side="right") % span].reshape(-1, 4)
        elif "intensity_median" in stats:
            picked = values[np.lexsort((values, bin_))][ranks].astype(np.float64)
        else:
            picked = np.empty((k, 4))
            picked[:, 0], picked[:, 3] = _extremes(values, bin_, k)
        out["intensity_min"], out["intensity_max"] = picked[:, 0], picked[:, 3]
        out["intensity_median"] = (picked[:, 1] + picked[:, 2]) / 2
        if values.dtype.kind == "f":  # a NaN pixel makes every statistic of its object NaN, as in scikit-image
            has_nan = np.bincount(bin_, np.isnan(values), minlength=k) > 0
            for name in ("intensity_min", "intensity_max", "intensity_median"):
                out[name][has_nan] = np.nan
    return out


def _histogram(values, geo):
    """((k, span) counts of each value per object, (span,) the values as float64), or None
    when the values are not integers or the histogram would be larger than the pixels."""
    if values.dtype.kind not in "iu" or values.size == 0:
        return None
    k = geo["ids"].size
    base, top = int(values.min()), int(values.max())
    span = top - base + 1
    if k * span > values.size + (1 << 20):
        return None
    key = np.repeat(geo["run_bin"] * span, geo["run_length"])
    key += values
    if base:
        key -= base
    counts = np.bincount(key, minlength=k * span).reshape(k, span)
    return counts, np.arange(base, top + 1, dtype=np.float64)


def _squares(values, bin_, k, count) -> np.ndarray:
    """Exact sums of squares of 8- and 16-bit integers per object (as float64 or Python ints)."""
    square = values.astype(np.float64) ** 2
    if square.size == 0 or float(square.max()) * float(count.max()) < 2.0**53:
        return np.bincount(bin_, square, minlength=k)
    wide = square.astype(np.int64)  # add the high and low 16 bits apart so that the float sums stay exact
    high = np.bincount(bin_, wide >> 16, minlength=k).astype(np.int64).astype(object)
    low = np.bincount(bin_, wide & 0xFFFF, minlength=k).astype(np.int64).astype(object)
    return high * 65536 + low


def _variance(total, squares, count) -> np.ndarray:
    """Population variance from exact sums: ``(n * S2 - S1**2) / n**2``, correctly rounded."""
    if squares.dtype != object and float(np.max(count * squares, initial=0)) < 2.0**53:
        numerator = count * squares - total * total  # exact in float64
        return numerator / np.maximum(count * count, 1).astype(np.float64)
    n = count.astype(object)
    sums = total.astype(np.int64).astype(object)
    numerator = n * squares.astype(object) - sums * sums  # exact Python ints
    return (numerator / (n * n)).astype(np.float64)  # int / int: correctly rounded


def _extremes(values, bin_, k) -> tuple[np.ndarray, np.ndarray]:
    low = np.full(k, _top(values.dtype), values.dtype)
    high = np.full(k, _bottom(values.dtype), values.dtype)
    with np.errstate(invalid="ignore"):  # NaN propagates, as wanted
        np.minimum.at(low, bin_, values)
        np.maximum.at(high, bin_, values)
    return low.astype(np.float64), high.astype(np.float64)


def _top(dtype):
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _bottom(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min
