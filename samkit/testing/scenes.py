"""Large real scenes with exact ground truth, built from small annotated images."""

from __future__ import annotations

import numpy as np


def mosaic(pairs, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A large scene with exact ground truth, from (image, labels) pairs laid side by side.

    Images are packed left to right in rows (repeating the list until the
    canvas is full; the last row and column are cut by the canvas edge), so
    objects straddle any tile grid at many places. Labels are renumbered
    1..N in the canvas, unique across copies.

    Parameters
    ----------
    pairs : sequence of ((h, w, 3) uint8 image, (h, w) int labels)
    shape : (H, W) of the canvas

    Returns
    -------
    image : (H, W, 3) uint8
    labels : (H, W) int32
    """
    height, width = shape
    image = np.zeros((height, width, 3), np.uint8)
    labels = np.zeros((height, width), np.int32)
    y = x = row_height = 0
    next_id, i = 1, 0
    while y < height:
        img, lab = pairs[i % len(pairs)]
        i += 1
        h, w = lab.shape
        if x >= width:
            y, x, row_height = y + row_height, 0, 0
            if y >= height:
                break
        ch, cw = min(h, height - y), min(w, width - x)
        image[y : y + ch, x : x + cw] = np.asarray(img)[:ch, :cw, :3]
        crop = np.asarray(lab)[:ch, :cw]
        ids = np.unique(crop[crop > 0])
        lookup = np.zeros(int(lab.max()) + 1, np.int32)
        lookup[ids] = np.arange(next_id, next_id + len(ids))
        labels[y : y + ch, x : x + cw] = lookup[crop]
        next_id += len(ids)
        x += w
        row_height = max(row_height, h)
    return image, labels
