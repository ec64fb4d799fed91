"""Running :func:`samkit.segment_all` on a Dask cluster (``pip install 'samkit[dask]'``).

The client sends each image's :class:`~samkit.automatic.pipeline.Job` to
every worker once (``scatter``), then one task per window. A worker builds
the model once (cached per process under a token of the model argument) and
one :class:`samkit.Session` per image, and writes embeddings (``cache=``) and
window labels (``workdir``) into zarr stores on a file system all workers
share. Tasks are idempotent: when a worker dies, Dask runs its windows again
elsewhere and the result is the same as in a single process.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from dataclasses import replace

from ..engine.grid import TileGrid
from ..errors import Cancelled, WorkerLostError
from ..io import open_image
from .jobs import Job, check_region, default_tile, load

_MODELS: OrderedDict = OrderedDict()  # model token -> window model, in this process
_SESSIONS: OrderedDict = OrderedDict()  # job token -> Session, in this process
_LOCK = threading.Lock()


def job(image, model, options: tuple, settings, scratch, region=None, client=None) -> Job:
    """A :class:`Job` for a cluster: the grid computed without loading the model here.

    With ``client``, the settings are decided (mode, object size) by one worker,
    which builds the model and reads the image as every worker will.
    """
    from dask.base import tokenize

    opened = open_image(image).yxc()
    values = dict(options)
    tile = values["tile_size"] or default_tile(model)
    grid = TileGrid(tuple(int(n) for n in opened.shape[:2]), tile, values["halo"])
    model_key = tokenize(model)
    made = Job(image, model, options, settings, grid, scratch, check_region(region, grid.shape),
               tokenize(model_key, image, options), model_key)  # fmt: skip
    if client is None:
        return made
    return replace(made, settings=client.submit(decided, made, pure=False).result())


def decided(job: Job):
    """The job's settings decided on this worker (see :func:`samkit.automatic.modes.decide`)."""
    from .modes import decide

    return decide(job.settings, worker_session(job))


def worker_session(job: Job):
    """The :class:`samkit.Session` of ``job`` in this process (model built once per process)."""
    from ..engine.models import window_model

    with _LOCK:
        session = _SESSIONS.get(job.key)
        if session is not None:
            _SESSIONS.move_to_end(job.key)
            return session
        model = _MODELS.get(job.model_key)
        if model is None:
            model = _MODELS[job.model_key] = window_model(_own(job.model))
            while len(_MODELS) > 2:
                _MODELS.popitem(last=False)
        session = _SESSIONS[job.key] = job.session(model)
        while len(_SESSIONS) > 4:
            _SESSIONS.popitem(last=False)
        return session


def _own(model):
    """A model this process may change: sessions attach their worker to it, and the job's copy
    must stay as sent (Dask may send it on to a new worker)."""
    model = load(model)
    return model if isinstance(model, str) or hasattr(model, "__fspath__") else copy.copy(model)


def loaded_models() -> int:
    """How many models this process has built (for tests: one per worker and model)."""
    return len(_MODELS)


def run(client, function, items, tracker=None, cancel=None) -> list:
    """``function(job, index)`` for each (job, index) of ``items`` on the cluster; results in order.

    ``cancel`` (a threading.Event), when set, stops the run after the next task
    that finishes (:class:`samkit.errors.Cancelled`).
    """
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    shared = {}
    for job_, _ in items:
        if job_.key not in shared:
            shared[job_.key] = client.scatter(job_, broadcast=True, hash=False)
    futures = [client.submit(function, shared[job_.key], index, pure=False) for job_, index in items]
    try:
        for future in as_completed(futures):
            if future.status == "error":
                future.result()  # raises the task's exception
            if tracker is not None:
                tracker.step()
            if cancel is not None and cancel.is_set():
                raise Cancelled("segment_all was cancelled; no label image was written")
        return client.gather(futures)
    except KilledWorker as e:
        raise WorkerLostError(
            f"Dask workers died on the same window several times ({e}); give them more memory or fewer threads. "
            "Nothing was written as done."
        ) from e
    except FutureCancelledError as e:
        raise WorkerLostError(f"the cluster cancelled the run ({e}); nothing was written as done") from e
    finally:
        client.cancel(futures + list(shared.values()))
