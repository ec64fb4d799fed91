"""Objects across windows: who owns each pixel, which pieces are one object, and their ids.

Each window is segmented on its own (:mod:`samkit.automatic.generate`) into
a window label image. Those are put together by three rules:

* **Cores.** Along each axis, the overlap of two neighbouring windows is cut
  down the middle; every pixel of the image lies in the *core* of exactly one
  window (the one in which it lies deepest along both axes: most context
  around it). A pixel's label comes from that window alone, so an object can
  never appear twice, and no ring of pixels can come from two windows.
* **Links.** Where two neighbouring windows overlap, both saw the same
  pixels. A piece in one window and a piece in the other whose masks agree
  there (IoU within the overlap >= ``LINK_IOU``) are one object. Linked
  pieces are joined across any number of windows (connected components of
  the link graph), so objects much larger than the overlap come out whole.
* **Ids.** Objects are numbered 1..N in the raster order of their first
  pixel (like :func:`skimage.measure.label`), which depends only on the
  result, never on the order in which windows were processed. Objects with
  fewer than ``min_area`` pixels in all are dropped.

Windows write their label images into a scratch zarr array of shape (ny,
nx, h, w), read back here a block at a time; the final labels are produced
block by block by :class:`Assembled`, never as a whole image.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from ..engine.grid import TileGrid

LINK_IOU = 0.5  # pieces of two windows are one object when their masks agree this well where both windows see


class WindowSummary(NamedTuple):
    """What the stitcher needs of one window's n objects (local ids 1..n).

    area : (n,) int64, pixels of each object in the window's core
    first : (n,) int64, raster index (y * W + x) of each object's first core pixel; -1 if none
    edges : (n, 4) bool, whether each object reaches the window's top, left, bottom, right edge
        where that edge lies inside the image (it may continue in the next window)
    inside : (n,) int64, core pixels of each object inside the run's region (all core pixels without one)
    score, stability : (n,) float32, each object's predicted IoU and stability score
    """

    index: tuple[int, int]
    area: np.ndarray
    first: np.ndarray
    edges: np.ndarray
    inside: np.ndarray
    score: np.ndarray
    stability: np.ndarray


def core_bounds(grid: TileGrid) -> tuple[np.ndarray, np.ndarray]:
    """Per axis (y, x): bounds (n + 1,) of the cores; window i's core spans [b[i], b[i + 1])."""
    out = []
    for starts, size, side in zip(grid.starts, grid.shape, grid.window_shape):
        cuts = (starts[1:] + starts[:-1] + side) // 2  # the middle of each overlap
        out.append(np.concatenate([[0], cuts, [size]]).astype(int))
    return out[0], out[1]


def core(grid: TileGrid, index: tuple[int, int]) -> tuple[int, int, int, int]:
    """(y0, x0, y1, x1) of window ``index``'s core, in image coordinates."""
    by, bx = core_bounds(grid)
    iy, ix = index
    return int(by[iy]), int(bx[ix]), int(by[iy + 1]), int(bx[ix + 1])


def inner_edges(grid: TileGrid, index: tuple[int, int]) -> tuple:
    """(y0, x0, y1, x1) of window ``index``'s edges in window coordinates; None for image edges."""
    y0, x0, y1, x1 = grid.window(index)
    h, w = grid.shape
    return (0 if y0 > 0 else None, 0 if x0 > 0 else None, y1 - y0 if y1 < h else None, x1 - x0 if x1 < w else None)


