"""The Annotate tab: the actions as buttons (prompt modes, commit, undo..., napari's labels tools) and the
display of the labels and the preview."""

from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QPushButton, QVBoxLayout, QWidget
from samkit import interaction

from ._controls import LayerDisplay

# (Annotator method = samkit.interaction action, button text); the key and the tooltip come from samkit.interaction
BUTTONS = (
    ("point_mode", "Points"), ("box_mode", "Box"), ("erase_object", "Erase obj."),
    ("commit", "Commit"), ("next_label", "Next"), ("clear", "Clear"),
    ("undo", "Undo"), ("redo", "Redo"), ("toggle_sign", "+/−"),
    ("brush", "Brush"), ("eraser", "Eraser"), ("fill", "Fill"),
)  # fmt: skip
COLUMNS = 3


class AnnotatePanel(QWidget):
    """Buttons that call the running :class:`~napari_samkit.Annotator` (``annotator()`` gives it, or None)."""

    def __init__(self, annotator) -> None:
        super().__init__()
        self.annotator = annotator
        layout = QVBoxLayout(self)
        actions = QGroupBox("Actions")
        grid = QGridLayout(actions)
        self.buttons = {}
        for place, (method, text) in enumerate(BUTTONS):
            action = interaction.ACTIONS[method]
            button = QPushButton(f"{text} [{action.key}]")
            own = " (napari's own key, on the labels layer)" if action.napari == interaction.OWN else ""
            button.setToolTip(action.text + own)
            button.clicked.connect(lambda _=False, m=method: self._call(m))
            self.buttons[method] = button
            grid.addWidget(button, place // COLUMNS, place % COLUMNS)
        self.erase_click = QPushButton("Erase (click an object)")
        self.erase_click.setCheckable(True)
        self.erase_click.setToolTip("the next click on the canvas erases the object under it")
        self.erase_click.toggled.connect(lambda on: self._call("set_erase_mode", on))
        grid.addWidget(self.erase_click, len(BUTTONS) // COLUMNS, 0, 1, 2)
        self.negative = QCheckBox(f"− points [{interaction.KEYS['toggle_sign']}]")
        self.negative.setToolTip("new points mark the background (off: the object)")
        self.negative.toggled.connect(self._set_negative)
        grid.addWidget(self.negative, len(BUTTONS) // COLUMNS, 2)
        layout.addWidget(actions)
        display = QGroupBox("Display (also napari's layer list and layer controls)")
        rows = QVBoxLayout(display)
        self.labels_display, self.preview_display = LayerDisplay("labels"), LayerDisplay("preview")
        rows.addWidget(self.labels_display)
        rows.addWidget(self.preview_display)
        layout.addWidget(display)

    def connect(self, annotator) -> None:
        """Follow a new annotator's state (None: no session)."""
        self.labels_display.follow(None if annotator is None else annotator.labels_layer)
        self.preview_display.follow(None if annotator is None else annotator.preview)
        for widget in (*self.buttons.values(), self.erase_click, self.negative):
            widget.setEnabled(annotator is not None)
        if annotator is None:
            self.erase_click.setChecked(False)
            return
        annotator.sign_changed.connect(lambda positive: self.negative.setChecked(not positive))
        annotator.mode_changed.connect(lambda mode: self.erase_click.setChecked(mode == "erase_object"))

    def _call(self, method: str, *args):
        annotator = self.annotator()
        if annotator is not None:
            getattr(annotator, method)(*args)

    def _set_negative(self, negative: bool) -> None:
        annotator = self.annotator()
        if annotator is not None and annotator.positive == negative:
            annotator.toggle_sign()
