"""A read-only Qt view of a measurement DataFrame: Qt asks only for the cells in view, so 100 000 rows are cheap."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QAbstractTableModel, QModelIndex, Qt
from qtpy.QtWidgets import QTableView


class FrameModel(QAbstractTableModel):
    """A pandas DataFrame (one row per object) as a Qt table model; numbers shown with 4 significant digits."""

    def __init__(self) -> None:
        super().__init__()
        self.table = None

    def set_table(self, table) -> None:
        self.beginResetModel()
        self.table = table
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt's name)
        return 0 if self.table is None or parent.isValid() else len(self.table)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if self.table is None or parent.isValid() else len(self.table.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return str(self.table.columns[section])
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        value = self.table.iat[index.row(), index.column()]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)


class TableView(QTableView):
    """Shows a measurement table; the frame itself (full precision) stays in ``table``."""

    def __init__(self) -> None:
        super().__init__()
        self.frame = FrameModel()
        self.setModel(self.frame)
        self.verticalHeader().setVisible(False)
        self.setMinimumHeight(120)

    @property
    def table(self):
        return self.frame.table

    def show_table(self, table) -> None:
        """Display ``table``."""
        self.frame.set_table(table)
        self.resizeColumnsToContents()

    def rowCount(self) -> int:  # noqa: N802 (as QTableWidget names it)
        return self.frame.rowCount()

    def cell_text(self, row: int, column: int) -> str:
        """The text shown in a cell (for tests and scripting)."""
        return self.frame.data(self.frame.index(row, column)) or ""
