"""The Everything tab: segment every object of the whole image or of the view (samkit.segment_all)."""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget


class EverythingPanel(QWidget):
    """Placeholder until samkit.segment_all takes a region and a cancel event (shared-api.md, API 4)."""

    def __init__(self, annotator) -> None:
        super().__init__()
        self.annotator = annotator
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("segment everything: coming with samkit.segment_all(region=, cancel=)"))
        layout.addStretch()

    def connect(self, annotator) -> None:
        pass
