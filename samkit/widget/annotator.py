"""``Annotator``: click-to-segment in Jupyter, a thin view over :class:`samkit.Annotation`.

The kernel owns everything (prompts, view, labels); the canvas only shows
what the kernel draws on four layers: image, committed labels, the current
object, prompts. Each frame is rendered at screen resolution from the part
of the image in view (see :mod:`samkit.widget.display`), so the image's size
does not matter. Decoding runs on the annotation's decode thread and
embedding on the model's worker, so the notebook never waits for them.
Keys, the default model and prompt bounds follow :mod:`samkit.interaction`,
like the napari plugin.
"""

from __future__ import annotations

import html
import logging
import threading
import time

import ipywidgets as widgets

from .. import interaction
from ..engine.annotation import Annotation
from ..engine.session import Session
from .controls import MODES
from .display import ImageDisplay, LabelDisplay, colour_of
from .edits import EditActions
from .everything import EverythingPanel
from .gestures import Gestures
from .guard import guarded
from .inputs import controls_for, label_image, session_for
from .layout import Layout
from .measure import MeasurePanel
from .navigation import ViewActions
from .objects import ObjectList
from .painter import Painter
from .picker import ModelPicker
from .progress import EmbeddingProgress
from .viewport import Viewport

log = logging.getLogger(__name__)

REDRAW_EVERY = 0.5  # seconds between redraws while the overview fills in
MODE_KEYS = {action: mode for mode, (_, action, _) in MODES.items() if action}


