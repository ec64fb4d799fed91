"""What the canvas shows, rendered at screen resolution from a (possibly huge) image.

Only the visible part is read, from the pyramid level closest to the screen
resolution. Images without a coarse enough level get an overview (a strided
copy of at most ``OVERVIEW_SIDE`` pixels a side) built in the background
block by block, so zooming out on a 20000 x 20000 image never reads it whole.
Committed labels keep the same kind of overview, updated on every change.
Everything here is numpy: (h, w, 3) RGB or (h, w, 4) RGBA arrays for the
canvas, tested without a browser.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
from matplotlib.colors import hsv_to_rgb

from ..intensity import IntensityPolicy
from .viewport import Viewport

log = logging.getLogger(__name__)

OVERVIEW_SIDE = 2048  # longest side of the in-memory overview
READ_BUDGET = 8 * 2**20  # most source pixels read for one frame before a coarser source is used
BACKGROUND = np.array([40, 40, 40], np.uint8)  # canvas outside the image
FILL_ALPHA, EDGE_ALPHA = 110, 255
PREVIEW_RGB = np.array([255, 214, 0], np.uint8)  # the object being prompted
HIGHLIGHT_RGBA = np.array([255, 255, 255, 255], np.uint8)  # the outline of the selected object


def label_palette(n: int = 256) -> np.ndarray:
    """(n, 4) uint8 RGBA colours for label ids (id % (n - 1) + 1); colour 0 is transparent.

    Hues follow the golden ratio, so neighbouring ids get distant colours.
    """
    hues = (np.arange(1, n) * 0.618033988749895) % 1.0
    sat = np.where(np.arange(1, n) % 2, 0.85, 0.6)
    rgb = hsv_to_rgb(np.stack([hues, sat, np.ones(n - 1)], axis=1))
    palette = np.zeros((n, 4), np.uint8)
    palette[1:, :3] = (rgb * 255).round()
    palette[1:, 3] = FILL_ALPHA
    return palette


PALETTE = label_palette()


def colour_of(label: int) -> str:
    """The CSS colour of ``label`` on the canvas."""
    r, g, b, _ = PALETTE[_palette_index(np.array([label]))[0]]
    return f"#{r:02x}{g:02x}{b:02x}"


def _palette_index(ids: np.ndarray) -> np.ndarray:
    return np.where(ids > 0, (ids - 1) % (len(PALETTE) - 1) + 1, 0)


@dataclass
class Source:
    """One resolution of the image: ``factor`` = level-0 pixels per source pixel along (y, x)."""

    shape: tuple[int, int]
    factor: tuple[float, float]
    read: Callable[[int, int, int, int], np.ndarray]


class Overview:
    """A strided copy of a large 2D (+ channels) array, filled in a background thread.

    Pixel (i, j) of the overview is source pixel (i * step, j * step).
    """

    def __init__(self, source: Source, step: int, dtype, channels: int | None, on_block: Callable | None = None):
        h, w = source.shape
        self.step = step
        self.source = source
        shape = (-(-h // step), -(-w // step)) + (() if channels is None else (channels,))
        self.array = np.zeros(shape, dtype)
        self.filled = np.zeros(self.array.shape[:2], bool)
        self.factor = (source.factor[0] * step, source.factor[1] * step)
        self._on_block = on_block
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def complete(self) -> bool:
        return bool(self.filled.all())

    def as_source(self) -> Source:
        def read(y0, x0, y1, x1):
            return self.array[y0:y1, x0:x1]

        return Source(self.array.shape[:2], self.factor, read)

    def update(self, bbox) -> None:
        """Re-read source box (y0, x0, y1, x1) (source pixels) into the overview."""
        s = self.step
        y0, x0 = -(-bbox[0] // s) * s, -(-bbox[1] // s) * s  # first sampled rows/cols inside the box
        y1, x1 = min(bbox[2], self.source.shape[0]), min(bbox[3], self.source.shape[1])
        if y0 >= y1 or x0 >= x1:
            return
        block = np.asarray(self.source.read(y0, x0, y1, x1))[::s, ::s]
        self.array[y0 // s : y0 // s + block.shape[0], x0 // s : x0 // s + block.shape[1]] = block
        self.filled[y0 // s : y0 // s + block.shape[0], x0 // s : x0 // s + block.shape[1]] = True

    def fill(self, block_side: int = 2048) -> None:
        """Read the whole source block by block (call :meth:`start` to do it in the background)."""
        s = self.step
        side = -(-block_side // s) * s
        h, w = self.source.shape
        for y in range(0, h, side):
            for x in range(0, w, side):
                if self._stop.is_set():
                    return
                self.update((y, x, min(h, y + side), min(w, x + side)))
                if self._on_block is not None:
                    self._on_block()

    def start(self) -> None:
        def run():
            try:
                self.fill()
            except Exception:  # the overview is a convenience: fall back to reading the source
                log.warning("building the overview failed", exc_info=True)

        self._thread = threading.Thread(target=run, name="samkit-overview", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()


def _sources(levels_shapes, read_level) -> list[Source]:
    h0, w0 = levels_shapes[0][:2]
    return [
        Source((int(s[0]), int(s[1])), (h0 / s[0], w0 / s[1]), lambda y0, x0, y1, x1, k=k: read_level(k, y0, x0, y1, x1))
        for k, s in enumerate(levels_shapes)
    ]


def _needs_overview(sources: list[Source]) -> int:
    """The step of an overview of the coarsest source, 0 when that source is small enough to read whole."""
    h, w = sources[-1].shape
    if h * w <= READ_BUDGET:
        return 0
    return int(np.ceil(max(h, w) / OVERVIEW_SIDE))


def pick(sources: list[Source], viewport: Viewport, ys: np.ndarray, xs: np.ndarray) -> Source:
    """The coarsest source still at screen resolution, or coarser when that would read too much."""
    wanted = max(1.0, 1.0 / viewport.zoom)
    ordered = sorted(sources, key=lambda s: max(s.factor))
    fine_enough = [s for s in ordered if max(s.factor) <= wanted * 1.001] or ordered[:1]
    candidates = [fine_enough[-1]] + [s for s in ordered if max(s.factor) > max(fine_enough[-1].factor)]
    vy, vx = ys[ys >= 0], xs[xs >= 0]
    for source in candidates:
        if vy.size == 0 or vx.size == 0:
            return source
        fy, fx = source.factor
        area = ((vy.max() - vy.min()) / fy + 1) * ((vx.max() - vx.min()) / fx + 1)
        if area <= READ_BUDGET:
            return source
    return candidates[-1]


def sample(source: Source, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Source values at level-0 rows ``ys`` x cols ``xs`` (-1 = outside), and the inside mask."""
    inside = (ys >= 0)[:, None] & (xs >= 0)[None, :]
    fy, fx = source.factor
    ly = np.minimum(((ys + 0.5) / fy).astype(np.int64), source.shape[0] - 1)
    lx = np.minimum(((xs + 0.5) / fx).astype(np.int64), source.shape[1] - 1)
    vy, vx = ly[ys >= 0], lx[xs >= 0]
    if vy.size == 0 or vx.size == 0:
        return None, inside
    y0, x0 = int(vy.min()), int(vx.min())
    region = np.asarray(source.read(y0, x0, int(vy.max()) + 1, int(vx.max()) + 1))
    values = region[np.clip(ly - y0, 0, region.shape[0] - 1)[:, None], np.clip(lx - x0, 0, region.shape[1] - 1)[None, :]]
    return values, inside


