"""``Annotator``: click-to-segment in Jupyter, a thin view over :class:`samkit.Annotation`.

The kernel owns everything (prompts, view, labels); the canvas only shows
what the kernel draws on four layers: image, committed labels, the current
object, prompts. Each frame is rendered at screen resolution from the part
of the image in view (see :mod:`samkit.widget.display`), so the image's size
does not matter. Decoding runs on the annotation's decode thread and
embedding on the model's worker, so the notebook never waits for them.
"""

from __future__ import annotations

import functools
import html
import logging
import time

import ipywidgets as widgets

from ..engine.annotation import Annotation
from ..errors import SamkitError
from .controls import KEYS
from .display import ImageDisplay, LabelDisplay, colour_of
from .inputs import controls_for, label_image, session_for
from .painter import Painter
from .progress import EmbeddingProgress
from .viewport import Viewport

log = logging.getLogger(__name__)

DRAG_PX = 5  # a press that moves further than this is a box (or a pan), not a click
PAN_EVERY = 0.08  # seconds between frames while the view is dragged
PREFETCH_MAX = 16  # most windows embedded on their own for the view; more: "Embed all"
REDRAW_EVERY = 0.5  # seconds between redraws while the overview fills in


def guarded(method):
    """Run an event handler so that no exception reaches the notebook: it becomes a message."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except SamkitError as e:
            self.say(str(e), error=True)
        except Exception as e:  # a bug: keep the widget alive and say what happened
            log.warning("annotator: %s failed", method.__name__, exc_info=True)
            self.say(f"unexpected error ({type(e).__name__}: {e})", error=True)

    return run


class Annotator(widgets.VBox):
    """Segment objects in an image of any size by clicking, in a notebook.

    Parameters
    ----------
    image : path, array, :class:`samkit.io.Image` or :class:`samkit.Session`
        What to annotate (a 2D plane, grey, RGB or multichannel).
    model : model, registry name, checkpoint path or "classical", optional
        As for :class:`samkit.Session`. Default: SAM ``"vit_b"``, falling back
        to the classical model (not SAM; said in the widget) when its weights
        cannot be had.
    labels : LabelImage, array or path, optional
        Labels to continue from (a saved folder is reopened).
    autosave : path, optional
        Folder where the labels are saved after every change; reopening it
        (e.g. after a kernel restart) restores the committed objects.
    canvas_size : (int, int)
        (height, width) of the canvas in screen pixels.
    prefetch : bool
        Embed the tiles in view in the background (when at most 16).
    overwrite : bool
        New objects replace existing ones where they overlap (default: keep).
    **session_options
        ``tile_size``, ``halo``, ``level``, ``cache``, ``channels``, ... of
        :class:`samkit.Session`.

    Examples
    --------
    >>> annotator = samkit.Annotator("cells.tif", "vit_b_lm", autosave="cells-labels")  # doctest: +SKIP
    >>> annotator                                                    # doctest: +SKIP
    >>> table = annotator.measure()                                  # doctest: +SKIP
    """

    def __init__(self, image, model=None, *, labels=None, autosave=None, canvas_size=(600, 800),
                 prefetch: bool = True, overwrite: bool = False, **session_options):
        self.session, model_note = session_for(image, model, session_options)
        shape = self.session.shape
        self.labels = label_image(labels, autosave, shape)
        self.annotation = Annotation(self.session, self.labels, overwrite=overwrite, background=True)
        self.viewport = Viewport.fit(shape, canvas_size)
        self.prefetch = prefetch
        self._press: tuple[float, float] | None = None  # canvas (row, col) of the mouse button going down
        self._pan_from: tuple[float, float] | None = None  # where the view was last moved to while dragged
        self._pan_drawn = 0.0
        self._hover: tuple[float, float] = (canvas_size[0] / 2, canvas_size[1] / 2)
        self._last_redraw = 0.0
        self.image_display = ImageDisplay(self.session.image, self.session.intensity, on_overview=self._overview_grew)
        self.label_display = LabelDisplay(self.labels, on_overview=self._overview_grew)
        self.controls = controls_for(self.session)
        self.progress = EmbeddingProgress(self.controls)
        self.painter = Painter(self.viewport, self.image_display, self.label_display, self.annotation)
        self.canvas, self.minimap = self.painter.canvas, self.painter.minimap
        header = widgets.HTML(
            f"<b>samkit annotator</b> · {shape[0]} × {shape[1]} px · model: {self.session.model.name}"
            + (f" · <span style='color:#b00'>{model_note}</span>" if model_note else "")
        )
        c = self.controls
        body = widgets.HBox([self.canvas, widgets.VBox([self.minimap, c.hover])])
        super().__init__([header, *c.rows(), body, c.status, c.help])
        self._wire()
        self._set_contrast()
        self.redraw()
        self._prefetch()

    # -- wiring ------------------------------------------------------------
    def _wire(self) -> None:
        c, top = self.controls, self.canvas
        top.on_mouse_down(self._mouse_down)
        top.on_mouse_move(self._mouse_move)
        top.on_mouse_up(self._mouse_up)
        top.on_mouse_out(self._mouse_out)
        top.on_mouse_wheel(self._wheel)
        top.on_key_down(self._key)
        top.on_client_ready(self.redraw)
        self.minimap.on_mouse_down(self._minimap_click)
        for name in ("commit", "undo", "redo", "clear", "next_label", "zoom_in", "zoom_out", "fit", "cancel"):
            getattr(c, name).on_click(lambda _, name=name: getattr(self, name)())
        c.embed_view.on_click(lambda _: self.embed_view())
        c.embed_all.on_click(lambda _: self.embed_all())
        c.channels.observe(lambda _: self._set_contrast(redraw=True), "value")
        c.contrast.observe(lambda _: self._set_contrast(redraw=True), "value")
        self.annotation.on_preview(self._preview)
        self.labels.on_change(self._labels_changed)

    # -- drawing -----------------------------------------------------------
    def redraw(self) -> None:
        """Draw every layer for the current view."""
        self.painter.all()
        y0, x0, y1, x1 = self.viewport.visible()
        self.controls.zoom.value = f"zoom {self.viewport.zoom * 100:.3g} % · y {y0}–{y1}, x {x0}–{x1}"

    def _set_contrast(self, redraw: bool = False) -> None:
        low, high = self.controls.contrast.value
        self.image_display.set_contrast(self.controls.channels.value, low, high)
        if redraw:
            self.painter.image()

    def _preview(self, mask, error) -> None:  # on the decode thread
        self.painter.object(mask)
        if error is not None:
            self.say(str(error), error=True)
        elif mask is not None:
            self.say(f"object: {mask.area} px, score {mask.score:.2f} · Enter commits")
        elif self.annotation.has_prompts:
            self.say("no object here", error=True)

    def _labels_changed(self, bbox) -> None:
        self.label_display.changed(bbox)
        self.painter.labels(bbox)

    def _overview_grew(self) -> None:  # on the overview thread
        now = time.monotonic()
        if now - self._last_redraw < REDRAW_EVERY:
            return
        self._last_redraw = now
        try:
            self.redraw()
        except Exception:
            log.debug("redraw while the overview fills in failed", exc_info=True)

    def say(self, text: str, error: bool = False) -> None:
        """Show a short message under the canvas."""
        colour = "#b00020" if error else "#333"
        self.controls.status.value = f"<span style='color:{colour}'>{html.escape(text, quote=False)}</span>"

    # -- mouse and keys ----------------------------------------------------
    @guarded
    def _mouse_down(self, col: float, row: float) -> None:
        self._press = self._pan_from = (row, col)

    @guarded
    def _mouse_move(self, col: float, row: float) -> None:
        self._hover = (row, col)
        if self._press is None:
            y, x = self.viewport.to_image(row, col)
            h, w = self.session.shape
            label = int(self.labels[int(y), int(x)]) if 0 <= y < h and 0 <= x < w else 0
            self.controls.hover.value = f"y {int(y)}, x {int(x)}" + (f" · <b>label {label}</b>" if label else "")
        elif self.controls.mode.value == "pan":
            if time.monotonic() - self._pan_drawn >= PAN_EVERY:  # the view follows the mouse
                self._pan_to(row, col)
                self.redraw()
                self._pan_drawn = time.monotonic()
        elif self.controls.mode.value in ("positive", "negative") and _moved(self._press, (row, col)):
            self.painter.prompts(rubber_band=self._box(self._press, (row, col), clip=False))

    @guarded
    def _mouse_up(self, col: float, row: float) -> None:
        press, self._press = self._press, None
        if press is None:
            return
        mode = self.controls.mode.value
        if mode == "pan":
            self._pan_to(row, col)
            self._view_changed()
        elif mode == "erase":
            self._erase(row, col)
        elif _moved(press, (row, col)):
            self.set_box(self._box(press, (row, col)))
        else:
            y, x = self.viewport.to_image(row, col)
            self.add_point(y, x, positive=mode == "positive")

    @guarded
    def _mouse_out(self, col: float, row: float) -> None:
        if self._press is not None and self.controls.mode.value == "pan":
            self._mouse_up(col, row)  # the drag ends where the mouse left the canvas
        elif self._press is not None:
            self._press = None
            self.painter.prompts()

    def _pan_to(self, row: float, col: float) -> None:
        """Move the view so that the image point under the drag's last position is under (row, col)."""
        from_row, from_col = self._pan_from
        self.viewport.pan(from_row - row, from_col - col)
        self._pan_from = (row, col)

    @guarded
    def _wheel(self, dx: float, dy: float) -> None:
        if dy:
            self.viewport.zoom_by(1.25 if dy < 0 else 0.8, at=self._hover)
            self._view_changed()

    @guarded
    def _key(self, key: str, shift: bool, ctrl: bool, meta: bool) -> None:
        action = KEYS.get(key.lower() if len(key) == 1 else key)
        if action is None:
            return
        if action.startswith("mode_"):
            self.controls.mode.value = action[5:]
        elif action.startswith("pan_"):
            step = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}[action[4:]]
            h, w = self.viewport.canvas_shape
            self.pan(step[0] * h / 4, step[1] * w / 4)
        else:
            getattr(self, action)()

    @guarded
    def _minimap_click(self, col: float, row: float) -> None:
        self.viewport.center_on(*self.painter.whole.to_image(row, col))
        self._view_changed()

    def _box(self, start, end, clip: bool = True):
        (y0, x0), (y1, x1) = self.viewport.to_image(*start), self.viewport.to_image(*end)
        box = [min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)]
        if clip:
            h, w = self.session.shape
            box = [min(max(box[0], 0), h), min(max(box[1], 0), w), min(max(box[2], 0), h), min(max(box[3], 0), w)]
        return box

    # -- actions (buttons, keys, scripts) ----------------------------------
    @guarded
    def add_point(self, y: float, x: float, positive: bool = True) -> None:
        """Add a prompt point at image (y, x) (what a click does)."""
        h, w = self.session.shape
        if not (0 <= y < h and 0 <= x < w):
            self.say(f"the click at (y {y:.0f}, x {x:.0f}) is outside the image ({h} × {w})", error=True)
            return
        windows = self.session.windows((int(y), int(x), int(y) + 1, int(x) + 1))
        if not all(self.session.embedded()[w] for w in windows):
            self.say("embedding the tile under the click (once per tile)…")
        self.annotation.add_point(y, x, positive)
        self.painter.prompts()

    @guarded
    def set_box(self, box) -> None:
        """Set the box prompt (y0, x0, y1, x1) in image pixels (what a drag does)."""
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            self.say("the box is empty (drag inside the image to draw one)", error=True)
            return
        self.annotation.set_box(box)
        self.painter.prompts()

    def _erase(self, row: float, col: float) -> None:
        y, x = self.viewport.to_image(row, col)
        h, w = self.session.shape
        if not (0 <= y < h and 0 <= x < w):
            self.say("outside the image: nothing to erase", error=True)
            return
        label = self.annotation.erase_at(y, x)
        self.say(f"erased object {label}" if label else "no object there to erase")

    @guarded
    def commit(self) -> int | None:
        """Write the current object into the labels; returns its id (None when there is nothing to commit)."""
        if self.annotation.decoding:
            self.say("still working on the current object: commit when it shows", error=True)
            return None
        if self.annotation.mask is None:
            self.say("nothing to commit: click an object first", error=True)
            return None
        label = self.annotation.commit()
        self.painter.prompts()
        self.say(f"committed object {label} (colour {colour_of(label)}); next: {self.labels.next_label}")
        return label

    @guarded
    def undo(self) -> None:
        """Undo the last prompt, or else the last change of the labels."""
        if not self.annotation.undo():
            self.say("nothing to undo")
        self.painter.prompts()

    @guarded
    def redo(self) -> None:
        if not self.annotation.redo():
            self.say("nothing to redo")

    @guarded
    def clear(self) -> None:
        """Drop the current prompts and object."""
        self.annotation.clear()
        self.painter.prompts()

    @guarded
    def next_label(self) -> None:
        label = self.annotation.next_label()
        self.painter.prompts()
        self.say(f"next object: {label}")

    @guarded
    def zoom_in(self) -> None:
        self.viewport.zoom_by(2.0)
        self._view_changed()

    @guarded
    def zoom_out(self) -> None:
        self.viewport.zoom_by(0.5)
        self._view_changed()

    @guarded
    def fit(self) -> None:
        self.viewport.fit_all()
        self._view_changed()

    @guarded
    def pan(self, rows: float, cols: float) -> None:
        """Move the view by (rows, cols) screen pixels."""
        self.viewport.pan(rows, cols)
        self._view_changed()

    @guarded
    def show(self, y: float, x: float, zoom: float | None = None) -> None:
        """Centre the view on image (y, x), optionally at ``zoom`` screen pixels per image pixel."""
        if zoom is not None:
            self.viewport.zoom = zoom
        self.viewport.center_on(y, x)
        self._view_changed()

    def _view_changed(self) -> None:
        self.redraw()
        self._prefetch()

    # -- embedding ---------------------------------------------------------
    def _prefetch(self) -> None:
        if self.prefetch and len(self.session.windows(self.viewport.visible())) <= PREFETCH_MAX:
            self.embed_view()

    @guarded
    def embed_view(self) -> None:
        """Embed the tiles in view, in the background."""
        self.progress.track(lambda progress: self.session.embed(self.viewport.visible(), progress=progress))

    @guarded
    def embed_all(self) -> None:
        """Embed every tile of the image, in the background."""
        self.progress.track(lambda progress: self.session.embed_all(progress=progress))

    @guarded
    def cancel(self) -> None:
        """Stop embedding (a click waiting for its tile says it was cancelled)."""
        self.session.cancel()
        self.progress.stopped()

    # -- results -----------------------------------------------------------
    def measure(self, **options):
        """The measurement table of the committed objects (see :func:`samkit.measure`)."""
        return self.annotation.measure(**options)

    def save(self, path) -> None:
        """Save the labels (with their history) to the folder ``path`` and autosave there from now on."""
        self.labels.save(path)

    def close(self) -> None:
        """Stop background work and close the widget."""
        self.annotation.close()
        self.image_display.close()
        self.label_display.close()
        self.labels.off_change(self._labels_changed)
        super().close()


def _moved(a, b) -> bool:
    return abs(a[0] - b[0]) > DRAG_PX or abs(a[1] - b[1]) > DRAG_PX
