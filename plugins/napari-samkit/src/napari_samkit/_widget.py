"""The "samkit annotator" dock widget: choose an image and a model, then click to segment.

Thin by design: the buttons call :class:`napari_samkit.Annotator`, which
calls samkit's engine. Starting a session (loading a model, sampling the
image's intensities) runs in a thread worker, so napari never freezes.
"""

from __future__ import annotations

from pathlib import Path

import napari
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QListWidget, QListWidgetItem, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)  # fmt: skip
from samkit import LabelImage, Session
from samkit.errors import SamkitError

from ._annotator import Annotator
from ._constants import KEYS, keys_help
from ._layers import in_viewer, same, unwrap
from ._source import source_from_layers
from ._table import TableView
from ._tasks import notify_error, run_in_background

CLASSICAL = "classical"

# the Annotate buttons: (Annotator method, text, tooltip); a method with a key shows it
ACTIONS = (
    ("point_mode", "Points", "clicks add points (the points layer in add mode)"),
    ("box_mode", "Box", "the next drag draws a box around an object (the box layer, rectangle tool)"),
    ("erase_under_cursor", "Erase", "the next click erases the object under it"),
    ("edit_mode", "Paint", "napari's labels tools on the committed objects (paint, erase, fill): one undo step each"),
    ("commit", "Commit", "commit the current object as a new label"),
    ("next_label", "Next label", "start a new object (drop the prompts)"),
    ("clear", "Clear", "clear the prompts and the preview"),
    ("undo", "Undo", "undo the last prompt, else the last commit, erase or edit"),
    ("redo", "Redo", "redo the last undone commit, erase or edit"),
)


def model_choices() -> list[tuple[str, str]]:
    """(value, label) of the models offered: the classical fallback, then the registry."""
    from samkit.models.registry import list_models
    from samkit.models.weights import is_cached

    choices = [(CLASSICAL, "classical (no weights; not SAM)")]
    for name in list_models():
        try:
            cached = is_cached(name)
        except Exception:  # a broken cache folder must not break the widget
            cached = False
        choices.append((name, f"{name} ({'downloaded' if cached else 'downloads on first use'})"))
    return choices


def open_session(source, model, options: dict, autosave: str | None):
    """Worker-thread part of starting: the model, the session and the label image."""
    session = Session(source.image, model, **options)
    labels = LabelImage(source.shape, path=autosave) if autosave else None
    return source, session, labels


