"""A read-only Qt table showing a measurement DataFrame."""

from __future__ import annotations

import numpy as np
from qtpy.QtWidgets import QAbstractItemView, QTableWidget, QTableWidgetItem


class TableView(QTableWidget):
    """Shows a pandas DataFrame (one row per object); the frame itself stays in ``table``."""

    def __init__(self) -> None:
        super().__init__()
        self.table = None
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setMinimumHeight(120)

    def show_table(self, table) -> None:
        """Display ``table`` (numbers with 4 significant digits; the frame keeps full precision)."""
        self.table = table
        self.clear()
        self.setRowCount(len(table))
        self.setColumnCount(len(table.columns))
        self.setHorizontalHeaderLabels([str(c) for c in table.columns])
        for j, column in enumerate(table.columns):
            values = table[column].to_numpy()
            for i, value in enumerate(values):
                text = f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
                self.setItem(i, j, QTableWidgetItem(text))
        self.resizeColumnsToContents()

    def cell_text(self, row: int, column: int) -> str:
        """The text shown in a cell (for tests and scripting)."""
        item = self.item(row, column)
        return "" if item is None else item.text()
