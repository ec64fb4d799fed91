"""``Annotator``: napari layers and keys wired to one :class:`samkit.Annotation`.

The engine holds the state (prompts, current mask, labels, undo); this class
turns layer events into engine calls, shows what the engine reports, and
never lets the Qt event loop wait for the model:

* prompts decode on the annotation's decode thread; its reports reach the
  main thread through a Qt signal;
* embedding, committing and measuring run in napari thread workers.

Layers changed from code (after an undo, a commit, a refused prompt) are
changed inside :meth:`Annotator._quiet`, so that doing so does not decode again.
"""

from __future__ import annotations

import contextlib

import numpy as np
from napari.layers.base._base_constants import ActionType
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QObject, Signal
from samkit import Annotation, LabelImage
from samkit.errors import SamkitError

from . import _layers
from ._constants import KEYS
from ._prompts import apply_points
from ._tasks import embed_with_progress, notify_error, run_in_background

DONE = (ActionType.ADDED, ActionType.CHANGED, ActionType.REMOVED)


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
    """

    status = Signal(str)  # one line for the widget
    sign_changed = Signal(bool)  # True: new points mark the object
    measured = Signal(object)  # the measurement table
    closed = Signal(str)  # why the annotator stopped
    _preview_ready = Signal(object, object)  # mask, error: from the decode thread
    _labels_changed = Signal(object)  # bbox: from whichever thread changed the labels

    def __init__(self, viewer, source, session, labels: LabelImage | None = None) -> None:
        super().__init__()
        self.viewer, self.source, self.session = viewer, source, session
        self.labels = labels if labels is not None else LabelImage(source.shape)
        self.annotation = Annotation(session, self.labels, background=True)
        self.points, self.box, self.preview = _layers.add_prompt_layers(viewer, source)
        self.labels_layer = _layers.add_labels_layer(viewer, self.labels, source)
        self.table = None
        self.jobs: list = []  # [(EmbedJob, worker)]
        self.committing = False
        self.positive = True
        self.is_closed = False
        self._quiet_depth = 0
        self._erasing = False
        self._preview_ready.connect(self._show_preview)
        self._labels_changed.connect(self._refresh_labels)
        self.annotation.on_preview(self._from_decoder)
        self.labels.on_change(self._from_labels)
        self.points.events.data.connect(self._on_points)
        self.box.events.data.connect(self._on_box)
        viewer.layers.events.removed.connect(self._on_layer_removed)
        self._bind_keys()
        viewer.layers.selection.active = self.points
        self.points.mode = "add"

    @property
    def layers(self) -> tuple:
        return (self.points, self.box, self.preview, self.labels_layer)

    # -- engine -> napari (reports arrive on worker threads) --------------------

    def _from_decoder(self, mask, error) -> None:
        if not self.is_closed:
            self._preview_ready.emit(mask, error)

    def _from_labels(self, bbox) -> None:
        if not self.is_closed:
            self._labels_changed.emit(bbox)

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
            self.status.emit(f"preview: {mask.area} px, score {mask.score:.2f}; press C to commit")

    def _refresh_labels(self, bbox) -> None:
        if not self.is_closed and _layers.in_viewer(self.viewer, self.labels_layer):
            self.labels_layer.refresh()

    @property
    def preview_mask(self):
        """The current object as the engine has it (None: no object)."""
        return self.annotation.mask

    def preview_array(self) -> np.ndarray:
        """The preview layer as a full (H, W) bool array of image pixels (small images, tests)."""
        return _layers.preview_array(self.preview, self.source)

    # -- prompts: napari -> engine ---------------------------------------------

    @contextlib.contextmanager
    def _quiet(self):
        """Change the prompt layers from code without decoding again."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def _on_points(self, event) -> None:
        if self._quiet_depth or self.is_closed or event.action not in DONE:
            return
        self.sync_points()

    def sync_points(self) -> None:
        """Bring the engine's points in line with the points layer (one engine call per change)."""
        wanted = _layers.read_points(self.points, self.source)
        h, w = self.source.shape
        inside = [p for p in wanted if 0 <= p[0] < h and 0 <= p[1] < w]
        refused = len(inside) < len(wanted)
        if refused:
            show_warning(f"samkit: a point outside the image ({h} x {w} pixels) was ignored")
        try:
            apply_points(self.annotation, inside)
        except SamkitError as error:
            show_warning(f"samkit: {error}")
            refused = True
        if refused:
            self.render_prompts()
        self.status.emit("decoding…" if self.annotation.has_prompts else "click an object")

    def _on_box(self, event) -> None:
        if self._quiet_depth or self.is_closed or event.action not in DONE:
            return
        if len(self.box.data) > 1:  # one box per object: the newest replaces the others
            with self._quiet():
                self.box.selected_data = set(range(len(self.box.data) - 1))
                self.box.remove_selected()
        try:
            if len(self.box.data) == 0:
                self.annotation.set_box(None)
            else:
                raw = _layers.read_box(self.box.data[-1], self.box, self.source)
                box = _layers.clip_box(raw, self.source.shape)
                if box is None:
                    show_warning("samkit: the box is outside the image and was ignored")
                    self.render_prompts()
                    return
                self.annotation.set_box(box)
                if box != raw:
                    self.render_prompts()  # show the part inside the image
        except SamkitError as error:
            show_warning(f"samkit: {error}")
            self.render_prompts()
        self.status.emit("decoding…")

    def render_prompts(self) -> None:
        """Show the engine's prompts in the points and box layers."""
        annotation = self.annotation
        with self._quiet():
            _layers.write_points(self.points, self.source, annotation.points, annotation.point_labels, self.positive)
            _layers.write_box(self.box, self.source, annotation.box)

    # -- actions (buttons and keys) ----------------------------------------------

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

        return run_in_background(self.annotation.commit, on_done=done, on_error=failed, what="commit")

    def undo(self) -> None:
        """Undo the last prompt if there are prompts, else the last commit or erase."""
        self._call(self._undo)

    def _undo(self) -> None:
        if not self.annotation.undo():
            show_info("samkit: nothing to undo")
        self.render_prompts()

    def redo(self) -> None:
        """Redo the last undone commit or erase."""
        self._call(lambda: self.annotation.redo() or show_info("samkit: nothing to redo"))

    def clear(self) -> None:
        """Drop the prompts and the preview."""
        self._call(self.annotation.clear)
        self.render_prompts()

    def next_label(self) -> None:
        """Start a new object: drop the prompts; the next commit gets a fresh id."""
        label = self._call(self.annotation.next_label)
        self.render_prompts()
        if label is not None:
            self.status.emit(f"next object: {label}")

    def toggle_sign(self) -> None:
        """Switch new points between object and background; in select mode the selected ones too
        (in add mode napari keeps the point just added selected: it must not flip)."""
        self.positive = not self.positive
        self.points.feature_defaults = {"positive": self.positive}
        selected = [i for i in sorted(self.points.selected_data) if i < len(self.points.data)]
        if selected and str(self.points.mode) == "select":
            positive = np.asarray(self.points.features["positive"], bool).copy()
            positive[selected] = self.positive
            with self._quiet():
                self.points.features = {"positive": positive}
                self.points.feature_defaults = {"positive": self.positive}
                self.points.refresh_colors(update_color_mapping=False)
            self.sync_points()
        self.sign_changed.emit(self.positive)

    def erase_at(self, y: float, x: float) -> int:
        """Erase the object at image pixel (y, x); returns its id (0: none there)."""
        h, w = self.source.shape
        if not (0 <= y < h and 0 <= x < w):
            show_warning("samkit: that position is outside the image")
            return 0
        label = self._call(lambda: self.annotation.erase_at(int(y), int(x))) or 0
        self.status.emit(f"erased object {label}" if label else "no object there")
        return label

    def erase_under_cursor(self) -> int:
        """Erase the object under the mouse."""
        y, x = np.floor(self.source.world_to_pixels(self.viewer.cursor.position) + 0.5)
        return self.erase_at(y, x)

    def set_erase_mode(self, on: bool) -> None:
        """While on, the next click erases the object under it (prompt layers pause)."""
        if on == self._erasing:
            return
        self._erasing = on
        callbacks = self.viewer.mouse_drag_callbacks
        if on:
            callbacks.append(self._erase_click)
            self.points.mode = self.box.mode = "pan_zoom"
            self.status.emit("click the object to erase")
        else:
            if self._erase_click in callbacks:
                callbacks.remove(self._erase_click)
            self.points.mode = "add"

    def _erase_click(self, viewer, event) -> None:
        if event.type == "mouse_press":
            y, x = np.floor(self.source.world_to_pixels(event.position) + 0.5)
            self.erase_at(y, x)
            self.set_erase_mode(False)

    def _call(self, action):
        """Run an engine action; a samkit error becomes a notification."""
        try:
            return action()
        except SamkitError as error:
            notify_error(error)
        return None

    # -- embedding -------------------------------------------------------------

    def visible_region(self):
        """The (y0, x0, y1, x1) pixels of the image in view, or None when unknown."""
        return _layers.visible_region(self.viewer, self.source)

    def embed_view(self):
        """Embed the windows in view (all of them when the view is unknown)."""
        return self.embed(self.visible_region())

    def embed(self, region=None):
        """Embed the windows over ``region`` ((y0, x0, y1, x1) pixels; None: all) with a progress bar."""
        try:
            job = self.session.embed(region)
        except SamkitError as error:
            notify_error(error, "embedding")
            return None
        where = "the whole image" if region is None else "the view"
        self.status.emit(f"embedding {where}: {job.total} window(s)")

        def done(job):
            self.jobs = [(j, w) for j, w in self.jobs if j is not job]
            if job.cancelled or job.error is not None:
                self.status.emit(f"embedding stopped: {job.done}/{job.total} windows")
            else:
                self.status.emit(f"embedded {job.total} window(s)")

        worker = embed_with_progress(job, f"samkit: embedding {where}", on_done=done)
        self.jobs.append((job, worker))
        return job

    def cancel(self) -> None:
        """Stop embedding (a click waiting for its window is told so)."""
        for job, _ in list(self.jobs):
            job.cancel()
        self.session.cancel()
        self.status.emit("embedding cancelled")

    # -- measuring ---------------------------------------------------------------

    def measure(self, **options):
        """Measure the committed objects (intensity from the image) in a thread worker.

        The table goes to ``self.table``, to the labels layer's ``features``
        (with an ``index`` column = label id) and to the ``measured`` signal.
        """
        if not self.labels.objects:
            show_info("samkit: no objects to measure yet: commit some first")
            return None

        def done(table):
            self.table = table
            if _layers.in_viewer(self.viewer, self.labels_layer):
                self.labels_layer.features = table.assign(index=table["label"].to_numpy())
            self.measured.emit(table)
            self.status.emit(f"measured {len(table)} object(s)")

        return run_in_background(lambda: self.annotation.measure(**options), on_done=done, what="measure")

    # -- life cycle ----------------------------------------------------------------

    def _bind_keys(self) -> None:
        for key, (method, _) in KEYS.items():
            handler = _key_handler(self, method)
            for provider in (*self.layers, self.viewer):
                provider.bind_key(key, handler, overwrite=True)

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
        self.cancel()
        self.set_erase_mode(False)
        self.is_closed = True
        self.annotation.close()
        self.labels.off_change(self._from_labels)
        self.viewer.layers.events.removed.disconnect(self._on_layer_removed)
        for key in KEYS:
            for provider in (*self.layers, self.viewer):
                with contextlib.suppress(Exception):
                    provider.bind_key(key, None)
        for layer in (self.points, self.box, self.preview):
            if _layers.in_viewer(self.viewer, layer):
                self.viewer.layers.remove(layer)
        if reason:
            kept = f" (autosaved in {self.labels.path})" if self.labels.path else ""
            show_warning(f"samkit: {reason}: the session ended; committed objects are kept{kept}")
        self.closed.emit(reason)


def _key_handler(annotator: Annotator, method: str):
    def handler(_provider=None) -> None:
        if not annotator.is_closed:
            getattr(annotator, method)()

    handler.__name__ = handler.__doc__ = f"samkit: {method.replace('_', ' ')}"
    return handler
