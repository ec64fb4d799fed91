"""Drawing the annotator's state on its canvases; nothing here decides anything.

The main canvas has four layers, bottom to top: the image, the committed
labels, the current object, the prompts. The minimap shows the whole image
and a frame around the view. Every method draws inside ``hold_canvas`` and
under one lock, because the kernel, the decode thread and the overview thread
all draw.
"""

from __future__ import annotations

import threading

import ipywidgets as widgets
import numpy as np
from ipycanvas import MultiCanvas, hold_canvas

from .display import render_mask
from .viewport import Viewport

IMAGE, LABELS, OBJECT, PROMPTS = range(4)  # layers of the main canvas
MINIMAP_SIDE = 180
POSITIVE, NEGATIVE, BOX, RUBBER_BAND, FRAME, STROKE = "#20e040", "#ff3030", "#ffd600", "#ffffff", "#ff3030", "#00e5ff"


def canvas(layers: int, shape, css_class: str) -> MultiCanvas:
    h, w = (int(n) for n in shape)
    # an explicit CSS size equal to the pixel size, or the page scales the canvas and its mouse coordinates
    made = MultiCanvas(layers, width=w, height=h, layout=widgets.Layout(width=f"{w}px", height=f"{h}px"))
    made.add_class(css_class)
    return made


class Painter:
    """Draws an annotator's view: ``viewport`` of ``image_display`` + ``label_display`` + ``annotation``."""

    def __init__(self, viewport: Viewport, image_display, label_display, annotation):
        self.viewport = viewport
        self.image_display = image_display
        self.label_display = label_display
        self.annotation = annotation
        h, w = viewport.image_shape
        scale = MINIMAP_SIDE / max(h, w)
        self.canvas = canvas(4, viewport.canvas_shape, "samkit-canvas")
        self.minimap = canvas(2, (max(1, round(h * scale)), max(1, round(w * scale))), "samkit-minimap")
        self.lock = threading.RLock()
        self.labels_opacity, self.preview_opacity = 1.0, 1.0  # 0 hides the layer
        self.highlight: int | None = None  # the selected object, outlined
        self.stroke: list[tuple[float, float]] = []  # canvas (row, col) of the brush stroke being drawn
        self.stroke_radius = 0.0  # in canvas pixels

    def resize(self, canvas_shape) -> None:
        """Give the canvas a new (height, width) (its CSS size too, so mouse coordinates stay 1:1), then redraw."""
        h, w = (int(n) for n in canvas_shape)
        with self.lock:
            self.viewport.canvas_shape = (h, w)
            self.canvas.width, self.canvas.height = w, h
            self.canvas.layout.width, self.canvas.layout.height = f"{w}px", f"{h}px"
        self.all()

    @property
    def whole(self) -> Viewport:
        """The minimap's view: the whole image."""
        return Viewport.fit(self.viewport.image_shape, (self.minimap.height, self.minimap.width))

    def all(self) -> None:
        """Every layer, for the current view."""
        with self.lock, hold_canvas():
            self._put(IMAGE, self.image_display.render(self.viewport))
            self._labels()
            self._object(self.annotation.mask)
            self._prompts()
            self._minimap()

    def image(self) -> None:
        with self.lock, hold_canvas():
            self._put(IMAGE, self.image_display.render(self.viewport))
            self._minimap()

    def labels(self, bbox) -> None:
        """The labels inside image box ``bbox`` (y0, x0, y1, x1), after they changed there."""
        rect = self.viewport.canvas_rect(bbox)
        if rect is None:
            return
        r0, c0, r1, c1 = rect
        with self.lock, hold_canvas():
            self._labels(slice(r0, r1), slice(c0, c1))

    def labels_layer(self) -> None:
        """The whole labels layer (after its opacity or the highlighted object changed)."""
        with self.lock, hold_canvas():
            self._labels()

    def object(self, mask) -> None:
        with self.lock, hold_canvas():
            self._object(mask)

    def prompts(self, rubber_band=None) -> None:
        with self.lock, hold_canvas():
            self._prompts(rubber_band)

    # -- the layers, to be called inside lock + hold_canvas --
    def _put(self, layer: int, pixels: np.ndarray, at=(0, 0)) -> None:
        target = self.canvas[layer]
        target.clear_rect(at[1], at[0], pixels.shape[1], pixels.shape[0])  # pixels blend: clear first
        target.put_image_data(pixels, at[1], at[0])

    def _labels(self, rows: slice | None = None, cols: slice | None = None) -> None:
        if self.labels_opacity <= 0:
            self.canvas[LABELS].clear()
            return
        pixels = self.label_display.render(self.viewport, rows, cols, opacity=self.labels_opacity, highlight=self.highlight)
        self._put(LABELS, pixels, (rows.start if rows else 0, cols.start if cols else 0))

    def _object(self, mask) -> None:
        self.canvas[OBJECT].clear()
        drawn = render_mask(mask, self.viewport, self.preview_opacity) if self.preview_opacity > 0 else None
        if drawn is not None:
            rgba, (row, col) = drawn
            self.canvas[OBJECT].put_image_data(rgba, col, row)

    def _prompts(self, rubber_band=None) -> None:
        layer = self.canvas[PROMPTS]
        layer.clear()
        a = self.annotation
        for (y, x), positive in zip(a.points, a.point_labels):
            row, col = self.viewport.to_canvas(y, x)
            layer.fill_style = POSITIVE if positive else NEGATIVE
            layer.fill_circle(col, row, 5)
            layer.stroke_style, layer.line_width = "white", 1.5
            layer.stroke_circle(col, row, 5)
        for box, colour in ((a.box, BOX), (rubber_band, RUBBER_BAND)):
            if box is not None:
                r0, c0 = self.viewport.to_canvas(box[0], box[1])
                r1, c1 = self.viewport.to_canvas(box[2], box[3])
                layer.stroke_style, layer.line_width = colour, 2
                layer.stroke_rect(c0, r0, c1 - c0, r1 - r0)
        if self.stroke:
            layer.fill_style, layer.global_alpha = STROKE, 0.5
            for row, col in self.stroke:
                layer.fill_circle(col, row, max(self.stroke_radius, 1.0))
            layer.global_alpha = 1.0

    def _minimap(self) -> None:
        whole = self.whole
        self.minimap[0].put_image_data(self.image_display.render(whole), 0, 0)
        frame = self.minimap[1]
        frame.clear()
        y0, x0, y1, x1 = self.viewport.visible()
        r0, c0 = whole.to_canvas(y0, x0)
        r1, c1 = whole.to_canvas(y1, x1)
        frame.stroke_style, frame.line_width = FRAME, 2
        frame.stroke_rect(c0, r0, max(2, c1 - c0), max(2, r1 - r0))
