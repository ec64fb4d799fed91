"""A histogram or a scatter plot of chosen columns of the measurement table (samkit.measurement.plots, in Qt)."""

from __future__ import annotations

import pandas as pd
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget
from samkit.errors import SamkitError
from samkit.measurement import plots

from ._controls import row

KINDS = ("histogram", "scatter")


class PlotPanel(QWidget):
    """Redraws its plot whenever the table or a choice changes (the table follows every change of the labels)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = None
        self.kind, self.x, self.y = QComboBox(), QComboBox(), QComboBox()
        self.kind.addItems(KINDS)
        self.kind.setToolTip("histogram of x, or scatter plot of y against x")
        self.x.setToolTip("the column on the horizontal axis")
        self.y.setToolTip("the column on the vertical axis (scatter plot)")
        self.figure = Figure(figsize=(3.2, 2.4), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(180)
        self.note = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(row(self.kind, QLabel("x"), self.x, QLabel("y"), self.y))
        layout.addWidget(self.canvas)
        layout.addWidget(self.note)
        for box in (self.kind, self.x, self.y):
            box.currentIndexChanged.connect(lambda _=0: self.redraw())

    def choose(self, kind: str, x: str, y: str | None = None) -> None:
        """Pick the plot and its columns (as a user does with the boxes)."""
        self.kind.setCurrentText(kind)
        self.x.setCurrentText(x)
        if y is not None:
            self.y.setCurrentText(y)
        self.redraw()

    def show_table(self, table) -> None:
        """Plot ``table`` (its numeric columns are offered; the choices are kept where they still exist)."""
        self.table = table
        numeric = [str(c) for c in table.columns if c != "label" and pd.api.types.is_numeric_dtype(table[c])
                   and not pd.api.types.is_bool_dtype(table[c])]  # fmt: skip
        for box, fallback in ((self.x, "area"), (self.y, "mean_intensity")):
            current = box.currentText()
            box.blockSignals(True)
            box.clear()
            box.addItems(numeric)
            guess = next((c for c in numeric if c.startswith(fallback)), numeric[0] if numeric else "")
            box.setCurrentText(current if current in numeric else guess)
            box.blockSignals(False)
        self.redraw()

    def redraw(self) -> None:
        self.figure.clear()
        table, x, y = self.table, self.x.currentText(), self.y.currentText()
        if table is None or not x or len(table) == 0:
            self.note.setText("measure to plot" if table is None else "no objects to plot")
        else:
            ax = self.figure.add_subplot()
            try:
                if self.kind.currentText() == "histogram":
                    plots.histogram(table, x, ax=ax)
                else:
                    plots.scatter(table, x, y, ax=ax)
                self.note.setText(f"{len(table)} object(s)")
            except SamkitError as error:
                self.note.setText(str(error))
        self.canvas.draw_idle()
