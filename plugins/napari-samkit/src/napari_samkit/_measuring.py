"""The measurement table of the committed objects, kept up to date after every change once asked for.

The first :meth:`Measurements.measure` turns live updates on: every later
change of the labels (commit, undo, redo, erase, painting) measures again in
a thread worker. Changes that arrive while a measurement runs are gathered
into one more run, and a table is shown only if no change came after the
labels it was measured from, so the table never lists objects that are gone.
"""

from __future__ import annotations

from napari.utils.notifications import show_info
from qtpy.QtCore import QObject, Signal

from ._tasks import run_in_background


class Measurements(QObject):
    """Measures an :class:`samkit.Annotation`'s labels (intensity from its image) in the background.

    Attributes
    ----------
    table : pandas.DataFrame or None
        The newest table (None before the first measurement).
    live : bool
        Whether changes of the labels measure again.
    """

    measured = Signal(object)  # the new table

    def __init__(self, annotation) -> None:
        super().__init__()
        self.annotation = annotation
        self.table = None
        self.live = False
        self.options: dict = {}
        self.worker = None
        self._stale = False

    @property
    def running(self) -> bool:
        return self.worker is not None

    def measure(self, **options):
        """Measure now (``options`` go to :func:`samkit.measure`) and after every later change."""
        if not self.annotation.labels.objects and self.table is None:
            show_info("samkit: no objects to measure yet: commit some first")
            return None
        self.live, self.options = True, options
        return self._run()

    def labels_changed(self) -> None:
        """The labels changed (main thread): measure again if live."""
        if self.live:
            self._run()

    def _run(self):
        if self.worker is not None:  # measure again when the run in progress ends
            self._stale = True
            return self.worker
        self._stale = False
        options = dict(self.options)
        self.worker = run_in_background(
            lambda: self.annotation.measure(**options), on_done=self._done, on_error=self._failed, what="measure"
        )
        return self.worker

    def _done(self, table) -> None:
        self.worker = None
        if self._stale:
            self._run()
            return
        self.table = table
        self.measured.emit(table)

    def _failed(self, _error) -> None:
        self.worker = None
        self.live = False  # said so in a notification; the user can measure again
