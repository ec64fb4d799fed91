"""The ``samkit`` command.

Each top-level command is added by one ``_add_<command>(commands)`` function
listed in ``_COMMANDS``; it creates its sub-parser and sets ``run``, the
function that carries it out and returns the exit status. Errors samkit
raises on purpose (:class:`samkit.errors.SamkitError`) end the command with
a one-line message on stderr and exit status 2, never a traceback; so do
usage errors, file system errors (an unwritable ``-o``, a full disk) and
unreadable images.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._cli_images import add_embed, add_measure, add_segment
from .errors import SamkitError


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``samkit`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 on success, 2 for a usage error or a samkit error.

    Examples
    --------
    >>> from samkit.cli import main
    >>> main(["models", "path", "vit_b"])  # doctest: +SKIP
    /home/me/.cache/samkit/sam_vit_b_01ec64.pth
    0
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already reported
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return args.run(args)
    except (SamkitError, OSError) as exc:  # OSError: -o unwritable, disk full, a file vanished
        _fail(_message(exc))
        return 2
    except KeyboardInterrupt:
        print("samkit: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> None:
    print(f"samkit: error: {' '.join(message.split())}", file=sys.stderr)


def _message(exc: BaseException) -> str:
    """``exc``'s message; an OSError's with its file name, e.g. "Permission denied: '/data/out.tif'"."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror if exc.filename is None else f"{exc.strerror}: {str(exc.filename)!r}"
    return str(exc) or type(exc).__name__


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like samkit's other errors."""

    def error(self, message: str):
        _fail(f"{message} (see: {self.prog} --help)")
        raise SystemExit(2)


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="samkit",
        description="Segment Anything for scientists.",
        epilog="Downloaded checkpoints are kept in $SAMKIT_CACHE_DIR (default: the user cache folder).",
    )
    parser.add_argument("--version", action="version", version=f"samkit {__version__}")
    parser.set_defaults(run=lambda args: _usage(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for add in _COMMANDS:
        add(commands)
    return parser


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# --------------------------------------------------------------------------
# samkit models ...
# --------------------------------------------------------------------------


def _add_models(commands) -> None:
    models = commands.add_parser("models", help="list, download and locate model checkpoints")
    models.set_defaults(run=lambda args: _usage(models))
    actions = models.add_subparsers(title="actions", metavar="ACTION")

    listing = actions.add_parser("list", help="the known models, their size and whether they are cached")
    listing.set_defaults(run=_models_list)

    download = actions.add_parser("download", help="download and verify checkpoints into the cache")
    download.add_argument("names", nargs="+", metavar="NAME", help="model names, see `samkit models list`")
    download.add_argument("--no-progress", action="store_true", help="no progress bar")
    download.set_defaults(run=_models_download)

    path = actions.add_parser("path", help="print where a checkpoint is kept in the cache")
    path.add_argument("name", metavar="NAME")
    path.set_defaults(run=_models_path)


def _models_list(args: argparse.Namespace) -> int:
    from .models.registry import MODELS
    from .models.weights import cache_dir, cached_path, is_cached

    rows = [("NAME", "TYPE", "SIZE", "SOURCE", "CACHED")]
    for info in MODELS.values():
        if is_cached(info):
            cached = "yes"
        elif cached_path(info).is_file():
            cached = "unchecked"
        else:
            cached = "no"
        rows.append((info.name, info.model_type, _human_size(info.size_bytes), info.source, cached))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print(f"\ncache: {cache_dir()}")
    return 0


def _models_download(args: argparse.Namespace) -> int:
    from .models.registry import get_model_info
    from .models.weights import fetch_checkpoint, is_cached

    infos = [get_model_info(name) for name in args.names]  # all names checked before any download
    for info in infos:
        if not is_cached(info):
            print(f"{info.name}: downloading {info.url}", file=sys.stderr)
        print(fetch_checkpoint(info, progress=not args.no_progress))
    return 0


def _models_path(args: argparse.Namespace) -> int:
    from .models.weights import cached_path, is_cached

    path = cached_path(args.name)
    print(path)
    if not path.is_file():
        print(f"not downloaded yet: samkit models download {args.name}", file=sys.stderr)
    elif not is_cached(args.name):
        print("present but not verified yet; it is checked when first loaded", file=sys.stderr)
    return 0


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


# --------------------------------------------------------------------------
# samkit demo
# --------------------------------------------------------------------------


def _add_demo(commands) -> None:
    demo = commands.add_parser(
        "demo", help="segment the shipped nuclei image from clicks; save labels.tif and overlay.png"
    )
    demo.add_argument("--model", help="registry name or checkpoint file (default: a cached model, else the classical fallback)")
    demo.add_argument("--out", default="samkit-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: %(default)s)")
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, model=args.model, device=args.device)
    return 0


def _add_export(commands) -> None:
    from .export.cli import add_export

    add_export(commands)


#: One function per top-level command; a new command is one more function here.
_COMMANDS = (_add_models, _add_demo, add_embed, add_segment, add_measure, _add_export)


if __name__ == "__main__":
    sys.exit(main())
