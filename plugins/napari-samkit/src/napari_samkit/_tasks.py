"""Work that must not block napari: embedding with a progress bar, and one-off calls, in thread workers.

Errors are shown as napari notifications with a short message (no traceback
dialog): the workers are created with ``_ignore_errors=True`` and their
``errored`` signal goes to :func:`notify_error`.
"""

from __future__ import annotations

from typing import Callable

from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from samkit.errors import Cancelled, InvalidLabelError, InvalidPromptError, SamkitError


def notify_error(error: BaseException, what: str = "samkit") -> None:
    """Show ``error`` as a short napari notification (never a traceback dialog).

    A run the user cancelled is news; a refused prompt or label (the user's input) a warning; anything else an error.
    """
    if isinstance(error, Cancelled):
        show_info(f"{what}: {error}")
    elif isinstance(error, (InvalidLabelError, InvalidPromptError)):
        show_warning(f"{what}: {error}")
    elif isinstance(error, SamkitError):
        show_error(f"{what}: {error}")
    else:  # unexpected: name the type, still no dialog
        show_error(f"{what}: {type(error).__name__}: {error}")


def follow(job):
    """Generator for a thread worker: yields once per tile ``job`` embeds, returns the job."""
    shown = 0
    while True:
        finished = job.wait(0.1)
        while shown < job.done:
            shown += 1
            yield shown
        if finished:
            return job


def embed_with_progress(job, description: str, on_done: Callable | None = None):
    """Follow an :class:`samkit.EmbedJob` in a napari thread worker with a napari progress bar.

    Stopping the worker (napari's activity dock) cancels the job. Returns the
    started worker; ``on_done(job)`` runs on the main thread when the job ends.
    """
    progress = {"total": max(job.total, 1), "desc": description}
    worker = create_worker(follow, job, _progress=progress, _ignore_errors=True)
    worker.aborted.connect(job.cancel)
    worker.errored.connect(lambda error: notify_error(error, "embedding"))
    if on_done is not None:
        worker.returned.connect(on_done)
    worker.start()
    return worker


def run_in_background(func: Callable, *args, on_done: Callable | None = None, what: str = "samkit", on_error=None):
    """Call ``func(*args)`` in a napari thread worker; ``on_done(result)`` on the main thread.

    An exception becomes a short error notification (``what: message``) and
    ``on_error(exception)`` is called.
    """
    worker = create_worker(func, *args, _ignore_errors=True)
    if on_done is not None:
        worker.returned.connect(on_done)
    worker.errored.connect(lambda error: notify_error(error, what))
    if on_error is not None:
        worker.errored.connect(on_error)
    worker.start()
    return worker
