"""The Everything tab: segment every object of the whole image or of the view (:func:`samkit.segment_all`).

The run uses the session's model and windows, in a thread worker, with a
progress bar and Cancel (which stops it after the window under way). What
it finds joins the labels as new objects with their scores, as one undoable
step, never over the objects already there
(:func:`samkit.engine.editing.add_objects`): the results are edited like any
commit (the semi-automatic stage of a data engine).
"""

from __future__ import annotations

import threading

from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QComboBox, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget
from samkit.engine.editing import add_objects
from samkit.errors import Cancelled

from ._controls import row
from ._tasks import run_in_background

WHERE = {"whole image": None, "current view": "view"}


def segment_everything(annotator, region, cancel: threading.Event, progress) -> tuple[int, int]:
    """Worker-thread part: segment_all over ``region`` (None: the whole image), then add what it found to the
    annotator's labels; returns (objects found, objects added)."""
    from samkit import segment_all

    session = annotator.session
    found = segment_all(session.image, session.model, tile_size=session.grid.tile_size, halo=session.grid.halo,
                        region=region, cancel=cancel, progress=progress)  # fmt: skip
    added = add_objects(annotator.labels, found, overwrite=annotator.annotation.overwrite)
    return len(found.objects), len(added)


class _Progress(QObject):
    moved = Signal(int, int, object)  # done, total, seconds left: from the worker thread


class EverythingPanel(QWidget):
    """Where (whole image / current view), Segment everything, Cancel, progress; ``annotator()`` gives the session."""

    def __init__(self, annotator) -> None:
        super().__init__()
        self.annotator = annotator
        self.worker = None
        self.stop = threading.Event()
        self.where = QComboBox()
        self.where.addItems(list(WHERE))
        self.where.setToolTip("the whole image, or only the windows covering the view (objects touching it are kept whole)")
        self.start_button = QPushButton("Segment everything")
        self.start_button.setToolTip("find every object with the session's model; U undoes them all at once")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.bar = QProgressBar()
        self.message = QLabel("finds objects where there are none yet; your objects are kept")
        self.message.setWordWrap(True)
        self._progress = _Progress()
        self._progress.moved.connect(self._moved)
        self.start_button.clicked.connect(lambda: self.start())
        self.cancel_button.clicked.connect(self.cancel)
        layout = QVBoxLayout(self)
        layout.addWidget(row(self.where, self.start_button, self.cancel_button))
        layout.addWidget(self.bar)
        layout.addWidget(self.message)
        layout.addStretch()

    @property
    def running(self) -> bool:
        return self.worker is not None

    def connect(self, annotator) -> None:
        self.start_button.setEnabled(annotator is not None and not self.running)

    def start(self, where: str | None = None):
        """Segment everything in the whole image or the view (``where``: a WHERE key; default the box's choice)."""
        annotator = self.annotator()
        if annotator is None or self.running:
            return None
        if where is not None:
            self.where.setCurrentText(where)
        region = annotator.embedder.visible_region() if WHERE[self.where.currentText()] == "view" else None
        self.stop.clear()
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.bar.setValue(0)
        self.message.setText(f"segmenting {self.where.currentText()}…")
        self.worker = run_in_background(segment_everything, annotator, region, self.stop, self._progress.moved.emit,
                                        on_done=self._done, on_error=self._failed, what="segment everything")  # fmt: skip
        return self.worker

    def cancel(self) -> None:
        """Stop after the window under way (nothing is added)."""
        self.stop.set()
        self.message.setText("cancelling after the window under way…")

    def _moved(self, done: int, total: int, eta) -> None:
        self.bar.setMaximum(max(total, 1))
        self.bar.setValue(done)
        self.message.setText(f"{done}/{total} window(s)" + (f", about {eta:.0f} s left" if eta else ""))

    def _done(self, counts) -> None:
        found, added = counts
        self._finish(f"found {found} object(s), added {added} (the others lie under your objects); "
                     "U undoes them all")  # fmt: skip

    def _failed(self, error) -> None:
        self._finish("cancelled: nothing was added" if isinstance(error, Cancelled) else f"stopped: {error}")

    def _finish(self, text: str) -> None:
        self.worker = None
        self.message.setText(text)
        self.start_button.setEnabled(self.annotator() is not None)
        self.cancel_button.setEnabled(False)
