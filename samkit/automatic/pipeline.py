"""``segment_all``: automatic segmentation of a whole image, window by window, then stitched.

Three stages, each a set of independent tasks run here one after another or
spread over a Dask cluster (:mod:`samkit.automatic.distributed`):

1. per window: embed (through the session's embedding store), generate the
   window's masks, write its label image into a scratch zarr array;
2. per window: link its objects to those of its neighbours in their overlaps;
3. here: join linked pieces and number the objects, then write the label
   image block by block (:class:`samkit.LabelImage` with ``initial=``); on
   disk it counts as saved only once complete (its log is written last).

Every task is idempotent (a retried window rewrites the same chunks), and the
result does not depend on which process ran which window, or in what order.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from .._journal import is_saved
from ..engine.grid import TileGrid
from ..engine.session import Session
from ..errors import InvalidImageError, UnsupportedModelError
from ..intensity import DEFAULT_PERCENTILES
from ..labels import LabelImage
from . import stitch
from .generate import Settings, paint, window_objects

SCRATCH_CHUNK = 256  # side of the scratch array's chunks (window-local)
EMBEDDING_MEMORY = 2**26  # embeddings kept in memory per session: each window's is used once


@dataclass(frozen=True)
class Job:
    """One image's part of a run: everything a task needs, picklable for Dask."""

    image: object
    model: object
    options: tuple  # Session keyword arguments, as sorted (name, value) pairs
    settings: Settings
    grid: TileGrid
    scratch: str
    key: str = ""  # identity of (image, model, options), for per-process caches
    model_key: str = ""

    def session(self, model) -> Session:
        """A session on this job's image with ``model`` (a window model built from :attr:`model`)."""
        return Session(self.image, model, memory_bytes=EMBEDDING_MEMORY, **dict(self.options))


def segment_all(
    image,
    model,
    *,
    tile_size: int | None = None,
    halo: int | None = None,
    points_per_side: int = 32,
    points_per_batch: int = 64,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    stability_score_offset: float = 1.0,
    box_nms_thresh: float = 0.7,
    min_area: int = 0,
    out=None,
    cache=None,
    channels=None,
    percentiles=DEFAULT_PERCENTILES,
    value_range=None,
    client=None,
    workdir=None,
    progress=None,
) -> LabelImage:
    """Segment every object of an image automatically: SAM's point grid per window, stitched seamlessly.

    Parameters
    ----------
    image : path or (H, W[, C]) array-like
        Anything :func:`samkit.open_image` reads (with ``client``: a path the
        workers can read, or an array small enough to send them).
    model : Sam, registry name, checkpoint path, ``"classical"``, window model, or a function
        A function (or ``functools.partial``) without arguments that returns
        a model is called once per process: the way to hand Dask workers a
        model that has no file.
    tile_size, halo : int
        The windows (default: the model's input size, 1024 for SAM) and half
        their overlap (default 128, an eighth of smaller windows). Objects of
        any size are stitched; a larger ``halo`` gives the model more context
        at window edges.
    points_per_side : int
        The point grid in each window: ``points_per_side ** 2`` single-point
        prompts (SAM: 32). Objects smaller than the grid spacing may be missed.
    points_per_batch : int
        Prompts the mask decoder runs at once (SAM: 64).
    pred_iou_thresh : float
        Keep masks whose predicted IoU is at least this (SAM: 0.88).
    stability_score_thresh, stability_score_offset : float
        Keep masks whose stability score, the IoU of the masks at logit
        thresholds +- offset, is at least this (SAM: 0.95, offset 1.0).
    box_nms_thresh : float
        Of two masks whose boxes overlap with IoU above this, keep the better
        scored (SAM: 0.7).
    min_area : int
        Fill holes and remove islands smaller than this from each mask, and
        drop objects smaller than this (pixels; default 0: keep all).
    out : path, optional
        Folder of the label image on disk (see :class:`samkit.LabelImage`);
        it must not hold one already. Default: in memory.
    cache : path, optional
        Embedding store, as for :class:`samkit.Session` (with ``client``: on a
        file system all workers share). Reused by later runs and clicks.
    channels, percentiles, value_range
        The image's intensity mapping, as for :class:`samkit.Session`.
    client : dask.distributed.Client, optional
        Spread the windows over a Dask cluster (see ``docs/content/automatic.md``).
    workdir : path, optional
        Where the windows' labels are kept during the run (default: the
        system's temporary folder; with ``client``, pick one all workers see).
    progress : callable, optional
        ``progress(done, total, eta_seconds)`` after each window is segmented.

    Returns
    -------
    LabelImage
        Objects numbered 1..N in the raster order of their first pixel.

    Examples
    --------
    >>> labels = samkit.segment_all("slide.tif", "vit_b_lm", out="slide-labels")  # doctest: +SKIP
    """
    settings = Settings(points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
                        stability_score_offset, box_nms_thresh, min_area)  # fmt: skip
    options = _options(tile_size, halo, cache, channels, percentiles, value_range)
    return _run([image], model, [out], settings, options, client, workdir, progress)[0]


