"""``TileGrid``: the overlapping windows an image is embedded in.

Windows are ``tile_size`` square (what the model sees; 1024 for SAM) and
neighbours overlap by ``2 * halo`` pixels, so an object up to ``2 * halo``
wide that a window edge cuts lies whole in the neighbouring window. The last
window of a row or column is shifted back to end at the image edge, so every
window has the same size (an image smaller than a tile is one window of the
image's size).

Every pixel has a *depth* in each window that holds it: its distance to the
nearest window edge that is not an image edge. The window in which a prompt
is deepest sees the most context around it; when windows disagree about a
pixel, the deepest one is believed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import InvalidImageError, InvalidSettingError
from .mask import Box


def window_starts(size: int, tile: int, stride: int) -> np.ndarray:
    """Origins along one axis: 0, stride, 2 * stride, ..., and the last one flush with the edge."""
    if size <= tile:
        return np.zeros(1, int)
    starts = np.arange(0, size - tile, stride)
    return np.append(starts, size - tile)


DEFAULT_HALO = 128  # for SAM's 1024 px windows: objects up to 256 px across fit in one window's overlap


def default_halo(tile_size: int) -> int:
    """The halo used when none is given: 128 px, or an eighth of smaller windows (1 at the least)."""
    return max(1, min(DEFAULT_HALO, int(tile_size) // 8))


@dataclass(frozen=True)
class TileGrid:
    """Overlapping ``tile_size`` windows over an image of ``shape`` (H, W).

    Parameters
    ----------
    shape : (H, W)
    tile_size : int
        Side of a window, in pixels of the level being tiled.
    halo : int
        Overlap on each side: neighbouring windows share ``2 * halo`` pixels.
    """

    shape: tuple[int, int]
    tile_size: int = 1024
    halo: int = 128

    def __post_init__(self) -> None:
        if min(self.shape) < 1:
            raise InvalidImageError(f"cannot tile an empty image of shape {self.shape}")
        if self.tile_size < 16 or not 0 <= 2 * self.halo < self.tile_size:
            raise InvalidSettingError(
                f"tile_size={self.tile_size}, halo={self.halo}: need tile_size >= 16 and 0 <= 2 * halo < tile_size"
            )

    @property
    def stride(self) -> int:
        return self.tile_size - 2 * self.halo

    @cached_property
    def starts(self) -> tuple[np.ndarray, np.ndarray]:
        return tuple(window_starts(n, self.tile_size, self.stride) for n in self.shape)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """(ny, nx): how many windows down and across."""
        return len(self.starts[0]), len(self.starts[1])

    @property
    def window_shape(self) -> tuple[int, int]:
        return min(self.tile_size, self.shape[0]), min(self.tile_size, self.shape[1])

    def __len__(self) -> int:
        return self.grid_shape[0] * self.grid_shape[1]

    def indices(self) -> list[tuple[int, int]]:
        """All window indices (iy, ix), row by row."""
        ny, nx = self.grid_shape
        return [(iy, ix) for iy in range(ny) for ix in range(nx)]

    def window(self, index: tuple[int, int]) -> Box:
        """(y0, x0, y1, x1) of window ``index``."""
        y0, x0 = int(self.starts[0][index[0]]), int(self.starts[1][index[1]])
        h, w = self.window_shape
        return y0, x0, y0 + h, x0 + w

    def overlapping(self, box: Box) -> list[tuple[int, int]]:
        """Indices of the windows that share at least one pixel with ``box`` (y0, x0, y1, x1)."""
        (ys, xs), (h, w) = self.starts, self.window_shape
        rows = np.flatnonzero((ys < box[2]) & (ys + h > box[0]))
        cols = np.flatnonzero((xs < box[3]) & (xs + w > box[1]))
        return [(int(iy), int(ix)) for iy in rows for ix in cols]

    def containing(self, y: int, x: int) -> list[tuple[int, int]]:
        """Indices of the windows that hold pixel (y, x)."""
        return self.overlapping((y, x, y + 1, x + 1))

    def depth(self, index: tuple[int, int], ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Depth of pixels (broadcast ``ys`` against ``xs``) in window ``index``; -1 outside it.

        Depth is the distance to the nearest window edge that is not an image
        edge, plus one, so a pixel on such an edge has depth 1; image edges
        count as infinitely far.
        """
        y0, x0, y1, x1 = self.window(index)
        return np.minimum(
            _axis_depth(np.asarray(ys), y0, y1, self.shape[0]),
            _axis_depth(np.asarray(xs), x0, x1, self.shape[1]),
        )

    def best_window(self, ys, xs) -> tuple[int, int]:
        """The window in which the shallowest of the pixels (ys, xs) is deepest.

        Pixels outside a window count as depth -1 - their distance to it, so
        for prompts that fit in no window, the one that holds most of them
        is chosen.
        """
        ys, xs = np.asarray(ys, float).ravel(), np.asarray(xs, float).ravel()
        best, best_depth = (0, 0), -np.inf
        rows = {int(i) for y in ys for i in np.flatnonzero(self._near(0, y))}
        cols = {int(i) for x in xs for i in np.flatnonzero(self._near(1, x))}
        for iy in sorted(rows):
            for ix in sorted(cols):
                y0, x0, y1, x1 = self.window((iy, ix))
                inside = self.depth((iy, ix), ys, xs)
                outside = -1 - np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), np.maximum(x0 - xs, xs - (x1 - 1)))
                d = np.where(inside >= 0, inside, outside).min()
                if d > best_depth:
                    best, best_depth = (iy, ix), d
        return best

    def _near(self, axis: int, c: float) -> np.ndarray:
        """Windows along ``axis`` that hold coordinate ``c``, or the nearest one if none does."""
        starts, size = self.starts[axis], self.window_shape[axis]
        hold = (starts <= c) & (c < starts + size)
        if hold.any():
            return hold
        return np.abs(starts + size / 2 - c) == np.abs(starts + size / 2 - c).min()

    def signature(self) -> dict:
        return {"shape": list(self.shape), "tile_size": self.tile_size, "halo": self.halo}


def _axis_depth(c: np.ndarray, start: int, end: int, size: int) -> np.ndarray:
    """Depth along one axis of coordinates ``c`` in [start, end) of an axis of ``size`` pixels."""
    low = np.where(start > 0, c - start + 1, np.inf)
    high = np.where(end < size, end - c, np.inf)
    return np.where((c >= start) & (c < end), np.minimum(low, high), -1.0)
