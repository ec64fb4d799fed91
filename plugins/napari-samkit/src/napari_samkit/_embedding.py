"""Embedding windows ahead of clicks (the view, or the whole image), with a progress bar and cancel."""

from __future__ import annotations

from typing import Callable

from samkit.errors import SamkitError

from . import _layers
from ._tasks import embed_with_progress, notify_error


class Embedder:
    """Runs a session's embedding jobs in napari thread workers.

    Parameters
    ----------
    viewer, source, session
        As the :class:`~napari_samkit.Annotator`'s.
    status : callable
        Takes the one-line status text.
    """

    def __init__(self, viewer, source, session, status: Callable[[str], None]) -> None:
        self.viewer, self.source, self.session, self.status = viewer, source, session, status
        self.jobs: list = []  # [(EmbedJob, worker)] running

    def visible_region(self):
        """The (y0, x0, y1, x1) pixels of the image in view, or None when unknown."""
        return _layers.visible_region(self.viewer, self.source)

    def embed_view(self):
        """Embed the windows in view (all of them when the view is unknown)."""
        return self.embed(self.visible_region())

    def embed(self, region=None):
        """Embed the windows over ``region`` ((y0, x0, y1, x1) pixels; None: all); returns the job."""
        try:
            job = self.session.embed(region)
        except SamkitError as error:
            notify_error(error, "embedding")
            return None
        where = "the whole image" if region is None else "the view"
        self.status(f"embedding {where}: {job.total} window(s)")

        def done(job):
            self.jobs = [(j, w) for j, w in self.jobs if j is not job]
            if job.cancelled or job.error is not None:
                self.status(f"embedding stopped: {job.done}/{job.total} windows")
            else:
                self.status(f"embedded {job.total} window(s)")

        worker = embed_with_progress(job, f"samkit: embedding {where}", on_done=done)
        self.jobs.append((job, worker))
        return job

    def cancel(self) -> None:
        """Stop embedding (a click waiting for its window is told so)."""
        for job, _ in list(self.jobs):
            job.cancel()
        self.session.cancel()
        self.status("embedding cancelled")
