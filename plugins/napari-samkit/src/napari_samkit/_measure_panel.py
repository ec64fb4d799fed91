"""The Measure tab: the measurement table (kept up to date after every change), a plot, CSV export."""

from __future__ import annotations

from napari.utils.notifications import show_info
from qtpy.QtWidgets import QFileDialog, QPushButton, QSplitter, QVBoxLayout, QWidget
from qtpy.QtCore import Qt
from samkit.errors import SamkitError

from ._controls import row
from ._plots import PlotPanel
from ._table import TableView
from ._tasks import notify_error


class MeasurePanel(QWidget):
    """Measure (``annotator()`` gives the running Annotator, or None), the table, the plot, Export CSV…"""

    def __init__(self, annotator) -> None:
        super().__init__()
        self.annotator = annotator
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip("measure the objects now, and again after every commit, undo, erase or edit")
        self.measure_button.clicked.connect(lambda: self.annotator() and self.annotator().measure())
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.table_view = TableView()
        self.plot = PlotPanel()
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table_view)
        split.addWidget(self.plot)
        layout = QVBoxLayout(self)
        layout.addWidget(row(self.measure_button, self.export_button))
        layout.addWidget(split)

    def show_table(self, table) -> None:
        self.table_view.show_table(table)
        self.plot.show_table(table)

    def export_csv(self, path=None):
        """Write the newest measurement table to CSV (asks for the file when ``path`` is None)."""
        import samkit

        table = self.table_view.table
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
