"""The embedding progress bar: follows the newest background embedding job, and only that one."""

from __future__ import annotations

import html

from ..errors import EmbeddingCancelled


class EmbeddingProgress:
    """Shows the windows of ``session`` embedded (cached ones too), and the newest job's time left or why it stopped."""

    def __init__(self, controls, session):
        self.controls = controls
        self.session = session
        self.job = None  # the job shown
        self.show(None)

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
        embedded = self.session.embedded()
        done, total = int(embedded.sum()), int(embedded.size)
        c.progress.max, c.progress.value = max(total, 1), done
        if job is None:
            state = ""
        elif isinstance(job.error, EmbeddingCancelled):
            state = " · cancelled"
        elif job.error is not None:
            state = f" · stopped: {job.error}"
        elif job.done < job.total and job.eta is not None:
            state = f" · about {job.eta:.0f} s left"
        else:
            state = ""
        c.progress_text.value = html.escape(f"windows embedded {done}/{total}{state}", quote=False)
