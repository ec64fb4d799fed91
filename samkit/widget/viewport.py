"""The part of a (possibly huge) image that a canvas shows: pure geometry, no widgets.

A :class:`Viewport` maps canvas pixels to image pixels and back, in (y, x):
image (y, x) = origin + (canvas (row, col) + 0.5) / zoom, where ``zoom`` is
canvas pixels per image pixel (1 = one image pixel per screen pixel, 0.05 =
a 20000-pixel image in a 1000-pixel canvas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ZOOM = 32.0  # canvas pixels per image pixel when zoomed furthest in


@dataclass
class Viewport:
    """What a ``canvas_shape`` canvas shows of an ``image_shape`` image.

    Attributes
    ----------
    image_shape, canvas_shape : (int, int)
        (height, width) of the image (level 0) and of the canvas.
    center : (float, float)
        Image (y, x) at the centre of the canvas.
    zoom : float
        Canvas pixels per image pixel.
    """

    image_shape: tuple[int, int]
    canvas_shape: tuple[int, int]
    center: tuple[float, float] = (0.0, 0.0)
    zoom: float = 1.0

    @classmethod
    def fit(cls, image_shape, canvas_shape) -> Viewport:
        """The whole image, as large as the canvas allows."""
        view = cls(tuple(int(n) for n in image_shape), tuple(int(n) for n in canvas_shape))
        view.fit_all()
        return view

    # -- state changes -----------------------------------------------------
    def fit_all(self) -> None:
        """Show the whole image, centred, as large as the canvas allows."""
        (h, w), (ch, cw) = self.image_shape, self.canvas_shape
        self.zoom = min(ch / h, cw / w, MAX_ZOOM)
        self.center = (h / 2, w / 2)

    def zoom_by(self, factor: float, at: tuple[float, float] | None = None) -> None:
        """Zoom by ``factor`` keeping the image point under canvas (row, col) ``at`` in place."""
        at = (self.canvas_shape[0] / 2, self.canvas_shape[1] / 2) if at is None else at
        fixed = self.to_image(*at)
        self.zoom = float(np.clip(self.zoom * factor, self.min_zoom, MAX_ZOOM))
        # put ``fixed`` back under ``at``
        cy = fixed[0] - (at[0] - self.canvas_shape[0] / 2) / self.zoom
        cx = fixed[1] - (at[1] - self.canvas_shape[1] / 2) / self.zoom
        self.center = self._clamped(cy, cx)

    def pan(self, rows: float, cols: float) -> None:
        """Move the view by (rows, cols) canvas pixels (positive: towards larger y, x)."""
        self.center = self._clamped(self.center[0] + rows / self.zoom, self.center[1] + cols / self.zoom)

    def center_on(self, y: float, x: float) -> None:
        self.center = self._clamped(y, x)

    @property
    def min_zoom(self) -> float:
        """Zoomed out so that the whole image fits twice over (never below what fitting needs)."""
        (h, w), (ch, cw) = self.image_shape, self.canvas_shape
        return min(ch / h, cw / w, 1.0) / 2

    def _clamped(self, y: float, x: float) -> tuple[float, float]:
        h, w = self.image_shape
        return float(np.clip(y, 0, h)), float(np.clip(x, 0, w))

    # -- mapping -----------------------------------------------------------
    @property
    def origin(self) -> tuple[float, float]:
        """Image (y, x) of the canvas's top-left corner."""
        ch, cw = self.canvas_shape
        return self.center[0] - ch / 2 / self.zoom, self.center[1] - cw / 2 / self.zoom

    def to_image(self, row: float, col: float) -> tuple[float, float]:
        """Canvas (row, col) -> image (y, x), continuous (pixel i covers [i, i + 1))."""
        oy, ox = self.origin
        return oy + row / self.zoom, ox + col / self.zoom

    def to_canvas(self, y: float, x: float) -> tuple[float, float]:
        """Image (y, x) -> canvas (row, col), continuous."""
        oy, ox = self.origin
        return (y - oy) * self.zoom, (x - ox) * self.zoom

    def visible(self) -> tuple[int, int, int, int]:
        """(y0, x0, y1, x1): the image pixels the canvas shows, clipped to the image."""
        h, w = self.image_shape
        oy, ox = self.origin
        ch, cw = self.canvas_shape
        y0, x0 = max(0, int(np.floor(oy))), max(0, int(np.floor(ox)))
        y1, x1 = min(h, int(np.ceil(oy + ch / self.zoom))), min(w, int(np.ceil(ox + cw / self.zoom)))
        return y0, x0, max(y0, y1), max(x0, x1)

    def pixel_centres(self, rows: slice | None = None, cols: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Image row and column (int; -1 where outside the image) under each canvas pixel centre.

        ``rows`` / ``cols`` restrict to part of the canvas (default: all of it).
        """
        ch, cw = self.canvas_shape
        rows = range(ch)[rows or slice(None)]
        cols = range(cw)[cols or slice(None)]
        oy, ox = self.origin
        ys = np.floor(oy + (np.arange(rows.start, rows.stop) + 0.5) / self.zoom).astype(np.int64)
        xs = np.floor(ox + (np.arange(cols.start, cols.stop) + 0.5) / self.zoom).astype(np.int64)
        h, w = self.image_shape
        ys[(ys < 0) | (ys >= h)] = -1
        xs[(xs < 0) | (xs >= w)] = -1
        return ys, xs

    def canvas_rect(self, bbox) -> tuple[int, int, int, int] | None:
        """Canvas (row0, col0, row1, col1) covering image box (y0, x0, y1, x1); None when off screen."""
        r0, c0 = self.to_canvas(bbox[0], bbox[1])
        r1, c1 = self.to_canvas(bbox[2], bbox[3])
        ch, cw = self.canvas_shape
        r0, c0 = max(0, int(np.floor(r0)) - 1), max(0, int(np.floor(c0)) - 1)
        r1, c1 = min(ch, int(np.ceil(r1)) + 1), min(cw, int(np.ceil(c1)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return r0, c0, r1, c1