def summarise(grid: TileGrid, index: tuple[int, int], labels: np.ndarray, region=None, score=None, stability=None) -> WindowSummary:
    """The summary of a window's ``labels`` (local ids 1..n); ``score`` and ``stability`` (n,) default to 1.

    ``region`` (y0, x0, y1, x1), when given, is the part of the image whose
    objects are kept (see :func:`resolve`).
    """
    n = int(labels.max(initial=0))
    y0, x0, y1, x1 = grid.window(index)
    cy0, cx0, cy1, cx1 = core(grid, index)
    inside = labels[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    ids, first, counts = np.unique(inside.ravel(), return_index=True, return_counts=True)
    area, where = np.zeros(n + 1, np.int64), np.full(n + 1, -1, np.int64)
    area[ids], where[ids] = counts, first
    found = where >= 0
    ry, rx = np.divmod(where[found], cx1 - cx0)
    where[found] = (ry + cy0) * grid.shape[1] + rx + cx0
    in_region = area
    if region is not None:
        ry0, rx0, ry1, rx1 = max(region[0], cy0), max(region[1], cx0), min(region[2], cy1), min(region[3], cx1)
        in_region = np.zeros(n + 1, np.int64)
        if ry0 < ry1 and rx0 < rx1:
            in_region = np.bincount(labels[ry0 - y0 : ry1 - y0, rx0 - x0 : rx1 - x0].ravel(), minlength=n + 1)
    edges = np.zeros((n + 1, 4), bool)
    for side, (edge, strip) in enumerate(zip(inner_edges(grid, index), (labels[0], labels[:, 0], labels[-1], labels[:, -1]))):
        if edge is not None:
            edges[strip, side] = True
    ones = np.ones(n, np.float32)
    score = ones if score is None else np.asarray(score, np.float32)
    stability = ones if stability is None else np.asarray(stability, np.float32)
    return WindowSummary(tuple(index), area[1:], where[1:], edges[1:], in_region[1:], score, stability)


def neighbours(grid: TileGrid, index: tuple[int, int]) -> list[tuple[int, int]]:
    """The windows after ``index`` (raster order) among its 8 neighbours: each pair of neighbours once."""
    ny, nx = grid.grid_shape
    iy, ix = index
    candidates = [(iy, ix + 1), (iy + 1, ix - 1), (iy + 1, ix), (iy + 1, ix + 1)]
    return [(y, x) for y, x in candidates if 0 <= y < ny and 0 <= x < nx]


def overlap(grid: TileGrid, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) shared by windows ``a`` and ``b``, or None."""
    wa, wb = grid.window(a), grid.window(b)
    box = max(wa[0], wb[0]), max(wa[1], wb[1]), min(wa[2], wb[2]), min(wa[3], wb[3])
    return box if box[0] < box[2] and box[1] < box[3] else None


def links(a: np.ndarray, b: np.ndarray, min_iou: float = LINK_IOU) -> np.ndarray:
    """(k, 2) pairs (id in ``a``, id in ``b``) of objects that agree on the same pixels (two windows' views)."""
    a, b = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    both = (a > 0) & (b > 0)
    if not both.any():
        return np.zeros((0, 2), np.int64)
    base = int(b.max()) + 1
    pairs, shared = np.unique(a[both] * base + b[both], return_counts=True)
    ia, ib = np.divmod(pairs, base)
    area_a, area_b = np.bincount(a)[ia], np.bincount(b)[ib]
    iou = shared / (area_a + area_b - shared)
    return np.stack([ia, ib], axis=1)[iou >= min_iou]


class Resolved(NamedTuple):
    """The final ids: ``lookups[index]`` maps window ``index``'s local ids (0..n) to final ids (0 = dropped).

    ``score`` and ``stability`` (count,) are those of each final object's largest piece (by core area).
    """

    lookups: dict
    count: int
    score: np.ndarray
    stability: np.ndarray


def _components(summaries: list[WindowSummary], pair_links: list) -> tuple[dict, np.ndarray]:
    """(start of each window's nodes, component of each node): node of (window, local id k) = start + k - 1."""
    start, offset = {}, 0
    for s in summaries:
        start[s.index] = offset
        offset += len(s.area)
    rows = [start[a] + p[:, 0] - 1 for a, b, p in pair_links if len(p)]
    cols = [start[b] + p[:, 1] - 1 for a, b, p in pair_links if len(p)]
    rows = np.concatenate(rows) if rows else np.zeros(0, int)
    cols = np.concatenate(cols) if cols else np.zeros(0, int)
    graph = sparse.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(offset, offset))
    return start, connected_components(graph, directed=False)[1] if offset else np.zeros(0, int)


def _stack(summaries: list[WindowSummary], field: str, dtype) -> np.ndarray:
    parts = [getattr(s, field) for s in summaries]
    return np.concatenate(parts) if parts else np.zeros(0, dtype)


def resolve(summaries: list[WindowSummary], pair_links: list, min_area: int = 0, region=None) -> Resolved:
    """Join linked pieces into objects, drop the small ones and number the rest in raster order.

    ``pair_links`` holds (index_a, index_b, (k, 2) pairs of local ids) triples
    from :func:`links`. With ``region``, only the objects with a pixel in it
    are kept (the summaries then count those pixels, see :func:`summarise`).
    """
    start, component = _components(summaries, pair_links)
    if len(component) == 0:  # no window found anything
        return Resolved({s.index: np.zeros(1, np.uint32) for s in summaries}, 0, np.zeros(0, np.float32), np.zeros(0, np.float32))
    area, first = _stack(summaries, "area", np.int64), _stack(summaries, "first", np.int64)
    n = int(component.max()) + 1
    total = np.bincount(component, weights=area, minlength=n)
    earliest = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(earliest, component[first >= 0], first[first >= 0])
    keep = total >= max(min_area, 1)
    if region is not None:
        keep &= np.bincount(component, weights=_stack(summaries, "inside", np.int64), minlength=n) > 0
    kept = np.flatnonzero(keep)
    final = np.zeros(n, np.int64)
    final[kept[np.argsort(earliest[kept], kind="stable")]] = np.arange(1, len(kept) + 1)
    lookups = {}
    for s in summaries:
        lookup = np.zeros(len(s.area) + 1, np.uint32)
        lookup[1:] = final[component[start[s.index] : start[s.index] + len(s.area)]]
        lookups[s.index] = lookup
    node_final = final[component]
    largest = np.lexsort((-area, node_final))  # nodes by final id, the largest piece first
    largest = largest[node_final[largest] > 0]
    firsts = largest[np.r_[True, np.diff(node_final[largest]) > 0]] if len(largest) else largest
    return Resolved(lookups, len(kept), _stack(summaries, "score", np.float32)[firsts],
                    _stack(summaries, "stability", np.float32)[firsts])  # fmt: skip


def to_visit(grid: TileGrid, summaries: list[WindowSummary], pair_links: list, region) -> set:
    """The windows not segmented yet into which objects touching ``region`` may continue.

    An object touches the region when one of its pieces has a core pixel in
    it; it may continue into the neighbour beyond any inner window edge one
    of its pieces reaches.
    """
    start, component = _components(summaries, pair_links)
    if len(component) == 0:
        return set()
    n = int(component.max()) + 1
    touching = np.bincount(component, weights=_stack(summaries, "inside", np.int64), minlength=n) > 0
    done = {s.index for s in summaries}
    ny, nx = grid.grid_shape
    out = set()
    for s in summaries:
        mine = touching[component[start[s.index] : start[s.index] + len(s.area)]]
        iy, ix = s.index
        for side, (dy, dx) in enumerate(((-1, 0), (0, -1), (1, 0), (0, 1))):
            other = (iy + dy, ix + dx)
            if other not in done and 0 <= other[0] < ny and 0 <= other[1] < nx and (mine & s.edges[:, side]).any():
                out.add(other)
    return out


class Assembled:
    """The final (H, W) uint32 labels, read block by block from the windows' cores (for ``LabelImage(initial=...)``).

    Parameters
    ----------
    grid : TileGrid
    windows : (ny, nx, h, w) array-like
        The windows' label images (local ids), e.g. the scratch zarr array.
    lookups : dict
        From :func:`resolve`.
    """

    dtype = np.dtype(np.uint32)
    ndim = 2

    def __init__(self, grid: TileGrid, windows, lookups: dict) -> None:
        self.grid, self.windows, self.lookups = grid, windows, lookups
        self.shape = tuple(grid.shape)
        self._bounds = core_bounds(grid)

    def __getitem__(self, key) -> np.ndarray:
        ys, xs = key
        y0, y1, _ = ys.indices(self.shape[0])
        x0, x1, _ = xs.indices(self.shape[1])
        out = np.zeros((y1 - y0, x1 - x0), self.dtype)
        (by, bx) = self._bounds
        rows = range(max(int(np.searchsorted(by, y0, "right")) - 1, 0), int(np.searchsorted(by, y1, "left")))
        cols = range(max(int(np.searchsorted(bx, x0, "right")) - 1, 0), int(np.searchsorted(bx, x1, "left")))
        for iy in rows:
            for ix in cols:
                cy0, cx0 = max(by[iy], y0), max(bx[ix], x0)
                cy1, cx1 = min(by[iy + 1], y1), min(bx[ix + 1], x1)
                if cy0 >= cy1 or cx0 >= cx1:
                    continue
                wy0, wx0, _, _ = self.grid.window((iy, ix))
                local = np.asarray(self.windows[iy, ix, cy0 - wy0 : cy1 - wy0, cx0 - wx0 : cx1 - wx0])
                out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = self.lookups[(iy, ix)][local]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)
