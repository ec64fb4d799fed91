"""The Session tab: which image layer(s), which model, the windows, autosave; Start and embedding buttons."""

from __future__ import annotations

from pathlib import Path

import napari
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton, QWidget,
)  # fmt: skip
from samkit import interaction

from ._controls import row, spin
from ._layers import same, unwrap


class SessionForm(QWidget):
    """The choices a session starts from; it reads them, the dock widget starts the session."""

    def __init__(self) -> None:
        super().__init__()
        form = QFormLayout(self)
        self.image_box = QComboBox()
        form.addRow("image", self.image_box)
        self.channel_list = QListWidget()
        self.channel_list.setMaximumHeight(60)
        self.channel_list.setToolTip("single-channel layers of the same shape to stack as channels (optional)")
        form.addRow("+ channels", self.channel_list)
        self.model_box = QComboBox()
        self.model_box.setEditable(True)
        self.model_box.setToolTip("a registry name, the classical fallback, or the path of a checkpoint file")
        for value, label in interaction.model_choices():
            self.model_box.addItem(label, value)
        self.default = interaction.default_model()  # the one rule of all front ends: nothing downloaded unasked
        self.model_box.setCurrentIndex(self.model_box.findData(self.default.model))
        browse = QPushButton("…")
        browse.setToolTip("choose a checkpoint file")
        browse.clicked.connect(self._browse_checkpoint)
        form.addRow("model", row(self.model_box, browse))
        self.model_info = QLabel(self.default.note or "not started")  # then: name · device · precision
        self.model_info.setWordWrap(True)
        self.model_info.setToolTip("the model of the running session: name, device and precision")
        form.addRow("running", self.model_info)
        self.tile_size = spin(0, 8192, 0, "model default", "window side in pixels (0: the model's input size)")
        self.halo = spin(0, 2048, 0, "default", "half the overlap of windows, in pixels (0: 128, or tile size / 8)")
        self.level = spin(0, 16, 0, None, "pyramid level to embed at (multiscale images)")
        form.addRow("tile size", self.tile_size)
        form.addRow("halo", self.halo)
        form.addRow("level", self.level)
        self.autosave = QLineEdit()
        self.autosave.setPlaceholderText("in memory (or a folder: autosave, reopen)")
        pick = QPushButton("…")
        pick.clicked.connect(self._browse_autosave)
        form.addRow("autosave", row(self.autosave, pick))
        self.start_button = QPushButton("Start session")
        form.addRow(self.start_button)
        self.embed_view_button = QPushButton("Embed view")
        self.embed_all_button = QPushButton("Embed all")
        self.cancel_button = QPushButton("Cancel")
        form.addRow(row(self.embed_view_button, self.embed_all_button, self.cancel_button))

    def options(self) -> dict:
        """The session's window options."""
        return {"tile_size": self.tile_size.value() or None, "halo": self.halo.value() or None,
                "level": self.level.value()}  # fmt: skip

    def autosave_folder(self) -> str | None:
        return self.autosave.text().strip() or None

    # -- layers ----------------------------------------------------------------------

    def refresh_layers(self, viewer) -> None:
        """Offer the viewer's image layers (after layers are added, removed or reordered)."""
        images = [layer for layer in viewer.layers if isinstance(layer, napari.layers.Image)]
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
        return self.image_box.currentData()

    def channel_layers(self) -> list:
        """The layers ticked to be stacked as extra channels."""
        items = [self.channel_list.item(i) for i in range(self.channel_list.count())]
        return [i.data(Qt.ItemDataRole.UserRole) for i in items if i.checkState() == Qt.CheckState.Checked]

    def model_value(self) -> str:
        """The chosen model: a registry name, "classical", or a checkpoint path typed in."""
        index = self.model_box.currentIndex()
        text = self.model_box.currentText().strip()
        if index >= 0 and text == self.model_box.itemText(index):
            return self.model_box.itemData(index)
        return str(Path(text).expanduser()) if text else interaction.CLASSICAL

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
