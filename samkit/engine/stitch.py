"""Putting one object back together from the windows it was decoded in.

Pieces are (crop, offset) pairs in the coordinates of the tiled level. Where
the windows overlap and disagree, each pixel is taken from the window in
which it lies deepest (:meth:`TileGrid.depth`): the one that saw the most
context around it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .grid import TileGrid
from .mask import paste, tight

Piece = tuple[np.ndarray, tuple[int, int]]  # (bool crop, (y, x) offset)


def union_box(pieces) -> tuple[int, int, int, int] | None:
    boxes = [(oy, ox, oy + c.shape[0], ox + c.shape[1]) for c, (oy, ox) in pieces if c.size]
    if not boxes:
        return None
    b = np.array(boxes)
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def merge(grid: TileGrid, pieces: dict) -> Piece:
    """One (crop, offset) from ``pieces`` {window index: (crop, offset)}, by the deepest-window rule."""
    box = union_box(pieces.values())
    if box is None:
        return np.zeros((0, 0), bool), (0, 0)
    y0, x0, y1, x1 = box
    ys, xs = np.arange(y0, y1)[:, None], np.arange(x0, x1)[None, :]
    best_depth = np.full((y1 - y0, x1 - x0), -np.inf, np.float32)
    out = np.zeros((y1 - y0, x1 - x0), bool)
    for index, (crop, (oy, ox)) in pieces.items():
        wy0, wx0, wy1, wx1 = grid.window(index)
        # only the part of the union box inside this window can be decided by it
        sy, sx = slice(max(wy0, y0) - y0, min(wy1, y1) - y0), slice(max(wx0, x0) - x0, min(wx1, x1) - x0)
        if sy.start >= sy.stop or sx.start >= sx.stop:
            continue
        depth = grid.depth(index, ys[sy], xs[:, sx]).astype(np.float32)
        wins = depth > best_depth[sy, sx]
        best_depth[sy, sx] = np.where(wins, depth, best_depth[sy, sx])
        piece = paste(crop, (oy, ox), (y0 + sy.start, x0 + sx.start, y0 + sy.stop, x0 + sx.stop))
        out[sy, sx] = np.where(wins, piece, out[sy, sx])
    return tight(out, (y0, x0))


def window_part(piece: Piece, window: tuple[int, int, int, int]) -> np.ndarray:
    """The piece inside ``window`` as a (h, w) bool array in window coordinates."""
    return paste(*piece, window)


def seed_point(inside: np.ndarray) -> tuple[int, int] | None:
    """The pixel of ``inside`` farthest from its border (window coordinates), or None if empty."""
    if not inside.any():
        return None
    depth = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), inside.shape)
    return int(y), int(x)


def connected_to(mask: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The connected components (8-connected) of ``mask`` that share a pixel with ``keep``."""
    if not mask.any():
        return mask
    components, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    wanted = np.unique(components[keep & mask])
    return np.isin(components, wanted[wanted > 0])


def neighbours(grid: TileGrid, index: tuple[int, int], piece: Piece) -> list[tuple[int, int]]:
    """Windows an object may continue into: those holding a pixel just outside an
    interior edge of window ``index`` next to (8-connected) a pixel of ``piece`` on that edge."""
    crop, (oy, ox) = piece
    if crop.size == 0:
        return []
    y0, x0, y1, x1 = grid.window(index)
    part = window_part(piece, (y0, x0, y1, x1))
    found: set = set()
    height, width = grid.shape
    edges = []
    if y0 > 0:
        edges.append(("row", y0 - 1, np.flatnonzero(part[0]) + x0))
    if y1 < height:
        edges.append(("row", y1, np.flatnonzero(part[-1]) + x0))
    if x0 > 0:
        edges.append(("col", x0 - 1, np.flatnonzero(part[:, 0]) + y0))
    if x1 < width:
        edges.append(("col", x1, np.flatnonzero(part[:, -1]) + y0))
    for kind, at, along in edges:
        if along.size == 0:
            continue
        outward = np.unique(np.concatenate([along - 1, along, along + 1]))
        limit = width if kind == "row" else height
        outward = outward[(outward >= 0) & (outward < limit)]
        box = (at, outward.min(), at + 1, outward.max() + 1) if kind == "row" else (outward.min(), at, outward.max() + 1, at + 1)
        for other in grid.overlapping(box):
            wy0, wx0, wy1, wx1 = grid.window(other)
            lo, hi = (wx0, wx1) if kind == "row" else (wy0, wy1)
            if other != index and np.any((outward >= lo) & (outward < hi)):
                found.add(other)
    return sorted(found)