class ImageDisplay:
    """The visible part of an image as (h, w, 3) uint8 RGB, with a contrast and channel choice.

    Parameters
    ----------
    image : samkit.io.Image
        In (y, x, c) order (``Image.yxc()``).
    policy : IntensityPolicy
        The channels shown and their contrast limits (see :meth:`set_contrast`).
    on_overview : callable, optional
        Called (from a background thread) after each block of the overview.
    """

    def __init__(self, image, policy: IntensityPolicy, on_overview: Callable | None = None):
        self.image = image
        self.policy = policy
        self.sources = _sources(image.level_shapes, lambda k, *box: image.read(*box, level=k))
        self.overview: Overview | None = None
        step = _needs_overview(self.sources)
        if step:
            self.overview = Overview(self.sources[-1], step, image.dtype, image.shape[2], on_overview)
            self.overview.start()

    def set_contrast(self, channels, low, high) -> None:
        """Show ``channels`` (1 to 3) with ``low``..``high`` mapped to black..full brightness."""
        channels = tuple(int(c) for c in channels)
        self.policy = IntensityPolicy(channels, (float(low),) * len(channels), (float(high),) * len(channels))

    def all_sources(self) -> list[Source]:
        return self.sources + ([self.overview.as_source()] if self.overview is not None else [])

    def render(self, viewport: Viewport, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
        """(h, w, 3) uint8 of the canvas (or its ``rows`` x ``cols`` part)."""
        ys, xs = viewport.pixel_centres(rows, cols)
        values, inside = sample(pick(self.all_sources(), viewport, ys, xs), ys, xs)
        out = np.empty(inside.shape + (3,), np.uint8)
        out[:] = BACKGROUND
        if values is not None:
            rgb = self.policy.apply(values)
            out[inside] = rgb[inside]
        return out

    def close(self) -> None:
        if self.overview is not None:
            self.overview.stop()


class LabelDisplay:
    """Committed labels as (h, w, 4) RGBA: one colour per id, opaque outlines, clear background.

    Keeps an overview like :class:`ImageDisplay` when the label image is large,
    updated from the labels' change notifications.
    """

    def __init__(self, labels, on_overview: Callable | None = None):
        self.labels = labels
        self.sources = _sources([labels.shape], lambda k, y0, x0, y1, x1: labels.read((y0, x0, y1, x1)))
        self.overview: Overview | None = None
        step = _needs_overview(self.sources)
        if step:
            self.overview = Overview(self.sources[0], step, labels.dtype, None, on_overview)
            if labels.objects:  # start from the labels already there
                self.overview.start()
            else:
                self.overview.filled[:] = True

    def changed(self, bbox) -> None:
        """Call when labels changed inside bbox (y0, x0, y1, x1)."""
        if self.overview is not None:
            self.overview.update(bbox)

    def ids(self, viewport: Viewport, rows: slice | None = None, cols: slice | None = None) -> np.ndarray:
        """(h, w) label ids under the canvas pixels (0 outside the image)."""
        ys, xs = viewport.pixel_centres(rows, cols)
        sources = self.sources + ([self.overview.as_source()] if self.overview is not None else [])
        values, inside = sample(pick(sources, viewport, ys, xs), ys, xs)
        if values is None:
            return np.zeros(inside.shape, np.int64)
        return np.where(inside, values, 0).astype(np.int64)

    def render(self, viewport: Viewport, rows: slice | None = None, cols: slice | None = None, *,
               opacity: float = 1.0, highlight: int | None = None) -> np.ndarray:  # fmt: skip
        return rgba_of_ids(self.ids(viewport, rows, cols), opacity=opacity, highlight=highlight)

    def close(self) -> None:
        if self.overview is not None:
            self.overview.stop()


def edges(ids: np.ndarray) -> np.ndarray:
    """(h, w) bool: pixels of a non-zero id with a 4-neighbour of another value (the canvas's outline)."""
    edge = np.zeros(ids.shape, bool)
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    return edge & (ids > 0)


def rgba_of_ids(ids: np.ndarray, *, opacity: float = 1.0, highlight: int | None = None) -> np.ndarray:
    """(h, w, 4) RGBA of label ids: fill and outline in the id's colour, times ``opacity``; ``highlight``: outlined white."""
    rgba = PALETTE[_palette_index(ids)]
    outline = edges(ids)
    rgba[outline, 3] = EDGE_ALPHA
    if opacity < 1:
        rgba[..., 3] = (rgba[..., 3] * opacity).astype(np.uint8)
    if highlight:
        rgba[outline & (ids == highlight)] = HIGHLIGHT_RGBA
    return rgba


def render_mask(mask, viewport: Viewport, opacity: float = 1.0):
    """The preview of ``mask`` (a :class:`samkit.Mask`): ((h, w, 4) RGBA, canvas (row, col)), or None off screen."""
    if mask is None or mask.empty:
        return None
    rect = viewport.canvas_rect(mask.bbox)
    if rect is None:
        return None
    r0, c0, r1, c1 = rect
    ys, xs = viewport.pixel_centres(slice(r0, r1), slice(c0, c1))
    y0, x0, y1, x1 = mask.bbox
    iy, ix = ys - y0, xs - x0
    okay = ((iy >= 0) & (iy < y1 - y0) & (ys >= 0))[:, None] & ((ix >= 0) & (ix < x1 - x0) & (xs >= 0))[None, :]
    values = mask.crop[np.clip(iy, 0, y1 - y0 - 1)[:, None], np.clip(ix, 0, x1 - x0 - 1)[None, :]] & okay
    rgba = np.zeros(values.shape + (4,), np.uint8)
    rgba[values, :3] = PREVIEW_RGB
    rgba[values, 3] = FILL_ALPHA * opacity
    rgba[edges(values.astype(np.int64)), 3] = EDGE_ALPHA * opacity
    return rgba, (r0, c0)
