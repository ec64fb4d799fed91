"""The embedding progress bar: follows the newest background embedding job, and only that one."""

from __future__ import annotations

import html

from ..errors import EmbeddingCancelled


class EmbeddingProgress:
    """Shows an :class:`samkit.EmbedJob`'s tiles done, time left, or why it stopped, on ``controls``."""

    def __init__(self, controls):
        self.controls = controls
        self.job = None  # the job shown

    def track(self, start) -> None:
        """Show the progress of the job ``start(progress_callback)`` returns (and of no older one)."""
        started = []

        def progress(done, total, eta):  # on the worker thread
            if started and started[0] is self.job:
                self.show(started[0])

        job = start(progress)
        started.append(job)
        self.job = job
        self.show(job)

    def stopped(self) -> None:
        """After cancelling: the queued tiles fail at once; one being embedded may still finish."""
        if self.job is not None:
            self.job.wait(1)
            self.show(self.job)

    def show(self, job) -> None:
        c = self.controls
        c.progress.max, c.progress.value = max(job.total, 1), job.done
        if isinstance(job.error, EmbeddingCancelled):
            state = " · cancelled"
        elif job.error is not None:
            state = f" · stopped: {job.error}"
        elif job.done < job.total and job.eta is not None:
            state = f" · about {job.eta:.0f} s left"
        else:
            state = ""
        c.progress_text.value = html.escape(f"tiles embedded {job.done}/{job.total}{state}", quote=False)