class AnnotatorWidget(QWidget):
    """Dock widget: image and model choice, tiling options, annotation, embedding and measure buttons.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.annotator: Annotator | None = None
        self.starting = None  # the worker starting a session
        layout = QVBoxLayout(self)
        layout.addWidget(self._session_box())
        layout.addWidget(self._annotate_box())
        layout.addWidget(self._measure_box())
        keys = QLabel(keys_help())
        keys.setTextFormat(Qt.TextFormat.RichText)
        keys.setWordWrap(True)
        help_box = QGroupBox("Keys (when a samkit layer or the viewer has focus)")
        QVBoxLayout(help_box).addWidget(keys)
        layout.addWidget(help_box)
        self.status = QLabel("choose an image layer and a model, then Start")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch()
        events = self.viewer.layers.events
        for event in (events.inserted, events.removed, events.reordered):
            event.connect(self.refresh_layers)
        self.refresh_layers()
        self._enable(False)

    # -- building ------------------------------------------------------------------

    def _session_box(self) -> QGroupBox:
        box = QGroupBox("Session")
        form = QFormLayout(box)
        self.image_box = QComboBox()
        form.addRow("image", self.image_box)
        self.channel_list = QListWidget()
        self.channel_list.setMaximumHeight(70)
        self.channel_list.setToolTip("single-channel layers of the same shape to stack as channels (optional)")
        form.addRow("+ channels", self.channel_list)
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.setToolTip("a registry name, the classical fallback, or the path of a checkpoint file")
        choices = model_choices()
        for value, label in choices:
            self.model_box.addItem(label, value)
        cached = [i for i, (_, label) in enumerate(choices) if label.endswith("(downloaded)")]
        self.model_box.setCurrentIndex(cached[0] if cached else 0)
        browse = QPushButton("…")
        browse.setToolTip("choose a checkpoint file")
        browse.clicked.connect(self._browse_checkpoint)
        form.addRow("model", _row(self.model_box, browse))
        self.tile_size = _spin(0, 8192, 0, "model default", "window side in pixels (0: the model's input size)")
        self.halo = _spin(0, 2048, 0, "default", "half the overlap of windows, in pixels (0: 128, or tile size / 8)")
        self.level = _spin(0, 16, 0, None, "pyramid level to embed at (multiscale images)")
        form.addRow("tile size", self.tile_size)
        form.addRow("halo", self.halo)
        form.addRow("level", self.level)
        self.autosave = QLineEdit()
        self.autosave.setPlaceholderText("in memory (optional folder: autosave, reopen)")
        pick = QPushButton("…")
        pick.clicked.connect(self._browse_autosave)
        form.addRow("autosave", _row(self.autosave, pick))
        self.start_button = QPushButton("Start session")
        self.start_button.clicked.connect(lambda: self.start())
        form.addRow(self.start_button)
        self.embed_view_button = QPushButton("Embed view")
        self.embed_all_button = QPushButton("Embed all")
        self.cancel_button = QPushButton("Cancel")
        self.embed_view_button.clicked.connect(lambda: self.annotator and self.annotator.embedder.embed_view())
        self.embed_all_button.clicked.connect(lambda: self.annotator and self.annotator.embedder.embed(None))
        self.cancel_button.clicked.connect(lambda: self.annotator and self.annotator.embedder.cancel())
        form.addRow(_row(self.embed_view_button, self.embed_all_button, self.cancel_button))
        return box

    def _annotate_box(self) -> QGroupBox:
        box = QGroupBox("Annotate")
        grid = QGridLayout(box)
        keys = {method: key for key, (method, _) in KEYS.items()}
        self.buttons = {}
        for place, (method, text, tip) in enumerate(ACTIONS):
            button = QPushButton(f"{text} [{keys[method]}]" if method in keys else text)
            button.setToolTip(tip)
            if method == "erase_under_cursor":
                button.setText("Erase (click an object)")
                button.setCheckable(True)
                button.toggled.connect(lambda on: self.annotator and self.annotator.set_erase_mode(on))
            else:
                button.clicked.connect(lambda _=False, m=method: self.annotator and getattr(self.annotator, m)())
            self.buttons[method] = button
            grid.addWidget(button, place // 3, place % 3)
        self.negative = QCheckBox("new points mark background [G]")
        self.negative.toggled.connect(self._set_negative)
        grid.addWidget(self.negative, len(ACTIONS) // 3 + 1, 0, 1, 3)
        return box

    def _measure_box(self) -> QGroupBox:
        box = QGroupBox("Measure")
        layout = QVBoxLayout(box)
        self.measure_button = QPushButton("Measure")
        self.measure_button.clicked.connect(lambda: self.annotator and self.annotator.measure())
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(lambda: self.export_csv())
        layout.addWidget(_row(self.measure_button, self.export_button))
        self.table_view = TableView()
        layout.addWidget(self.table_view)
        return box

    def _enable(self, on: bool) -> None:
        for button in (self.embed_view_button, self.embed_all_button, self.cancel_button, self.measure_button,
                       self.negative, *self.buttons.values()):  # fmt: skip
            button.setEnabled(on)

    # -- layers ----------------------------------------------------------------------

    def refresh_layers(self, event=None) -> None:
        """Offer the viewer's image layers (after layers are added, removed or reordered)."""
        images = [layer for layer in self.viewer.layers if isinstance(layer, napari.layers.Image)]
        current = self.image_layer()
        checked = {id(unwrap(layer)) for layer in self.channel_layers()}
        self.image_box.clear()
        self.channel_list.clear()
        for layer in images:
            self.image_box.addItem(layer.name, layer)
            if layer.rgb:  # only single-channel layers can be stacked as channels
                continue
            item = QListWidgetItem(layer.name)
            item.setData(Qt.ItemDataRole.UserRole, layer)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if id(unwrap(layer)) in checked else Qt.CheckState.Unchecked)
            self.channel_list.addItem(item)
        for index, layer in enumerate(images):
            if current is not None and same(layer, current):
                self.image_box.setCurrentIndex(index)

    def image_layer(self):
        """The chosen image layer (None when there is none)."""
        return self.image_box.currentData() if hasattr(self, "image_box") else None

    def channel_layers(self) -> list:
        """The layers ticked to be stacked as extra channels."""
        if not hasattr(self, "channel_list"):
            return []
        items = [self.channel_list.item(i) for i in range(self.channel_list.count())]
        return [i.data(Qt.ItemDataRole.UserRole) for i in items if i.checkState() == Qt.CheckState.Checked]

    def model_value(self) -> str:
        """The chosen model: a registry name, "classical", or a checkpoint path typed in."""
        index = self.model_box.currentIndex()
        text = self.model_box.currentText().strip()
        if index >= 0 and text == self.model_box.itemText(index):
            return self.model_box.itemData(index)
        return str(Path(text).expanduser()) if text else CLASSICAL

    # -- session -----------------------------------------------------------------------

    def start(self, model=None):
        """Start (or restart) a session on the chosen layer; returns the starting worker.

        ``model`` overrides the model box: any model samkit takes (e.g.
        ``samkit.testing.OracleModel(truth)`` to check the pipeline).
        """
        layer = self.image_layer()
        if layer is None:
            show_warning("samkit: add an image layer first")
            return None
        try:
            source = source_from_layers(layer, self.channel_layers(), self.viewer.dims.point)
        except SamkitError as error:
            notify_error(error, "image")
            return None
        if source.plane:
            show_info(f"samkit: '{layer.name}' is {layer.ndim}D: segmenting the current slice "
                      f"({source.describe_plane()}); 3D segmentation is not available yet")  # fmt: skip
        if self.annotator is not None:
            self.annotator.close()
        model = self.model_value() if model is None else model
        options = {"tile_size": self.tile_size.value() or None, "halo": self.halo.value() or None, "level": self.level.value()}
        autosave = self.autosave.text().strip() or None
        self.start_button.setEnabled(False)
        self._set_status(f"loading {getattr(model, 'name', model)} and reading '{layer.name}'…")
        self.starting = run_in_background(
            open_session, source, model, options, autosave, on_done=self._started, on_error=self._failed, what="start"
        )
        return self.starting

    def _started(self, result) -> None:
        self.start_button.setEnabled(True)
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
        annotator.status.connect(self._set_status)
        annotator.sign_changed.connect(lambda positive: self.negative.setChecked(not positive))
        annotator.measured.connect(self.table_view.show_table)
        annotator.mode_changed.connect(lambda mode: self.buttons["erase_under_cursor"].setChecked(mode == "erase"))
        annotator.closed.connect(self._closed)
        self._enable(True)
        self._set_status(f"{session.model.name}: {session.grid.grid_shape[0] * session.grid.grid_shape[1]} window(s); "
                         "click an object (the first click embeds only its window)")  # fmt: skip

    def _failed(self, error) -> None:
        self.start_button.setEnabled(True)
        self.starting = None
        self._set_status(f"could not start: {error}")

    def _closed(self, reason: str) -> None:
        self.annotator = None
        self._enable(False)
        self.buttons["erase_under_cursor"].setChecked(False)
        self._set_status(f"session ended: {reason}" if reason else "no session")

    def _set_negative(self, negative: bool) -> None:
        if self.annotator is not None and self.annotator.positive == negative:
            self.annotator.toggle_sign()

    def _set_status(self, text: str) -> None:
        self.status.setText(text)

    # -- files -------------------------------------------------------------------------

    def _browse_checkpoint(self) -> None:
        kinds = "Checkpoints (*.pth *.pt *.ckpt);;All files (*)"
        path, _ = QFileDialog.getOpenFileName(self, "SAM checkpoint", "", kinds)
        if path:
            self.model_box.setEditText(path)

    def _browse_autosave(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Autosave folder (new or a saved annotation)")
        if path:
            self.autosave.setText(path)

    def export_csv(self, path=None):
        """Write the last measurement table to CSV (asks for the file when ``path`` is None)."""
        import samkit

        table = None if self.annotator is None else self.annotator.table
        table = self.table_view.table if table is None else table
        if table is None:
            show_info("samkit: measure first")
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export the table", "objects.csv", "CSV (*.csv)")
            if not path:
                return None
        try:
            written = samkit.export_table(table, path, overwrite=True)
        except (SamkitError, OSError) as error:
            notify_error(error, "export")
            return None
        show_info(f"samkit: wrote {written}")
        return written


def _row(*widgets) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return row


def _spin(low: int, high: int, value: int, special: str | None, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    if special:
        spin.setSpecialValueText(special)
    spin.setToolTip(tip)
    return spin
