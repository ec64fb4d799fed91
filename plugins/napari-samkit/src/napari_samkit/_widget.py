"""The "samkit annotator" dock widget: choose an image and a model, then click to segment.

Thin by design: its tabs (:mod:`._session_form`, :mod:`._annotate_panel`,
:mod:`._objects` (in the Annotate tab), :mod:`._measure_panel`, :mod:`._everything`) call the
running :class:`napari_samkit.Annotator`, which calls samkit's engine.
Starting a session (loading a model, sampling the image's intensities) runs
in a thread worker, so napari never freezes. The key help and the status
line stay visible below the tabs.
"""

from __future__ import annotations

import napari
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLabel, QSizePolicy, QTabWidget, QVBoxLayout, QWidget
from samkit import LabelImage, Session, interaction
from samkit.errors import SamkitError

from ._annotate_panel import AnnotatePanel
from ._annotator import Annotator
from ._everything import EverythingPanel
from ._layers import in_viewer, same
from ._measure_panel import MeasurePanel
from ._objects import ObjectList
from ._session_form import SessionForm
from ._source import source_from_layers
from ._tasks import notify_error, run_in_background


def key_help() -> str:
    """The always-visible key help: samkit.interaction's keys as napari has them, one word or two each
    (the full text is the tooltip)."""
    rows = [("click", "point"), ("drag", "box (box mode)")]
    for name, action in interaction.ACTIONS.items():
        if action.napari != interaction.NONE:
            rows.append((action.key, name.replace("_", " ") + (" *" if action.napari == interaction.OWN else "")))
    items = " · ".join(f"<b>{key}</b> {text}" for key, text in rows)
    return f"{items}<br><small>* napari's own key on the labels layer; napari's keys win where they clash</small>"


def key_table() -> str:
    """Every key with its full description (the key help's tooltip)."""
    rows = "".join(f"<tr><td><b>{key}</b></td><td>{text}</td></tr>" for key, text in interaction.key_help("napari"))
    return f"<table>{rows}</table>"


def open_session(source, model, options: dict, autosave: str | None):
    """Worker-thread part of starting: the model, the session and the label image."""
    session = Session(source.image, model, **options)
    labels = LabelImage(source.shape, path=autosave) if autosave else None
    return source, session, labels


