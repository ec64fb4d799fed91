"""Where the annotator's parts go, and how wide the canvas is: it follows the notebook column.

The page reports the column's width (:class:`~samkit.widget.page.PageBridge`); the
canvas takes what the side panel (minimap, read-out, object list) leaves, between
``MIN_CANVAS`` and the width asked for, and the height the image needs at that width
(no more than asked for). In a column too narrow for both side by side
(under about 700 px) the side panel goes below the canvas, which then takes the
whole width: the minimap and the read-out are always in view with the canvas.
"""

from __future__ import annotations

import ipywidgets as widgets

from .page import PageBridge

SIDE = 250  # px: the side panel (minimap 180 px + margins)
GAP = 16  # px between canvas and side panel, and to the column's edge
MIN_CANVAS = 320  # px: narrower, the side panel goes below
MIN_HEIGHT = 240  # px: the canvas is as tall as the image needs at its width, but no less


class Layout:
    """The annotator's children, and the canvas size for the column width the page reports."""

    def __init__(self, annotator, canvas_size):
        self.annotator = annotator
        self.largest = (int(canvas_size[0]), int(canvas_size[1]))
        self.page = PageBridge()
        a, c = annotator, annotator.controls
        self.side = widgets.VBox([a.minimap, c.hover, a.objects.widget],
                                 layout=widgets.Layout(width=f"{SIDE}px", min_width=f"{SIDE}px"))  # fmt: skip
        self.body = widgets.HBox([a.canvas, self.side], layout=widgets.Layout(flex_flow="row wrap", grid_gap=f"{GAP}px"))
        self.extras = widgets.Accordion(children=[a.measurements.widget, a.everything.widget, a.picker.widget],
                                        titles=("Measurements", "Segment everything", "Model"))  # fmt: skip
        self.extras.selected_index = None
        self.page.observe(lambda change: self.fit(change["new"]), "width")

    def children(self) -> list[widgets.Widget]:
        a, c = self.annotator, self.annotator.controls
        return [a.header, *c.rows(), self.body, c.status, c.help, self.extras, self.page]

    def canvas_shape_for(self, width: int) -> tuple[int, int]:
        """(height, width) of the canvas in a column ``width`` px wide: as wide as it can, no taller than the image needs."""
        most_h, most_w = self.largest
        beside = width - SIDE - 2 * GAP
        fitted = beside if beside >= MIN_CANVAS else width - GAP  # else: the side panel wraps below
        fitted = max(MIN_CANVAS // 2, min(most_w, fitted))
        h, w = self.annotator.viewport.image_shape
        return min(most_h, max(MIN_HEIGHT, round(fitted * h / w))), fitted

    def fit(self, width: int) -> None:
        """Size the canvas for a column ``width`` px wide (0: unknown, keep it)."""
        if width <= 0:
            return
        shape = self.canvas_shape_for(width)
        viewport = self.annotator.viewport
        if shape != tuple(viewport.canvas_shape):
            whole = viewport == type(viewport).fit(viewport.image_shape, viewport.canvas_shape)
            viewport.canvas_shape = shape
            if whole:  # the whole image stays in view
                viewport.fit_all()
            self.annotator.painter.resize(shape)
            self.annotator.redraw()
