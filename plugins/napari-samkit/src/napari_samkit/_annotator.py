"""``Annotator``: napari layers and keys wired to one :class:`samkit.Annotation`.

The engine holds the state (prompts, current mask, labels, undo); this class
turns layer events and keys into engine calls, shows what the engine
reports, and never lets the Qt event loop wait for the model:

* prompts decode on the annotation's decode thread; its reports reach the
  main thread through a Qt signal;
* embedding, committing and measuring run in napari thread workers.

Its parts, one concept each: :mod:`._prompts` (points and box layers <->
engine prompts), :mod:`._embedding`, :mod:`._measuring`, :mod:`._keys`.
"""

from __future__ import annotations

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QObject, Signal
from samkit import Annotation, LabelImage, interaction
from samkit.errors import SamkitError
from samkit.interaction import KEYS

from . import _keys, _layers
from ._embedding import Embedder
from ._measuring import Measurements
from ._painting import journal_stroke
from ._prompts import PromptLayers
from ._tasks import notify_error, run_in_background

class Annotator(QObject):
    """Click-to-segment annotation of one image plane in a napari viewer.

    Parameters
    ----------
    viewer : napari.Viewer
    source : napari_samkit._source.Source
        The image plane (see :func:`napari_samkit._source.source_from_layers`).
    session : samkit.Session
        A session on ``source.image``.
    labels : samkit.LabelImage, optional
        Where committed objects go (default: a new one in memory).

    Notes
    -----
    Adds four layers: points (object / background prompts), box, preview
    (the current object) and labels (committed objects, the engine's zarr
    array shown without a copy). :meth:`close` removes all but the labels.
    The attributes ``points``, ``box``, ``preview`` and ``labels_layer`` are
    the layers themselves (not the proxies napari hands plugins), so that a
    script may activate them like any layer of the viewer.
    """

    status = Signal(str)  # one line for the widget
    sign_changed = Signal(bool)  # True: new points mark the object
    mode_changed = Signal(str)  # "points", "box", "erase_object" (a click erases), or napari's "paint", "erase", "fill"
    measured = Signal(object)  # the measurement table
    labels_changed = Signal(object)  # main thread, after any change: the changed box (None: only attributes)
    closed = Signal(str)  # why the annotator stopped
    _preview_ready = Signal(object, object)  # mask, error: from the decode thread
    _labels_changed = Signal(object)  # bbox: from whichever thread changed the labels

    def __init__(self, viewer, source, session, labels: LabelImage | None = None) -> None:
        super().__init__()
        self.viewer, self.source, self.session = viewer, source, session
        self.labels = labels if labels is not None else LabelImage(source.shape)
        self.annotation = Annotation(session, self.labels, background=True)
        self.labels_layer = _layers.add_labels_layer(viewer, self.labels, source)  # below the prompts
        self.points, self.box, self.preview = _layers.add_prompt_layers(viewer, source)
        self.prompts = PromptLayers(self.annotation, self.points, self.box, source, self.status.emit)
        self.embedder = Embedder(viewer, source, session, self.status.emit)
        self.measurements = Measurements(self.annotation)
        self.committing = False
        self.is_closed = False
        self.mode = "points"
        self._preview_ready.connect(self._show_preview)
        self._labels_changed.connect(self._refresh_labels)
        self.measurements.measured.connect(self._show_table)
        self.annotation.on_preview(self._from_decoder)
        self.labels.on_change(self._from_labels)
        self.labels.on_attributes(self._from_attributes)
        self.labels_layer.events.paint.connect(self._journal_paint)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        _keys.bind(self)
        self.point_mode()

    @property
    def layers(self) -> tuple:
        return (self.points, self.box, self.preview, self.labels_layer)

    @property
    def positive(self) -> bool:
        """Whether new points mark the object (else the background)."""
        return self.prompts.positive

    @property
    def table(self):
        """The newest measurement table (None before the first Measure)."""
        return self.measurements.table

    # -- engine -> napari (reports arrive on worker threads) --------------------

    def _from_decoder(self, mask, error) -> None:
        if not self.is_closed:
            self._preview_ready.emit(mask, error)

    def _from_labels(self, bbox) -> None:
        if not self.is_closed:
            self._labels_changed.emit(bbox)

    def _from_attributes(self, _ids) -> None:
        if not self.is_closed:
            self._labels_changed.emit(None)  # no pixel changed

    def _show_preview(self, mask, error) -> None:
        if self.is_closed:
            return
        _layers.show_mask(self.preview, self.source, mask)
        if error is not None:
            show_warning(f"samkit: {error}")
            self.status.emit(f"no preview: {error}")
        elif mask is None:
            self.status.emit("no object here" if self.annotation.has_prompts else "click an object")
        else:
            self.status.emit(f"preview: {mask.area} px, score {mask.score:.2f}; {KEYS['commit']} commits")

    def _refresh_labels(self, bbox) -> None:
        if self.is_closed:
            return
        if bbox is not None and _layers.in_viewer(self.viewer, self.labels_layer):
            self.labels_layer.refresh()
        self.measurements.labels_changed()
        self.labels_changed.emit(bbox)

    def _show_table(self, table) -> None:
        if _layers.in_viewer(self.viewer, self.labels_layer):
            self.labels_layer.features = table.assign(index=table["label"].to_numpy())
        self.measured.emit(table)

    @property
    def preview_mask(self):
        """The current object as the engine has it (None: no object)."""
        return self.annotation.mask

    def preview_array(self) -> np.ndarray:
        """The preview layer as a full (H, W) bool array of image pixels (small images, tests)."""
        return _layers.preview_array(self.preview, self.source)

    # -- tools: what the mouse does on the canvas ---------------------------------

    def point_mode(self) -> None:
        """Clicks add points (the points layer, active, in add mode)."""
        self._set_mode("points", self.points, "add", f"click an object ({KEYS['toggle_sign']}: background points)")

    def box_mode(self) -> None:
        """A drag draws the box (the box layer, active, with napari's rectangle tool)."""
        self._set_mode("box", self.box, "add_rectangle", f"drag a box around an object ({KEYS['point_mode']}: points)")

    def set_erase_mode(self, on: bool) -> None:
        """While on, the next click erases the object under it (then back to points)."""
        if on:
            self._set_mode("erase_object", self.labels_layer, "pan_zoom", "click the object to erase")
        elif self.mode == "erase_object":
            self.point_mode()

    def _set_mode(self, mode: str, layer, layer_mode: str, hint: str) -> None:
        callbacks = self.viewer.mouse_drag_callbacks
        if self._erase_click in callbacks:
            callbacks.remove(self._erase_click)
        if mode == "erase_object":
            callbacks.append(self._erase_click)
        self.viewer.layers.selection.active = layer
        layer.mode = layer_mode
        changed, self.mode = mode != self.mode, mode
        self.status.emit(hint)
        if changed:
            self.mode_changed.emit(mode)

    def brush(self) -> None:
        """napari's paint brush on the labels layer: paints its selected label (a new id, or the object chosen)."""
        self._labels_tool("paint")

    def eraser(self) -> None:
        """napari's eraser on the labels layer: sets pixels to background."""
        self._labels_tool("erase")

    def fill(self) -> None:
        """napari's fill on the labels layer: floods a region with its selected label."""
        self._labels_tool("fill")

    def _labels_tool(self, tool: str) -> None:
        """Each gesture of napari's labels tools is one samkit step (undo, redo, autosave)."""
        if not self.labels_layer.editable:
            show_info("samkit: napari cannot paint the labels of a multiscale image; erase or re-segment instead")
            return
        label = self.labels_layer.selected_label
        hint = {"paint": f"brush: a drag paints object {label}", "erase": "eraser: a drag sets pixels to background",
                "fill": f"fill: a click floods the region under it with object {label}"}[tool]  # fmt: skip
        keys = " ".join(f"{KEYS[name]} {name}" for name in ("brush", "eraser", "fill"))
        self._set_mode(tool, self.labels_layer, tool, f"{hint} (napari's keys on this layer: {keys})")

    def select(self, label: int) -> None:
        """Show object ``label``: centre the view on it, zoomed to fit, and make it the label napari's brush and
        fill paint."""
        box = self.labels.objects.get(int(label))
        if box is None:
            return
        _layers.look_at(self.viewer, self.source, box)
        self.labels_layer.selected_label = int(label)
        self.status.emit(f"object {label}: {box[2] - box[0]} x {box[3] - box[1]} px box; the brush paints it")

    def _journal_paint(self, event) -> None:
        try:
            box = journal_stroke(self.labels_layer, event.value)
        except SamkitError as error:
            notify_error(error, "edit")
            return
        self.status.emit(f"edit saved (one undo step); {self._count()}" if box else "nothing changed")

    def _erase_click(self, viewer, event) -> None:
        if event.type == "mouse_press":
            y, x = np.floor(self.source.world_to_pixels(event.position) + 0.5)
            self.erase_at(y, x)
            self.point_mode()

    # -- actions (buttons and keys) ----------------------------------------------

    def render_prompts(self) -> None:
        """Show the engine's prompts in the points and box layers."""
        self.prompts.render()

    def commit(self):
        """Commit the current object as a new label, in a thread worker (it may wait for the decode)."""
        if self.committing:
            return None
        if not self.annotation.has_prompts:
            show_info("samkit: nothing to commit: click an object first")
            return None
        self.committing = True

        def done(label):
            self.committing = False
            self.render_prompts()
            self.status.emit(f"committed object {label}")

        def failed(_error):
            self.committing = False

        return run_in_background(interaction.commit, self.annotation, on_done=done, on_error=failed, what="commit")

    def undo(self) -> None:
        """Undo the last prompt if there are prompts, else the last commit, erase or edit."""
        prompts = self.annotation.has_prompts
        if self._call(self.annotation.undo):
            self.status.emit("undid the last prompt" if prompts else f"undone: {self._count()}")
        else:
            show_info("samkit: nothing to undo")
            self.status.emit("nothing to undo")
        self.render_prompts()

    def redo(self) -> None:
        """Redo the last undone commit, erase or edit."""
        if self._call(self.annotation.redo):
            self.status.emit(f"redone: {self._count()}")
        else:
            show_info("samkit: nothing to redo")
            self.status.emit("nothing to redo")

    def _count(self) -> str:
        return f"{len(self.labels.objects)} object(s)"

    def clear(self) -> None:
        """Drop the prompts and the preview."""
        self._call(self.annotation.clear)
        self.render_prompts()
        self.status.emit("prompts cleared")

    def next_label(self) -> None:
        """Start a new object: drop the prompts; the next commit gets a fresh id."""
        label = self._call(self.annotation.next_label)
        self.render_prompts()
        if label is not None:
            self.status.emit(f"next object: {label}")

    def toggle_sign(self) -> None:
        """Switch new points between object and background (in select mode, the selected ones too)."""
        self.prompts.toggle_sign()
        self.sign_changed.emit(self.positive)

    def erase_at(self, y: float, x: float) -> int:
        """Erase the object at image pixel (y, x); returns its id (0: none there)."""
        h, w = self.source.shape
        if not (0 <= y < h and 0 <= x < w):
            show_warning("samkit: that position is outside the image")
            return 0
        label = self._call(lambda: self.annotation.erase_at(int(y), int(x))) or 0
        self.status.emit(f"erased object {label}; {self._count()}" if label else "no object there")
        return label

    def erase_object(self) -> int:
        """Erase the object under the mouse."""
        y, x = np.floor(self.source.world_to_pixels(self.viewer.cursor.position) + 0.5)
        return self.erase_at(y, x)

    def measure(self, **options):
        """Measure the committed objects (intensity from the image), then again after every change.

        In a thread worker; the table goes to ``self.table``, to the labels
        layer's ``features`` (with an ``index`` column = label id) and to the
        ``measured`` signal.
        """
        worker = self.measurements.measure(**options)
        if worker is not None:
            worker.returned.connect(lambda table: self.status.emit(f"measured {len(table)} object(s)"))
        return worker

    def _call(self, action):
        """Run an engine action; a samkit error becomes a notification."""
        try:
            return action()
        except SamkitError as error:
            notify_error(error)
        return None

    # -- life cycle ----------------------------------------------------------------

    def _on_layer_removed(self, event) -> None:
        layer = event.value
        if self.is_closed:
            return
        if any(_layers.same(layer, other) for other in self.source.layers):
            self.close(f"the image layer '{layer.name}' was removed")
        elif any(_layers.same(layer, other) for other in self.layers):
            self.close(f"the layer '{layer.name}' was removed")

    def close(self, reason: str = "") -> None:
        """Stop embedding and decoding, unbind keys, remove the prompt and preview layers.

        The labels (layer, and folder when autosaving) are kept. A ``reason``
        is shown as a warning.
        """
        if self.is_closed:
            return
        self.embedder.cancel()
        if self._erase_click in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._erase_click)
        self.is_closed = self.prompts.closed = True
        self.annotation.close()
        self.labels.off_change(self._from_labels)
        self.labels.off_attributes(self._from_attributes)
        self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        _keys.unbind(self)
        for layer in (self.points, self.box, self.preview):
            if _layers.in_viewer(self.viewer, layer):
                self.viewer.layers.remove(layer)
        if reason:
            kept = f" (autosaved in {self.labels.path})" if self.labels.path else ""
            show_warning(f"samkit: {reason}: the session ended; committed objects are kept{kept}")
        self.closed.emit(reason)