class AnnotatorWidget(QWidget):
    """Dock widget: tabs Session, Annotate (with the object list), Measure, Everything; the key help and the status below.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.annotator: Annotator | None = None
        self.starting = None  # the worker starting a session
        current = lambda: self.annotator  # noqa: E731 (the panels ask for the annotator of the moment)
        self.form = SessionForm()
        self.annotate = AnnotatePanel(current)
        self.objects = ObjectList(lambda label: self.annotator and self.annotator.select(label))
        self.measure = MeasurePanel(current)
        self.everything = EverythingPanel(current)
        self.tabs = QTabWidget()
        self.annotate.layout().addWidget(self.objects, stretch=1)  # the object list, in view while annotating
        for panel, name in ((self.form, "Session"), (self.annotate, "Annotate"), (self.measure, "Measure"),
                            (self.everything, "Everything")):  # fmt: skip
            self.tabs.addTab(panel, name)
        self.keys = QLabel(key_help())
        self.keys.setTextFormat(Qt.TextFormat.RichText)
        self.keys.setWordWrap(True)
        self.keys.setToolTip(key_table())
        self.keys.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status = QLabel("choose an image layer and a model, then Start")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs, stretch=1)
        layout.addWidget(self.keys)
        layout.addWidget(self.status)
        self.form.start_button.clicked.connect(lambda: self.start())
        embedder = lambda: self.annotator and self.annotator.embedder  # noqa: E731
        self.form.embed_view_button.clicked.connect(lambda: embedder() and embedder().embed_view())
        self.form.embed_all_button.clicked.connect(lambda: embedder() and embedder().embed(None))
        self.form.cancel_button.clicked.connect(lambda: embedder() and embedder().cancel())
        events = self.viewer.layers.events
        for event in (events.inserted, events.removed, events.reordered):
            event.connect(self.refresh_layers)
        self.refresh_layers()
        self._connect(None)

    def refresh_layers(self, event=None) -> None:
        """Offer the viewer's image layers (after layers are added, removed or reordered)."""
        self.form.refresh_layers(self.viewer)

    def _connect(self, annotator) -> None:
        """Hand the panels a new annotator (None: no session)."""
        for button in (self.form.embed_view_button, self.form.embed_all_button, self.form.cancel_button,
                       self.measure.measure_button):  # fmt: skip
            button.setEnabled(annotator is not None)
        self.annotate.connect(annotator)
        self.everything.connect(annotator)
        self.objects.refresh(None if annotator is None else annotator.labels,
                             None if annotator is None else annotator.labels_layer.get_color)  # fmt: skip
        if annotator is None:
            return
        annotator.status.connect(self._set_status)
        annotator.measured.connect(self.measure.show_table)
        annotator.labels_changed.connect(lambda: self.objects.refresh(annotator.labels, annotator.labels_layer.get_color))
        annotator.closed.connect(self._closed)

    # -- session -----------------------------------------------------------------------

    def start(self, model=None):
        """Start (or restart) a session on the chosen layer; returns the starting worker.

        ``model`` overrides the model box: any model samkit takes (e.g.
        ``samkit.testing.OracleModel(truth)`` to check the pipeline).
        """
        layer = self.form.image_layer()
        if layer is None:
            show_warning("samkit: add an image layer first")
            return None
        try:
            source = source_from_layers(layer, self.form.channel_layers(), self.viewer.dims.point)
        except SamkitError as error:
            notify_error(error, "image")
            return None
        if source.plane:
            show_info(f"samkit: '{layer.name}' is {layer.ndim}D: segmenting the current slice "
                      f"({source.describe_plane()}); 3D segmentation is not available yet")  # fmt: skip
        if self.annotator is not None:
            self.annotator.close()
        model = self.form.model_value() if model is None else model
        self.form.start_button.setEnabled(False)
        self._set_status(f"loading {getattr(model, 'name', model)} and reading '{layer.name}'…")
        self.starting = run_in_background(open_session, source, model, self.form.options(), self.form.autosave_folder(),
                                          on_done=self._started, on_error=self._failed, what="start")  # fmt: skip
        return self.starting

    def _started(self, result) -> None:
        self.form.start_button.setEnabled(True)
        self.starting = None
        source, session, labels = result
        gone = [layer.name for layer in source.layers if not in_viewer(self.viewer, layer)]
        if gone:
            show_warning(f"samkit: the image layer '{gone[0]}' was removed while the session started")
            self._set_status("no session")
            return
        before = list(self.viewer.layers)
        try:
            annotator = Annotator(self.viewer, source, session, labels)
        except Exception as error:  # e.g. a layer napari refuses: say so, leave the viewer as it was
            for layer in [lay for lay in self.viewer.layers if not any(same(lay, b) for b in before)]:
                self.viewer.layers.remove(layer)
            notify_error(error, "start")
            self._set_status(f"could not start: {error}")
            return
        self.annotator = annotator
        self._connect(annotator)
        self.form.model_info.setText(interaction.describe(session.model))
        self.tabs.setCurrentWidget(self.annotate)
        self._set_status(f"{session.grid.grid_shape[0] * session.grid.grid_shape[1]} window(s); "
                         "click an object (the first click embeds only its window)")  # fmt: skip

    def _failed(self, error) -> None:
        self.form.start_button.setEnabled(True)
        self.starting = None
        self._set_status(f"could not start: {error}")

    def _closed(self, reason: str) -> None:
        self.annotator = None
        self._connect(None)
        self.form.model_info.setText("not started")
        self._set_status(f"session ended: {reason}" if reason else "no session")

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
