"""Identities of image data, for caches (embeddings are reused only for the same pixels).

Two levels. A cheap identity of the whole image names its embedding store (it reads
almost nothing, so it cannot see every change):

* a file: its resolved path, size, modification time and its first and last 64 KiB;
* a directory store (``.zarr``): its metadata files' sizes and times, plus the samples below;
* an array in memory: shape, dtype and 16 blocks spread over Y and X (and over
  the other axes), or every pixel when the array is small (<= 4 MiB).

Then :func:`pixel_digest` of every pixel of a window, kept with that window's embedding:
a stored embedding is used only when the window's pixels hash the same now (see
:class:`samkit.engine.Session`). xxh3 hashes several GB/s, so this costs a small
fraction of reading the window, and far less than embedding it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xxhash

EDGE_BYTES = 64 * 1024
WHOLE_BYTES = 4 * 1024 * 1024  # arrays up to this size are hashed in full
BLOCK = 64  # side of a sampled block, in pixels
GRID = 4  # GRID x GRID blocks over Y and X


def file_digest(path: Path, hasher=None):
    """Add the identity of one file to ``hasher`` (a new xxh3_64 when None) and return it."""
    hasher = hasher or xxhash.xxh3_64()
    stat = os.stat(path)
    hasher.update(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    with open(path, "rb") as f:
        hasher.update(f.read(EDGE_BYTES))
        if stat.st_size > EDGE_BYTES:
            f.seek(max(EDGE_BYTES, stat.st_size - EDGE_BYTES))
            hasher.update(f.read(EDGE_BYTES))
    return hasher


def stat_digest(paths, hasher):
    """Add the names, sizes and modification times of ``paths`` (those that exist) to ``hasher``."""
    for path in paths:
        if os.path.isfile(path):
            stat = os.stat(path)
            hasher.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return hasher


def _spread(n: int, count: int, k: int, block: int) -> slice:
    """The k-th of ``count`` blocks of ``block`` pixels spread evenly over an axis of size n."""
    size = min(block, n)
    start = (n - size) * k // max(count - 1, 1)
    return slice(start, start + size)


def sample_digest(array, axes: str, hasher=None):
    """Add shape, dtype and a fixed sample of ``array``'s pixels to ``hasher``.

    Reads at most GRID x GRID blocks of BLOCK x BLOCK pixels (with all channels
    when there are at most 16), never the whole array unless it is small.
    """
    hasher = hasher or xxhash.xxh3_64()
    shape = tuple(int(n) for n in array.shape)
    dtype = np.dtype(array.dtype)
    hasher.update(f"{shape}|{dtype.str}|{axes}".encode())
    if int(np.prod(shape)) * dtype.itemsize <= WHOLE_BYTES:
        hasher.update(np.ascontiguousarray(np.asarray(array[...])).tobytes())
        return hasher
    blocks = GRID * GRID
    for k in range(blocks):
        key = []
        for axis, n in zip(axes, shape):
            if axis == "Y":
                key.append(_spread(n, GRID, k // GRID, BLOCK))
            elif axis == "X":
                key.append(_spread(n, GRID, k % GRID, BLOCK))
            elif axis in "CS" and n <= 16:
                key.append(slice(None))
            else:
                key.append(n * k // blocks)  # walks through the planes of T, Z (and many channels)
        hasher.update(np.ascontiguousarray(np.asarray(array[tuple(key)])).tobytes())
    return hasher


def pixel_digest(pixels) -> bytes:
    """xxh3-128 of an array's shape, dtype and every pixel (16 bytes): the identity of a window."""
    pixels = np.ascontiguousarray(pixels)
    hasher = xxhash.xxh3_128(f"{pixels.shape}|{pixels.dtype.str}".encode())
    hasher.update(pixels)
    return hasher.digest()
