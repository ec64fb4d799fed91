"""The ``samkit`` commands that run over images: ``embed``, ``segment``, ``measure``.

Each ``add_<command>(commands)`` creates its sub-parser and sets ``run``; the
error contract (one line, exit status 2) is :mod:`samkit.cli`'s.
"""

from __future__ import annotations

import argparse
import sys

from .errors import InvalidImageError, SamkitError


def _int_at_least(low: int):
    """An argparse ``type``: an int >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is too small: give at least {low}")
        return value

    return parse




def _add_window_options(parser) -> None:
    """The options ``embed`` and ``segment`` share: model, windows, embedding cache, cluster."""
    parser.add_argument("image", metavar="IMAGE", help="TIFF, OME-Zarr, PNG or JPEG")
    parser.add_argument("--model", help="registry name, checkpoint file or 'classical' "
                        "(default: a cached SAM model, else the classical fallback)")  # fmt: skip
    parser.add_argument("--cache", help="embedding store folder (default: <samkit cache>/embeddings)")
    parser.add_argument("--tile-size", type=_int_at_least(16),
                        help="window side in pixels, at least 16 (default: the model's input, 1024)")  # fmt: skip
    parser.add_argument("--halo", type=_int_at_least(1),
                        help="half the overlap of windows, at least 1 (default: 128, or an eighth of smaller windows)")  # fmt: skip
    parser.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                        "(workers need the image, cache and work folder on a shared file system)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_embed(commands) -> None:
    embed = commands.add_parser("embed", help="embed every window of an image into the embedding store")
    _add_window_options(embed)
    embed.set_defaults(run=_embed)


def add_segment(commands) -> None:
    from .automatic import Settings

    defaults = Settings()
    segment = commands.add_parser("segment", help="segment every object of an image automatically")
    _add_window_options(segment)
    segment.add_argument("-o", "--out", required=True, metavar="OUT",
                         help="labels.tif (OME-TIFF), labels.zarr (OME-Zarr), or a folder without suffix "
                         "(a samkit label image with history, to correct in the annotators)")  # fmt: skip
    from .automatic import MODES

    segment.add_argument("--mode", choices=MODES, default=defaults.mode,
                         help="how objects are found (default: auto, the best the model offers; see samkit.segment_all)")
    segment.add_argument("--object-size", type=float, default=None, metavar="PIXELS",
                         help="typical object diameter in pixels, for --mode prompts (default: estimated)")
    for name, kind in (("max_prompts", int), ("points_per_side", int), ("points_per_batch", int),
                       ("pred_iou_thresh", float), ("stability_score_thresh", float), ("stability_score_offset", float),
                       ("box_nms_thresh", float), ("min_area", int)):  # fmt: skip
        segment.add_argument(f"--{name.replace('_', '-')}", type=kind, default=getattr(defaults, name),
                             help="see samkit.segment_all (default: %(default)s)")  # fmt: skip
    segment.add_argument("--workdir", help="folder for intermediate files (default: beside OUT)")
    from .export.cli import add_prompts_option

    add_prompts_option(segment)
    segment.set_defaults(run=_segment)


def add_measure(commands) -> None:
    measure = commands.add_parser("measure", help="measure every object of a label image into a table")
    measure.add_argument("labels", metavar="LABELS", help="label image: TIFF, OME-Zarr or a samkit label folder")
    measure.add_argument("image", metavar="IMAGE", nargs="?", help="intensity image to measure in (optional)")
    measure.add_argument("-o", "--out", required=True, metavar="TABLE", help="table.csv or table.parquet")
    measure.add_argument("--properties", nargs="+", default=["basic"], help="property groups or names (default: basic)")
    measure.set_defaults(run=_measure)


def _embed(args: argparse.Namespace) -> int:
    from .automatic import embed

    _exists(args.image, "image")
    with _client(args.scheduler) as client, _bar("embedding", args.no_progress) as progress:
        total = embed(args.image, _model(args.model), cache=_cache(args.cache), tile_size=args.tile_size,
                      halo=args.halo, client=client, progress=progress)  # fmt: skip
    print(f"{total} windows embedded in {_cache(args.cache)}", file=sys.stderr)
    return 0


def _segment(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    from ._output import check_writable, remove_leftover
    from .automatic import run
    from .measurement import save_labels

    if args.prompts:  # one object per box / point of a prompt file
        from .export.cli import segment_with_prompts

        return segment_with_prompts(args, _model(args.model), _cache(args.cache))
    _exists(args.image, "image")
    out = Path(args.out)
    export = out.suffix.lower() in (".tif", ".tiff", ".zarr")
    if out.suffix and not export:
        raise InvalidImageError(f"-o {out}: use a .tif, .tiff or .zarr file, or a folder name without suffix")
    if export and out.exists():
        raise InvalidImageError(f"{out} exists; choose another output or delete it first")
    check_writable(out)
    settings = {k: getattr(args, k) for k in ("mode", "object_size", "max_prompts", "points_per_side", "points_per_batch",
                "pred_iou_thresh", "min_area", "stability_score_thresh", "stability_score_offset", "box_nms_thresh")}  # fmt: skip
    _check_settings(settings, args.halo, args.tile_size)
    folder = out.with_name(f".{out.name}.labels") if export else out  # the label image, before its export
    if export:
        remove_leftover(folder, out)
    with _client(args.scheduler) as client, _bar("segmenting", args.no_progress) as progress:
        result = run(args.image, _model(args.model), tile_size=args.tile_size, halo=args.halo, out=folder,
                     cache=_cache(args.cache), client=client, workdir=args.workdir or out.parent,
                     progress=progress, **settings)  # fmt: skip
    labels = result.labels
    print(f"samkit: {result.summary()}", file=sys.stderr)
    if export:
        save_labels(labels, out)
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{len(labels.objects)} objects -> {out}", file=sys.stderr)
    return 0


def _measure(args: argparse.Namespace) -> int:
    from .io import open_image
    from .labels import LabelImage
    from .measurement import export_table, measure

    path = _exists(args.labels, "label image")
    if args.image is not None:
        _exists(args.image, "image")
    if (path / "log.jsonl").is_file():  # a samkit label image folder
        labels = LabelImage.open(path)
    elif path.suffix.lower() == ".zarr" and (path / "labels").is_dir():  # OME-Zarr from `samkit segment`
        names = sorted(p.name for p in (path / "labels").iterdir() if p.is_dir())
        if not names:
            raise InvalidImageError(f"{path}/labels holds no label image")
        labels = open_image(path / "labels" / names[0])
    else:
        labels = open_image(path)
    intensity = None if args.image is None else open_image(args.image)
    table = measure(labels, intensity, properties=tuple(args.properties))
    export_table(table, args.out)
    print(f"{len(table)} objects -> {args.out}", file=sys.stderr)
    return 0


def _check_settings(settings: dict, halo: int | None, tile_size: int | None) -> None:
    """Refuse bad settings before any work (InvalidSettingError, one line like any samkit error)."""
    from .automatic import Settings
    from .engine.grid import TileGrid, default_halo

    Settings(**settings)
    side = 1024 if tile_size is None else tile_size
    TileGrid((1, 1), side, default_halo(side) if halo is None else halo)


def _exists(path: str, what: str):
    from pathlib import Path

    if not Path(path).exists():
        raise InvalidImageError(f"no such {what}: {path}")
    return Path(path)


def _model(name: str | None):
    """The model argument: a name as given, else the default model (a cached SAM, else the classical fallback)."""
    if name is not None:
        return name
    from .interaction import default_model

    model, note = default_model()
    if note:
        print(f"samkit: {note}", file=sys.stderr)
    return model


def _cache(folder: str | None):
    from pathlib import Path

    from .models.weights import cache_dir

    return Path(folder) if folder else cache_dir() / "embeddings"


class _client:
    """``with _client(address) as client``: a Dask client for ``--scheduler``, or None."""

    def __init__(self, address: str | None) -> None:
        self.address, self.client = address, None

    def __enter__(self):
        if self.address is None:
            return None
        try:
            from distributed import Client
        except ImportError as e:
            raise SamkitError(f"--scheduler needs Dask: pip install 'samkit[dask]' ({e})") from e
        try:
            self.client = Client(self.address, timeout=30)
        except OSError as e:
            raise SamkitError(f"cannot reach the Dask scheduler at {self.address}: {e}") from e
        return self.client

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()


class _bar:
    """``with _bar(label, off) as progress``: a tqdm bar on stderr driven by ``progress(done, total, eta)``."""

    def __init__(self, label: str, off: bool) -> None:
        self.label, self.off, self.bar = label, off, None

    def __enter__(self):
        return None if self.off else self.update

    def update(self, done: int, total: int, eta) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.label, unit="window", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
