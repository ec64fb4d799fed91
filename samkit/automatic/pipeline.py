"""``segment_all``: automatic segmentation of a whole image, window by window, then stitched.

Three stages, each a set of independent tasks run here one after another or
spread over a Dask cluster (:mod:`samkit.automatic.distributed`):

1. per window: embed (through the session's embedding store), segment the
   window in the run's mode (:mod:`samkit.automatic.modes`), write its label
   image into a scratch zarr array;
2. per pair of neighbouring windows: link the objects they share in their overlap;
3. here: join linked pieces and number the objects, then write the label
   image block by block (:class:`samkit.LabelImage` with ``initial=``); on
   disk it counts as saved only once complete (its log is written last).

With ``region``, stage 1 starts with the windows whose cores cover it and
adds neighbours for as long as an object touching the region reaches into a
window not segmented yet; objects not touching it are dropped.

Every task is idempotent (a retried window rewrites the same chunks), and the
result does not depend on which process ran which window, or in what order.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zarr

from ..engine.grid import TileGrid
from ..engine.session import Session
from ..errors import Cancelled, InvalidImageError
from ..intensity import DEFAULT_PERCENTILES
from ..labels import LabelImage
from . import modes, stitch
from .jobs import EMBEDDING_MEMORY, Job, check_out, check_region, image_name, load, session_options
from .modes import Settings

SCRATCH_CHUNK = 256  # side of the scratch array's chunks (window-local)
log = logging.getLogger(__name__)


def segment_all(
    image,
    model,
    *,
    mode: str = "auto",
    object_size=None,
    max_prompts: int = 1024,
    tile_size: int | None = None,
    halo: int | None = None,
    points_per_side: int | None = None,
    points_per_batch: int = 64,
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    stability_score_offset: float = 1.0,
    box_nms_thresh: float = 0.7,
    min_area: int | None = None,
    out=None,
    cache=None,
    channels=None,
    percentiles=DEFAULT_PERCENTILES,
    value_range=None,
    region=None,
    cancel=None,
    client=None,
    workdir=None,
    progress=None,
    **decoder_settings,
) -> LabelImage:
    """Segment every object of an image automatically, window by window, stitched seamlessly.

    Parameters
    ----------
    image : path or (H, W[, C]) array-like
        Anything :func:`samkit.open_image` reads (with ``client``: a path the
        workers can read, or an array small enough to send them).
    model : Sam, registry name, checkpoint path, ``"classical"``, window model, or a function
        A function (or ``functools.partial``) without arguments that returns
        a model is called once per process: the way to hand Dask workers a
        model that has no file.
    mode : {'auto', 'apg', 'ais', 'prompts', 'grid'}
        How objects are found in each window (see
        ``docs/content/automatic.md``). 'auto' (default) takes the best the
        model offers: 'apg' with an instance decoder (micro-sam's ``*_lm``
        and ``*_em_organelles`` models), 'prompts' otherwise; 'grid' when
        ``points_per_side`` is given.

        * 'apg': point prompts at the object centres the instance decoder
          predicts, each drawn by SAM's mask decoder (micro-sam's APG);
        * 'ais': the instance decoder's maps turned into objects by a seeded
          watershed, no prompts (micro-sam's AIS; fastest);
        * 'prompts': prompts where the image has objects of ``object_size``
          (blob detection) and a coarse grid for larger ones;
        * 'grid': SAM's point grid, ``points_per_side ** 2`` prompts.
    object_size : float or (float, str), optional
        The typical diameter of the objects, for 'prompts': pixels, or
        ``(value, unit)`` in the image's physical units (e.g. ``(8, "µm")``,
        needs its pixel size). Default: estimated from the image.
    max_prompts : int
        Most prompts (mask decoder calls) per window in 'prompts' mode (1024:
        SAM's 32 x 32 grid).
    tile_size, halo : int
        The windows (default: the model's input size, 1024 for SAM) and half
        their overlap (default 128, an eighth of smaller windows). Objects of
        any size are stitched; a larger ``halo`` gives the model more context
        at window edges.
    points_per_side : int, optional
        'grid' mode: the point grid in each window, ``points_per_side ** 2``
        single-point prompts (SAM: 32).
    points_per_batch : int
        Prompts the mask decoder runs at once (SAM: 64).
    pred_iou_thresh : float
        'prompts' and 'grid': keep masks whose predicted IoU is at least this (SAM: 0.88).
    stability_score_thresh, stability_score_offset : float
        'prompts' and 'grid': keep masks whose stability score, the IoU of the
        masks at logit thresholds +- offset, is at least this (SAM: 0.95, offset 1.0).
    box_nms_thresh : float
        'prompts' and 'grid': of two masks whose boxes overlap with IoU above
        this, keep the better scored (SAM: 0.7).
    min_area : int, optional
        Drop objects smaller than this (pixels); in 'prompts' and 'grid' also
        fill holes and remove islands smaller than this from each mask.
        Default: 25 for 'apg' (micro-sam's), else 0.
    out : path, optional
        Folder of the label image on disk (see :class:`samkit.LabelImage`);
        it must not hold one already. Default: in memory.
    cache : path, optional
        Embedding store, as for :class:`samkit.Session` (with ``client``: on a
        file system all workers share). Reused by later runs and clicks.
    channels, percentiles, value_range
        The image's intensity mapping, as for :class:`samkit.Session`.
    region : (y0, x0, y1, x1), optional
        Segment only the windows covering this box (pixels) and keep the
        objects touching it, whole; the label image keeps the image's shape.
    cancel : threading.Event, optional
        When set, the run stops after the window in progress and raises
        :class:`samkit.errors.Cancelled`; nothing is written to ``out``.
    client : dask.distributed.Client, optional
        Spread the windows over a Dask cluster (see ``docs/content/automatic.md``).
    workdir : path, optional
        Where the windows' labels are kept during the run (default: the
        system's temporary folder; with ``client``, pick one all workers see).
    progress : callable, optional
        ``progress(done, total, eta_seconds)`` after each window is segmented.
    **decoder_settings
        'ais' and 'apg': micro-sam's post-processing parameters
        ``center_distance_threshold``, ``boundary_distance_threshold``,
        ``foreground_threshold`` (0.5 each), ``foreground_smoothing`` (1.0),
        ``distance_smoothing`` (1.6) and, for 'apg', ``nms_threshold`` (0.9).

    Returns
    -------
    LabelImage
        Objects numbered 1..N in the raster order of their first pixel. The
        mode used, the object size and the decoder calls per window are
        logged (``logging`` at INFO, logger ``samkit.automatic``); use
        :func:`samkit.automatic.run` to get them as values.

    Examples
    --------
    >>> labels = samkit.segment_all("slide.tif", "vit_b_lm", out="slide-labels")  # doctest: +SKIP
    """
    options = {k: v for k, v in locals().items() if k not in ("image", "model", "decoder_settings")}
    return run(image, model, **options, **decoder_settings).labels


def run(image, model, **options) -> modes.Run:
    """:func:`segment_all`, returning the labels with what was done: mode, object size, decoder calls per window.

    Takes the arguments of :func:`segment_all`.

    Returns
    -------
    Run
        ``labels`` (the LabelImage), ``mode``, ``object_size`` (pixels) and
        ``windows``: one :class:`~samkit.automatic.modes.WindowReport` per
        window segmented (decoder calls, prompts, seconds).
    """
    session_keys = ("tile_size", "halo", "cache", "channels", "percentiles", "value_range")
    run_keys = ("out", "region", "cancel", "client", "workdir", "progress")
    args = {k: options.pop(k) for k in session_keys if k in options}
    extra = {k: options.pop(k) for k in run_keys if k in options}
    defaults = dict(tile_size=None, halo=None, cache=None, channels=None, percentiles=DEFAULT_PERCENTILES, value_range=None)
    settings = modes.settings(**options)
    return _run([image], model, [extra.get("out")], settings, session_options(**{**defaults, **args}),
                extra.get("client"), extra.get("workdir"), extra.get("progress"), extra.get("region"),
                extra.get("cancel"))[0]  # fmt: skip


def segment_all_many(images, model, *, out=None, client=None, workdir=None, progress=None, cancel=None, **options) -> list[LabelImage]:
    """:func:`segment_all` on several images; with ``client`` all their windows share the cluster.

    Parameters
    ----------
    images : sequence of paths or arrays
    out : path, optional
        A folder: each label image goes to ``out/<image name without suffix>``
        (``image_<i>`` for arrays). Default: in memory.
    **options
        Any keyword argument of :func:`segment_all` but ``region``.

    Returns
    -------
    list of LabelImage, in the order of ``images``.
    """
    images = list(images)
    outs = [None] * len(images)
    if out is not None:
        names = [image_name(image, i) for i, image in enumerate(images)]
        if len(set(names)) < len(names):
            raise InvalidImageError(f"images share a name ({names}); segment them into separate folders")
        outs = [Path(out) / name for name in names]
    session_keys = ("tile_size", "halo", "cache", "channels", "percentiles", "value_range")
    session_args = {k: options.pop(k) for k in session_keys if k in options}
    defaults = dict(tile_size=None, halo=None, cache=None, channels=None, percentiles=DEFAULT_PERCENTILES, value_range=None)
    runs = _run(images, model, outs, modes.settings(**options), session_options(**{**defaults, **session_args}),
                client, workdir, progress, None, cancel)  # fmt: skip
    return [r.labels for r in runs]


def embed(image, model, *, cache, tile_size=None, halo=None, channels=None, percentiles=DEFAULT_PERCENTILES,
          value_range=None, client=None, progress=None) -> int:  # fmt: skip
    """Fill the embedding store ``cache`` for every window of ``image`` (ahead of clicks or :func:`segment_all`).

    Arguments as for :func:`segment_all`. Returns the number of windows.
    """
    options = session_options(tile_size, halo, cache, channels, percentiles, value_range)
    if client is None:
        session = Session(image, load(model), **dict(options))
        session.embed_all(progress=progress).result()
        return len(session.grid)
    from . import distributed

    job = distributed.job(image, model, options, Settings(), "")
    distributed.run(client, embed_window, [(job, i) for i in job.grid.indices()], _Progress(len(job.grid), progress))
    return len(job.grid)


# -- the run ------------------------------------------------------------------


def _run(images, model, outs, settings, options, client, workdir, progress, region, cancel) -> list[modes.Run]:
    for out in outs:
        check_out(out)
    root = Path(tempfile.mkdtemp(prefix="samkit-segment-", dir=workdir))
    try:
        sessions = None
        if client is None:
            model = load(model)
            sessions = [Session(image, model, memory_bytes=EMBEDDING_MEMORY, **dict(options)) for image in images]
            jobs = [Job(None, None, options, modes.decide(settings, s), s.grid, str(root / f"{i}.zarr"),
                        check_region(region, s.grid.shape)) for i, s in enumerate(sessions)]  # fmt: skip
        else:
            from . import distributed

            jobs = [distributed.job(image, model, options, settings, str(root / f"{i}.zarr"), region, client)
                    for i, image in enumerate(images)]  # fmt: skip
        for job in jobs:
            (th, tw), (ny, nx) = job.grid.window_shape, job.grid.grid_shape
            zarr.create_array(job.scratch, shape=(ny, nx, th, tw), dtype="int32", fill_value=0,
                              chunks=(1, 1, min(th, SCRATCH_CHUNK), min(tw, SCRATCH_CHUNK)))  # fmt: skip
            log.info("segment_all: %s", modes.describe(job.settings, job.grid))
        results = _windows(jobs, sessions, client, progress, cancel)
        runs = []
        for k, job in enumerate(jobs):
            summaries, reports, found = results[k]
            resolved = stitch.resolve(summaries, found, job.settings.min_area, job.region)
            lookups = {index: resolved.lookups.get(index, np.zeros(1, np.uint32)) for index in job.grid.indices()}
            assembled = stitch.Assembled(job.grid, zarr.open_array(job.scratch, mode="r"), lookups)
            labels = LabelImage(job.grid.shape, path=outs[k], initial=assembled)
            mode = reports[0].mode if reports else job.settings.mode
            modes.keep_scores(labels, resolved, mode)
            run_ = modes.Run(labels, mode, job.settings.object_size, reports)
            log.info("segment_all: %s", run_.summary())
            runs.append(run_)
        return runs
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _windows(jobs, sessions, client, progress, cancel) -> list:
    """Stages 1 and 2 for every job: [(summaries, reports, pair links)], windows added while regions need them."""
    todo = [(k, index) for k, job in enumerate(jobs) for index in _first_windows(job)]
    tracker = _Progress(len(todo), progress)
    summaries = [dict() for _ in jobs]
    reports = [dict() for _ in jobs]
    pair_links = [[] for _ in jobs]
    while todo:
        if client is None:
            done = []
            for k, index in todo:
                _check(cancel)
                done.append(generate_window(jobs[k], index, sessions[k], tracker))
        else:
            from . import distributed

            done = distributed.run(client, generate_window, [(jobs[k], index) for k, index in todo], tracker, cancel)
        for (k, index), (summary, report) in zip(todo, done):
            summaries[k][index], reports[k][index] = summary, report
        pairs = [(k, (a, b)) for k, index in todo for a, b in _new_pairs(jobs[k].grid, index, summaries[k])]
        _check(cancel)
        if client is None:
            found = [link_pair(jobs[k], pair) for k, pair in pairs]
        else:
            found = distributed.run(client, link_pair, [(jobs[k], pair) for k, pair in pairs], None, cancel)
        for (k, (a, b)), links in zip(pairs, found):
            pair_links[k].append((a, b, links))
        todo = []
        for k, job in enumerate(jobs):
            if job.region is not None:
                todo += [(k, i) for i in sorted(stitch.to_visit(job.grid, list(summaries[k].values()), pair_links[k], job.region))]
        tracker.total += len(todo)
    return [(list(s.values()), list(r.values()), p) for s, r, p in zip(summaries, reports, pair_links)]


def _first_windows(job: Job) -> list:
    """All windows, or those whose cores cover the job's region."""
    if job.region is None:
        return job.grid.indices()
    y0, x0, y1, x1 = job.region
    return [i for i in job.grid.indices() if _meets(stitch.core(job.grid, i), job.region)]


def _meets(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _new_pairs(grid: TileGrid, index, done: dict) -> list:
    """Pairs (a, b), a before b in raster order, of ``index`` and its segmented neighbours."""
    iy, ix = index
    around = [(iy + dy, ix + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    return [tuple(sorted((tuple(index), n))) for n in around if n in done and stitch.overlap(grid, index, n) is not None]


def _check(cancel) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("segment_all was cancelled; no label image was written")


def generate_window(job: Job, index, session: Session | None = None, tracker=None):
    """Stage 1 for window ``index``: embed, segment, write its labels to the scratch array; (summary, report)."""
    if session is None:
        from .distributed import worker_session

        session = worker_session(job)
    started = time.perf_counter()
    result = modes.segment_window(session, tuple(index), job.settings)
    zarr.open_array(job.scratch, mode="r+")[tuple(index)] = result.labels  # all its chunks: a retry rewrites them
    if tracker is not None:
        tracker.step()
    summary = stitch.summarise(job.grid, index, result.labels, job.region, result.score, result.stability)
    return summary, result.report(tuple(index), time.perf_counter() - started)


def link_pair(job: Job, pair) -> np.ndarray:
    """Stage 2 for two neighbouring windows: (k, 2) local id pairs of the objects they share."""
    windows = zarr.open_array(job.scratch, mode="r")
    a, b = pair
    box = stitch.overlap(job.grid, a, b)
    return stitch.links(*(_read(windows, job.grid, i, box) for i in (a, b)))


def embed_window(job: Job, index) -> None:
    from .distributed import worker_session

    worker_session(job).compute([index])


# -- helpers ------------------------------------------------------------------


def _read(windows, grid: TileGrid, index, box) -> np.ndarray:
    y0, x0, _, _ = grid.window(index)
    return np.asarray(windows[index[0], index[1], box[0] - y0 : box[2] - y0, box[1] - x0 : box[3] - x0])


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
