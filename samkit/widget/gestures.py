"""Mouse gestures on the annotator's canvas, by tool: what a press, a move and a release mean.

A press remembers where it started; moves only draw (the rubber band of a box,
the brush stroke, the view while panning); the release does the work, once per
gesture: a point, a box, one brush stroke as one undoable edit, a fill, an erase.
"""

from __future__ import annotations

import time

DRAG_PX = 5  # a press that moves further than this is a drag (box, pan, stroke), not a click
PAN_EVERY = 0.08  # seconds between frames while the view is dragged


def moved(a, b) -> bool:
    return abs(a[0] - b[0]) > DRAG_PX or abs(a[1] - b[1]) > DRAG_PX


class Gestures:
    """The mouse state of one annotator: where the button went down, the stroke so far, the last hover."""

    def __init__(self, annotator):
        self.annotator = annotator
        self.press: tuple[float, float] | None = None  # canvas (row, col) where the button went down
        self.pan_from: tuple[float, float] | None = None
        self.pan_drawn = 0.0
        h, w = annotator.viewport.canvas_shape
        self.hover: tuple[float, float] = (h / 2, w / 2)

    @property
    def mode(self) -> str:
        return self.annotator.controls.mode.value

    def down(self, row: float, col: float) -> None:
        self.press = self.pan_from = (row, col)
        if self.mode in ("brush", "eraser"):
            self._stroke_to(row, col)

    def move(self, row: float, col: float) -> None:
        a = self.annotator
        self.hover = (row, col)
        if self.press is None:
            a.show_hover(row, col)
        elif self.mode == "pan":
            if time.monotonic() - self.pan_drawn >= PAN_EVERY:  # the view follows the mouse
                self._pan_to(row, col)
                a.redraw()
                self.pan_drawn = time.monotonic()
        elif self.mode in ("brush", "eraser"):
            self._stroke_to(row, col)
        elif self.mode in ("point", "box") and moved(self.press, (row, col)):
            a.painter.prompts(rubber_band=self._box(self.press, (row, col)))

    def up(self, row: float, col: float) -> None:
        press, self.press = self.press, None
        if press is None:
            return
        a, mode = self.annotator, self.mode
        if mode == "pan":
            self._pan_to(row, col)
            a.view_changed()
        elif mode in ("brush", "eraser"):
            self._stroke_to(row, col)
            a.edit_stroke([a.viewport.to_image(*p) for p in a.painter.stroke], erase=mode == "eraser")
            a.painter.stroke = []
            a.painter.prompts()
        elif mode == "fill":
            a.fill_at(*a.viewport.to_image(row, col))
        elif mode == "remove":
            a.erase_at(*a.viewport.to_image(row, col))
        elif moved(press, (row, col)):
            a.set_box(self._box(press, (row, col)))
        elif mode == "point":
            y, x = a.viewport.to_image(row, col)
            a.add_point(y, x, positive=a.controls.sign.value)
        else:
            a.painter.prompts()

    def out(self, row: float, col: float) -> None:
        """The mouse left the canvas: a pan or a stroke ends there, a box is dropped."""
        if self.press is not None and self.mode in ("pan", "brush", "eraser"):
            self.up(row, col)
        elif self.press is not None:
            self.press = None
            self.annotator.painter.prompts()

    def _stroke_to(self, row: float, col: float) -> None:
        painter = self.annotator.painter
        painter.stroke.append((row, col))
        painter.stroke_radius = self.annotator.controls.brush_radius.value * self.annotator.viewport.zoom
        painter.prompts()

    def _pan_to(self, row: float, col: float) -> None:
        """Move the view so that the image point under the drag's last position is under (row, col)."""
        from_row, from_col = self.pan_from
        self.annotator.viewport.pan(from_row - row, from_col - col)
        self.pan_from = (row, col)

    def _box(self, start, end):
        """The image box between two canvas points (not clipped: clipping is the policy's, at the end)."""
        viewport = self.annotator.viewport
        (y0, x0), (y1, x1) = viewport.to_image(*start), viewport.to_image(*end)
        return [min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)]
