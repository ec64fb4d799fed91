"""The Objects tab: the committed objects as a list (id and colour, class name, area, score).

A Qt model over the engine's label image: Qt asks only for the rows in view,
so the area (which reads the object's bounding box) is computed for those,
and a label image with 100 000 objects costs no more than one with ten. The
list is rebuilt after every change of the labels or their attributes. A
class name typed in goes to :meth:`samkit.LabelImage.set_attributes`
(journaled: undo, redo, autosave, exported with the table); selecting a row
shows that object and makes it the label napari's brush and fill paint.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QAbstractItemView, QLabel, QTableView, QVBoxLayout, QWidget
from samkit.errors import SamkitError

from ._tasks import notify_error

COLUMNS = ("id", "class", "area (px)", "score")
DISPLAY, EDIT, DECORATION = Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole, Qt.ItemDataRole.DecorationRole


class ObjectModel(QAbstractTableModel):
    """Rows: the objects of a :class:`samkit.LabelImage`, newest first."""

    def __init__(self) -> None:
        super().__init__()
        self.labels, self.colour = None, None
        self.ids: list[int] = []
        self.attributes: dict = {}
        self._areas: dict[int, int] = {}

    def reset(self, labels, colour=None) -> None:
        """Read the objects again (``colour(label)`` -> RGBA floats, the labels layer's colours)."""
        self.beginResetModel()
        self.labels, self.colour = labels, colour
        self.ids = [] if labels is None else sorted(labels.objects, reverse=True)
        self.attributes = {} if labels is None else labels.attributes
        self._areas = {}
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=DISPLAY):  # noqa: N802
        if role == DISPLAY and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def flags(self, index):
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return flags | Qt.ItemFlag.ItemIsEditable if COLUMNS[index.column()] == "class" else flags

    def data(self, index, role=DISPLAY):
        label, column = self.ids[index.row()], COLUMNS[index.column()]
        if column == "id":
            if role == DISPLAY:
                return str(label)
            if role == DECORATION and self.colour is not None:
                return QColor.fromRgbF(*(float(c) for c in np.asarray(self.colour(label))[:4]))
        elif column == "class" and role in (DISPLAY, EDIT):
            return str(self.attributes.get(label, {}).get("class_name", ""))
        elif column == "area (px)" and role == DISPLAY:
            return str(self.area(label))
        elif column == "score" and role == DISPLAY:
            score = self.attributes.get(label, {}).get("score")
            return "" if score is None else f"{score:.3f}"
        return None

    def area(self, label: int) -> int:
        """Pixels of object ``label`` (reads its bounding box once per change of the labels)."""
        if label not in self._areas:
            self._areas[label] = self.labels.mask(label).area
        return self._areas[label]

    def setData(self, index, value, role=EDIT) -> bool:  # noqa: N802
        if role != EDIT or COLUMNS[index.column()] != "class":
            return False
        label = self.ids[index.row()]
        try:  # one journaled step; the change event rebuilds the list
            self.labels.set_attributes({label: {"class_name": str(value).strip() or None}})
        except SamkitError as error:
            notify_error(error, "class name")
            return False
        return True


class ObjectList(QWidget):
    """The list and a title; ``select(label)`` is called when the user picks a row."""

    def __init__(self, select) -> None:
        super().__init__()
        self.select = select
        self.model = ObjectModel()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.verticalHeader().setVisible(False)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
                                  | QAbstractItemView.EditTrigger.SelectedClicked)  # fmt: skip
        self.view.selectionModel().currentRowChanged.connect(self._picked)
        self.title = QLabel("no objects")
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.view)

    def refresh(self, labels, colour=None) -> None:
        """Show ``labels``' objects as they are now, keeping the selected object selected."""
        chosen = self.selected()
        self.view.selectionModel().blockSignals(True)
        try:
            self.model.reset(labels, colour)
            if chosen in self.model.ids:
                self.view.selectRow(self.model.ids.index(chosen))
        finally:
            self.view.selectionModel().blockSignals(False)
        count = len(self.model.ids)
        self.title.setText(f"{count} object(s), newest first; double-click a class name to edit it" if count
                           else "no objects yet")  # fmt: skip

    def selected(self) -> int | None:
        """The id of the selected object (None: none)."""
        rows = self.view.selectionModel().selectedRows()
        return self.model.ids[rows[0].row()] if rows and rows[0].row() < len(self.model.ids) else None

    def _picked(self, current, _previous) -> None:
        if current.isValid():
            self.select(self.model.ids[current.row()])
