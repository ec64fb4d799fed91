"""Small Qt building blocks the dock's panels share: a row of widgets, a spin box, a layer's show / opacity row."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QSlider, QSpinBox, QWidget


def row(*widgets) -> QWidget:
    """The widgets side by side, without margins."""
    out = QWidget()
    layout = QHBoxLayout(out)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return out


def spin(low: int, high: int, value: int, special: str | None, tip: str) -> QSpinBox:
    """An integer spin box; ``special``: the text shown at ``low`` (e.g. "default")."""
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    if special:
        box.setSpecialValueText(special)
    box.setToolTip(tip)
    return box


class LayerDisplay(QWidget):
    """A layer's visibility and opacity, kept in step with napari's own layer controls both ways."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.layer = None
        self.shown = QCheckBox(name)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip(f"opacity of the {name} (also in napari's layer controls)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.shown)
        layout.addWidget(self.opacity)
        self.shown.toggled.connect(lambda on: self.layer is not None and setattr(self.layer, "visible", on))
        self.opacity.valueChanged.connect(lambda v: self.layer is not None and setattr(self.layer, "opacity", v / 100))

    def follow(self, layer) -> None:
        """Show and set ``layer``'s visibility and opacity (None: none)."""
        if self.layer is not None:
            self.layer.events.visible.disconnect(self._from_layer)
            self.layer.events.opacity.disconnect(self._from_layer)
        self.layer = layer
        if layer is not None:
            layer.events.visible.connect(self._from_layer)
            layer.events.opacity.connect(self._from_layer)
            self._from_layer()
        self.setEnabled(layer is not None)

    def _from_layer(self, event=None) -> None:
        self.shown.setChecked(bool(self.layer.visible))
        self.opacity.setValue(round(float(self.layer.opacity) * 100))
