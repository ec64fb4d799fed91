"""What a ``segment_all`` task needs, in one picklable object, and the checks made before a run starts.

Kept apart from :mod:`~samkit.automatic.pipeline` (which runs the tasks) and
:mod:`~samkit.automatic.distributed` (which sends them to a cluster) so that
neither imports the other.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass
from pathlib import Path

from .._journal import is_saved
from ..engine.grid import TileGrid
from ..engine.session import Session
from ..errors import InvalidImageError, InvalidPromptError

EMBEDDING_MEMORY = 2**26  # embeddings kept in memory per session: each window's is used once


@dataclass(frozen=True)
class Job:
    """One image's part of a run: everything a task needs, picklable for Dask.

    ``settings`` is the mode's settings (see :mod:`samkit.automatic.modes`),
    with the object size already decided for the whole image.
    """

    image: object
    model: object
    options: tuple  # Session keyword arguments, as sorted (name, value) pairs
    settings: object
    grid: TileGrid
    scratch: str
    region: tuple | None = None  # (y0, x0, y1, x1): keep only the objects touching it
    key: str = ""  # identity of (image, model, options), for per-process caches
    model_key: str = ""

    def session(self, model) -> Session:
        """A session on this job's image with ``model`` (a window model built from :attr:`model`)."""
        return Session(self.image, model, memory_bytes=EMBEDDING_MEMORY, **dict(self.options))


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


def session_options(tile_size, halo, cache, channels, percentiles, value_range) -> tuple:
    """The Session keyword arguments of a run, hashable and picklable."""
    options = dict(tile_size=tile_size, halo=halo, cache=None if cache is None else str(cache), channels=channels,
                   percentiles=tuple(percentiles), value_range=value_range)  # fmt: skip
    return tuple(sorted(options.items()))


def check_region(region, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``region`` as int (y0, x0, y1, x1) clipped to the image, or None; a typed error when it is malformed."""
    if region is None:
        return None
    try:
        y0, x0, y1, x1 = (float(v) for v in region)
    except (TypeError, ValueError):
        raise InvalidPromptError(f"region={region!r}: give (y0, x0, y1, x1) in pixels") from None
    h, w = shape
    box = (max(int(y0), 0), max(int(x0), 0), min(int(-(-y1 // 1)), h), min(int(-(-x1 // 1)), w))
    if box[0] >= box[2] or box[1] >= box[3]:
        raise InvalidPromptError(f"region={tuple(region)!r} holds no pixel of the {h} x {w} image (y0 < y1, x0 < x1)")
    return box


def check_out(out) -> None:
    """Refuse an output folder that holds a label image or other files, before any window is segmented."""
    if out is None:
        return
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InvalidImageError(f"out={str(out)!r} is a file; give a folder for the label image")
    if is_saved(path):
        raise InvalidImageError(f"{out} already holds a label image; choose a new folder (or delete it first)")
    if path.is_dir() and {p.name for p in path.iterdir() if not p.name.endswith(".tmp")} - {"labels.zarr", "ops"}:
        raise InvalidImageError(f"{out} is a folder with other files in it; choose a new folder for the label image")


def image_name(image, i: int) -> str:
    """The output name of image ``i`` of a batch: its file name without suffix, ``image_<i>`` for arrays."""
    if isinstance(image, (str, Path)):
        return Path(image).name.split(".")[0] or f"image_{i}"
    return f"image_{i}"
