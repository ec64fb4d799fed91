"""Where an image has objects at a given scale: significance of bright and dark structure, block by block.

The image (grey, as the intensity policy maps it for the model) is smoothed
at an eighth of the object size and cut into blocks of ``8 x object_size``.
In each block the background level is the mode of the histogram and the
noise is the spread of the pixels on either side of it (the narrower side,
so that objects do not count as noise). A pixel's *significance* is its
distance from the background in noise units, towards bright
(``bright``) or towards dark (``dark``): objects lighter or darker than
their background, whichever the image has, and both where it has both.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

MIN_BLOCK = 64  # pixels: the smallest block a background level is taken from
NOISE_FLOOR = 1.0  # grey levels (of 0..255): quantisation makes a flat background look noise-free
HISTOGRAM_BINS = 128


class Significance(NamedTuple):
    """(h, w) float32 maps: how far each pixel lies above (``bright``) and below (``dark``) its background,
    in noise units; ``block`` is the side of the blocks they were measured in."""

    bright: np.ndarray
    dark: np.ndarray
    block: int


def grey(pixels: np.ndarray) -> np.ndarray:
    """(h, w) float32 grey of an (h, w[, 3]) image: the mean of its channels."""
    pixels = np.asarray(pixels, np.float32)
    return pixels.mean(axis=2) if pixels.ndim == 3 else pixels


def significance(image: np.ndarray, object_size: float) -> Significance:
    """The significance maps of a grey ``image`` for objects about ``object_size`` pixels across."""
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), max(1.0, object_size / 8))
    block = int(max(MIN_BLOCK, 8 * object_size))
    level = np.zeros_like(smooth)
    noise = np.ones_like(smooth)
    h, w = smooth.shape
    for y in range(0, h, block):
        for x in range(0, w, block):
            part = (slice(y, y + block), slice(x, x + block))
            level[part], noise[part] = background(smooth[part])
    return Significance((smooth - level) / noise, (level - smooth) / noise, block)


def background(values: np.ndarray) -> tuple[float, float]:
    """(level, noise) of a block: its histogram's mode and the spread of the narrower side around it."""
    low, high = np.percentile(values, [0.5, 99.5])
    if high - low <= 1e-6:
        return float(low), NOISE_FLOOR
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high))
    counts = ndimage.gaussian_filter1d(counts.astype(np.float64), 2)
    mode = float(edges[np.argmax(counts)] + (edges[1] - edges[0]) / 2)
    below, above = values[values < mode], values[values > mode]
    spread_low = 1.4826 * float(np.median(mode - below)) if below.size else 0.0  # MAD -> standard deviation
    spread_high = 1.4826 * float(np.median(above - mode)) if above.size else 0.0
    return mode, max(min(spread_low, spread_high), NOISE_FLOOR)