class Annotator(EditActions, ViewActions, widgets.VBox):
    """Segment objects in an image of any size by clicking, in a notebook.

    Parameters
    ----------
    image : path, array, :class:`samkit.io.Image` or :class:`samkit.Session`
        What to annotate (a 2D plane, grey, RGB or multichannel).
    model : model, registry name, checkpoint path or "classical", optional
        As for :class:`samkit.Session`. Default: :func:`samkit.interaction.default_model`
        (a SAM checkpoint already in the cache, else the classical model, said in red);
        nothing is downloaded unless you name a model or pick one in the widget.
    labels : LabelImage, array or path, optional
        Labels to continue from (a saved folder is reopened).
    autosave : path, optional
        Folder where the labels are saved after every change; reopening it
        (after a kernel restart, or running the notebook again) restores the committed objects.
    canvas_size : (int, int)
        Largest (height, width) of the canvas in screen pixels; narrower when the
        notebook column is narrow.
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
        self._session_options = session_options
        shape = self.session.shape
        self.labels = label_image(labels, autosave, shape)
        self.annotation = Annotation(self.session, self.labels, overwrite=overwrite, background=True)
        self.viewport = Viewport.fit(shape, canvas_size)
        self.prefetch = prefetch
        self._last_redraw = 0.0
        self._committing = threading.Lock()
        self.image_display = ImageDisplay(self.session.image, self.session.intensity, on_overview=self._overview_grew)
        self.label_display = LabelDisplay(self.labels, on_overview=self._overview_grew)
        self.controls = controls_for(self.session)
        self.progress = EmbeddingProgress(self.controls, self.session)
        self.painter = Painter(self.viewport, self.image_display, self.label_display, self.annotation)
        self.canvas, self.minimap = self.painter.canvas, self.painter.minimap
        self.gestures = Gestures(self)
        self.objects = ObjectList(self)
        self.measurements = MeasurePanel(self)
        self.everything = EverythingPanel(self)
        self.picker = ModelPicker(self)
        self.picker.show(model_note)
        self.header = widgets.HTML()
        self.layout_ = Layout(self, canvas_size)
        super().__init__(self.layout_.children())
        self.add_class("samkit-annotator")
        self._show_header(model_note)
        self._wire()
        self._set_contrast()
        self.objects.refresh()
        self.redraw()
        self._prefetch()

    # -- wiring ------------------------------------------------------------
    def _wire(self) -> None:
        c, top = self.controls, self.canvas
        top.on_mouse_down(lambda col, row: self._gesture("down", row, col))
        top.on_mouse_move(lambda col, row: self._gesture("move", row, col))
        top.on_mouse_up(lambda col, row: self._gesture("up", row, col))
        top.on_mouse_out(lambda col, row: self._gesture("out", row, col))
        top.on_mouse_wheel(self._wheel)
        top.on_key_down(lambda key, shift, ctrl, meta: self._key(interaction.key_name(key, shift=shift, ctrl=ctrl, meta=meta)))
        top.on_client_ready(self.redraw)
        self.layout_.page.on_key(lambda key, shift: self._key(interaction.key_name(key, shift=shift)))
        self.minimap.on_mouse_down(self._minimap_click)
        for name in ("undo", "redo", "clear", "next_label", "zoom_in", "zoom_out", "fit", "cancel", "embed_view", "embed_all"):
            getattr(c, name).on_click(lambda _, name=name: getattr(self, name)())
        c.commit.on_click(lambda _: self.commit_later())
        c.channels.observe(lambda _: self._set_contrast(redraw=True), "value")
        c.contrast.observe(lambda _: self._set_contrast(redraw=True), "value")
        for name in ("show_labels", "labels_opacity", "show_preview", "preview_opacity"):
            getattr(c, name).observe(lambda _: self._set_opacity(), "value")
        self.annotation.on_preview(self._preview)
        self.labels.on_change(self._labels_changed)
        self.labels.on_attributes(self._attributes_changed)

    @guarded
    def _gesture(self, what: str, row: float, col: float) -> None:
        getattr(self.gestures, what)(row, col)

    # -- drawing -----------------------------------------------------------
    def redraw(self) -> None:
        """Draw every layer for the current view."""
        self.painter.all()
        y0, x0, y1, x1 = self.viewport.visible()
        self.controls.zoom.value = f"zoom {self.viewport.zoom * 100:.3g} % · y {y0}–{y1}, x {x0}–{x1}"

    def _show_header(self, note: str = "") -> None:
        h, w = self.session.shape
        text = f"<b>samkit annotator</b> · {h} × {w} px · model: {html.escape(interaction.describe(self.session.model))}"
        self.header.value = text + (f" · <span style='color:#b00020'>{html.escape(note)}</span>" if note else "")

    def _set_contrast(self, redraw: bool = False) -> None:
        low, high = self.controls.contrast.value
        self.image_display.set_contrast(self.controls.channels.value, low, high)
        if redraw:
            self.painter.image()

    def _set_opacity(self) -> None:
        c, p = self.controls, self.painter
        p.labels_opacity = c.labels_opacity.value if c.show_labels.value else 0.0
        p.preview_opacity = c.preview_opacity.value if c.show_preview.value else 0.0
        p.labels_layer()
        p.object(self.annotation.mask)

    def _preview(self, mask, error) -> None:  # on the decode thread
        self.painter.object(mask)
        if error is not None:
            self.say(str(error), error=True)
        elif mask is not None:
            self.say(f"object: {mask.area} px, score {mask.score:.2f} · {interaction.KEYS['commit']} commits")
        elif self.annotation.has_prompts:
            self.say("no object here", error=True)
        else:
            self.say("click an object")  # the prompts were cleared: no stale size stays on show

    def _labels_changed(self, bbox) -> None:
        self.label_display.changed(bbox)
        self.painter.labels(bbox)
        if self.selected is not None and self.selected not in self.labels.objects:
            self.selected = self.painter.highlight = None
        self.objects.refresh()
        self.measurements.refresh()

    def _attributes_changed(self, ids) -> None:
        self.objects.refresh()
        self.measurements.refresh()

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

    def show_hover(self, row: float, col: float) -> None:
        y, x = self.viewport.to_image(row, col)
        h, w = self.session.shape
        label = int(self.labels[int(y), int(x)]) if 0 <= y < h and 0 <= x < w else 0
        self.controls.hover.value = f"y {int(y)}, x {int(x)}" + (f" · <b>label {label}</b>" if label else "")

    # -- keys, wheel, minimap ------------------------------------------------
    @guarded
    def _key(self, key: str | None) -> None:
        action = interaction.action_for(key, "jupyter")
        if action is None:
            return
        if action in MODE_KEYS:
            self.controls.mode.value = MODE_KEYS[action]
        elif action.startswith("pan_"):
            step = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}[action[4:]]
            h, w = self.viewport.canvas_shape
            self.pan(step[0] * h / 4, step[1] * w / 4)
        elif action in ("brush_smaller", "brush_larger"):
            radius = self.controls.brush_radius
            step = max(1, radius.value // 4) * (1 if action == "brush_larger" else -1)
            radius.value = max(radius.min, min(radius.max, radius.value + step))
        elif action == "toggle_labels":
            self.controls.show_labels.value = not self.controls.show_labels.value
        elif action == "commit":
            self.commit_later()
        else:
            getattr(self, action)()

    @guarded
    def _wheel(self, dx: float, dy: float) -> None:
        if dy:
            self.viewport.zoom_by(1.25 if dy < 0 else 0.8, at=self.gestures.hover)
            self.view_changed()

    @guarded
    def _minimap_click(self, col: float, row: float) -> None:
        self.viewport.center_on(*self.painter.whole.to_image(row, col))
        self.view_changed()

    # -- prompts and commits (buttons, keys, scripts) ----------------------
    @guarded
    def add_point(self, y: float, x: float, positive: bool = True) -> None:
        """Add a prompt point at image (y, x) (what a click does)."""
        interaction.check_point(y, x, self.session.shape)
        windows = self.session.windows((int(y), int(x), int(y) + 1, int(x) + 1))
        if not all(self.session.embedded()[w] for w in windows):
            self.say("embedding the tile under the click (once per tile)…")
        self.annotation.add_point(y, x, positive)
        self.painter.prompts()

    @guarded
    def set_box(self, box) -> None:
        """Set the box prompt (y0, x0, y1, x1) in image pixels (what a drag does), clipped to the image."""
        clipped = interaction.clip_box(box, self.session.shape)
        if clipped is None:
            self.painter.prompts()
            self.say("the box is empty or outside the image (drag inside the image to draw one)", error=True)
            return
        self.annotation.set_box(clipped)
        self.painter.prompts()

    @guarded
    def commit(self) -> int | None:
        """Write the current object into the labels (after the decode under way); returns its id (None: nothing)."""
        if self.annotation.mask is None and not self.annotation.decoding:
            self.say("nothing to commit: click an object first", error=True)
            return None
        label = interaction.commit(self.annotation)
        self.painter.prompts()
        self.say(f"committed object {label} (colour {colour_of(label)}); next: {self.labels.next_label}")
        return label

    def commit_later(self) -> None:
        """What the Commit button and key do: :meth:`commit` on a thread, so the page never waits for a decode."""
        if self.annotation.decoding:
            self.say("committing when the object shows…")
        threading.Thread(target=self._commit_once, name="samkit-commit", daemon=True).start()

    def _commit_once(self) -> None:
        with self._committing:  # one commit at a time, in the order asked
            self.commit()

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
        self.select(None)
        self.say(f"next object: {label}")

    @guarded
    def toggle_sign(self) -> None:
        self.controls.sign.value = not self.controls.sign.value

    # -- models and results ------------------------------------------------
    def use_model(self, model) -> None:
        """Segment with ``model`` from now on (any model :class:`samkit.Session` takes); the labels stay."""
        session = Session(self.session.image, model, **self._session_options)
        old = self.annotation
        self.annotation = Annotation(session, self.labels, overwrite=old.overwrite, background=True)
        self.annotation.on_preview(self._preview)
        old.close()
        self.session, self.painter.annotation, self.progress.session = session, self.annotation, session
        self.progress.show(None)
        self._show_header()
        self.redraw()
        self._prefetch()

    def measure(self, **options):
        """The measurement table of the committed objects (see :func:`samkit.measure`)."""
        return self.annotation.measure(**options)

    def save(self, path, *, overwrite: bool = False) -> None:
        """Save a copy of the labels (with their history) to the folder ``path``; autosave stays where it is.

        ``overwrite=True`` replaces a copy saved there before (so a notebook can run twice).
        """
        self.labels.save(path, overwrite=overwrite)
        where = f"autosave stays in {self.labels.path}" if self.labels.path else "the labels stay in memory"
        self.say(f"saved a copy to {path}; {where}")

    def close(self) -> None:
        """Stop background work and close the widget."""
        self.annotation.close()
        self.image_display.close()
        self.label_display.close()
        self.labels.off_change(self._labels_changed)
        self.labels.off_attributes(self._attributes_changed)
        super().close()