def segment_all_many(images, model, *, out=None, client=None, workdir=None, progress=None, **options) -> list[LabelImage]:
    """:func:`segment_all` on several images; with ``client`` all their windows share the cluster.

    Parameters
    ----------
    images : sequence of paths or arrays
    out : path, optional
        A folder: each label image goes to ``out/<image name without suffix>``
        (``image_<i>`` for arrays). Default: in memory.
    **options
        Any keyword argument of :func:`segment_all`.

    Returns
    -------
    list of LabelImage, in the order of ``images``.
    """
    images = list(images)
    outs = [None] * len(images)
    if out is not None:
        names = [_name(image, i) for i, image in enumerate(images)]
        if len(set(names)) < len(names):
            raise InvalidImageError(f"images share a name ({names}); segment them into separate folders")
        outs = [Path(out) / name for name in names]
    session_keys = ("tile_size", "halo", "cache", "channels", "percentiles", "value_range")
    session_args = {k: options.pop(k) for k in session_keys if k in options}
    unknown = set(options) - set(Settings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"segment_all_many() got unexpected keyword arguments {sorted(unknown)}")
    defaults = dict(tile_size=None, halo=None, cache=None, channels=None, percentiles=DEFAULT_PERCENTILES, value_range=None)
    return _run(images, model, outs, Settings(**options), _options(**{**defaults, **session_args}), client, workdir, progress)


def embed(image, model, *, cache, tile_size=None, halo=None, channels=None, percentiles=DEFAULT_PERCENTILES,
          value_range=None, client=None, progress=None) -> int:  # fmt: skip
    """Fill the embedding store ``cache`` for every window of ``image`` (ahead of clicks or :func:`segment_all`).

    Arguments as for :func:`segment_all`. Returns the number of windows.
    """
    options = _options(tile_size, halo, cache, channels, percentiles, value_range)
    if client is None:
        session = Session(image, load(model), **dict(options))
        session.embed_all(progress=progress).result()
        return len(session.grid)
    from . import distributed

    job = distributed.job(image, model, options, Settings(), "")
    distributed.run(client, embed_window, [(job, i) for i in job.grid.indices()], _Progress(len(job.grid), progress))
    return len(job.grid)


# -- the run ------------------------------------------------------------------


def _run(images, model, outs, settings, options, client, workdir, progress) -> list[LabelImage]:
    for out in outs:
        _check_out(out)
    root = Path(tempfile.mkdtemp(prefix="samkit-segment-", dir=workdir))
    try:
        if client is None:
            model = load(model)
            sessions = [Session(image, model, memory_bytes=EMBEDDING_MEMORY, **dict(options)) for image in images]
            for session in sessions:
                _point_decoder(session.model)
            jobs = [Job(None, None, options, settings, s.grid, str(root / f"{i}.zarr")) for i, s in enumerate(sessions)]
        else:
            from . import distributed

            jobs = [distributed.job(image, model, options, settings, str(root / f"{i}.zarr")) for i, image in enumerate(images)]
        for job in jobs:
            (th, tw), (ny, nx) = job.grid.window_shape, job.grid.grid_shape
            zarr.create_array(job.scratch, shape=(ny, nx, th, tw), dtype="int32", fill_value=0,
                              chunks=(1, 1, min(th, SCRATCH_CHUNK), min(tw, SCRATCH_CHUNK)))  # fmt: skip
        windows = [(k, index) for k, job in enumerate(jobs) for index in job.grid.indices()]
        tracker = _Progress(len(windows), progress)
        if client is None:
            summaries = [generate_window(jobs[k], index, sessions[k], tracker) for k, index in windows]
            pair_links = [link_window(jobs[k], index) for k, index in windows]
        else:
            summaries = distributed.run(client, generate_window, [(jobs[k], index) for k, index in windows], tracker)
            pair_links = distributed.run(client, link_window, [(jobs[k], index) for k, index in windows])
        results = []
        for k, job in enumerate(jobs):
            mine = [s for (j, _), s in zip(windows, summaries) if j == k]
            found = [triple for (j, _), triples in zip(windows, pair_links) if j == k for triple in triples]
            resolved = stitch.resolve(mine, found, settings.min_area)
            assembled = stitch.Assembled(job.grid, zarr.open_array(job.scratch, mode="r"), resolved.lookups)
            results.append(LabelImage(job.grid.shape, path=outs[k], initial=assembled))
        return results
    finally:
        shutil.rmtree(root, ignore_errors=True)


def generate_window(job: Job, index, session: Session | None = None, tracker=None) -> stitch.WindowSummary:
    """Stage 1 for window ``index``: embed, generate, write its labels to the scratch array; its summary."""
    if session is None:
        from .distributed import worker_session

        session = worker_session(job)
    grid = job.grid
    window = grid.window(index)
    embedding = session.compute([index])[0]
    decode = _point_decoder(session.model)(embedding, window)
    objects = window_objects(decode, grid.window_shape, job.settings, stitch.inner_edges(grid, index))
    labels = paint(objects, grid.window_shape)
    zarr.open_array(job.scratch, mode="r+")[index] = labels  # all of the window's chunks: a retry rewrites them
    if tracker is not None:
        tracker.step()
    return stitch.summarise(grid, index, labels)


def link_window(job: Job, index) -> list:
    """Stage 2 for window ``index``: (index, neighbour, (k, 2) local id pairs) for each later neighbour."""
    windows = zarr.open_array(job.scratch, mode="r")
    out = []
    for other in stitch.neighbours(job.grid, index):
        box = stitch.overlap(job.grid, index, other)
        if box is not None:
            a, b = (_read(windows, job.grid, i, box) for i in (index, other))
            out.append((tuple(index), other, stitch.links(a, b)))
    return out


def embed_window(job: Job, index) -> None:
    from .distributed import worker_session

    worker_session(job).compute([index])


# -- helpers ------------------------------------------------------------------


def _read(windows, grid: TileGrid, index, box) -> np.ndarray:
    y0, x0, _, _ = grid.window(index)
    return np.asarray(windows[index[0], index[1], box[0] - y0 : box[2] - y0, box[1] - x0 : box[3] - x0])


def _point_decoder(model):
    decoder = getattr(model, "point_decoder", None)
    if decoder is None:
        raise UnsupportedModelError(
            f"{getattr(model, 'name', type(model).__name__)} cannot segment automatically: its window model has no "
            "point_decoder (see samkit.engine.models); use SAM, 'classical' or samkit.testing.OracleModel"
        )
    return decoder


def load(model):
    """A model argument made usable: builder functions are called (once per call)."""
    if isinstance(model, (types.FunctionType, functools.partial)):
        return model()
    return model


def default_tile(model) -> int:
    """The window side for ``model`` without loading weights: its input size, 1024 for SAM and names."""
    if isinstance(model, str) or hasattr(model, "__fspath__") or isinstance(model, (types.FunctionType, functools.partial)):
        return 1024
    from ..engine.models import window_model

    return int(getattr(window_model(model), "input_size", 1024))


def _options(tile_size, halo, cache, channels, percentiles, value_range) -> tuple:
    options = dict(tile_size=tile_size, halo=halo, cache=None if cache is None else str(cache), channels=channels,
                   percentiles=tuple(percentiles), value_range=value_range)  # fmt: skip
    return tuple(sorted(options.items()))


def _check_out(out) -> None:
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InvalidImageError(f"out={str(out)!r} is a file; give a folder for the label image")
    if is_saved(path):
        raise InvalidImageError(f"{out} already holds a label image; choose a new folder (or delete it first)")
    if path.is_dir() and {p.name for p in path.iterdir() if not p.name.endswith(".tmp")} - {"labels.zarr", "ops"}:
        raise InvalidImageError(f"{out} is a folder with other files in it; choose a new folder for the label image")


def _name(image, i: int) -> str:
    if isinstance(image, (str, Path)):
        return Path(image).name.split(".")[0] or f"image_{i}"
    return f"image_{i}"


class _Progress:
    """Counts finished windows and calls ``progress(done, total, eta_seconds)``."""

    def __init__(self, total: int, callback) -> None:
        self.total, self.done, self.callback = total, 0, callback
        self.started = time.perf_counter()

    def step(self) -> None:
        self.done += 1
        if self.callback is not None:
            elapsed = time.perf_counter() - self.started
            self.callback(self.done, self.total, elapsed / self.done * (self.total - self.done))
