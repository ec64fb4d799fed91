"""Zarr directories: a plain array, a group with arrays "0", "1", ..., or OME-Zarr (NGFF) multiscales.

OME-Zarr 0.4 (zarr v2, ``.zattrs``) and 0.5 (zarr v3, ``zarr.json`` attributes
under "ome") give the axes (names and units), the scale of each level and, in
"omero", the channel names.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import xxhash

from ..errors import InvalidImageError
from .identity import sample_digest, stat_digest
from .image import Image
from .metadata import common_unit, fit_axes, fit_channel_names, fit_spacing, guess_axes
from .views import region_text

METADATA_FILES = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")
AXIS_NAMES = {"t": "T", "time": "T", "c": "C", "channel": "C", "z": "Z", "y": "Y", "x": "X"}


def is_zarr(path: Path) -> bool:
    """Whether a directory is a zarr array or group."""
    return any((path / name).is_file() for name in METADATA_FILES)


class ZarrLevel:
    """One zarr array of a store, read lazily; a chunk that cannot be read raises InvalidImageError.

    zarr raises its codecs' own errors (e.g. ``RuntimeError: Zstd decompression error``) for
    a corrupt chunk; this names the store, the array, the region and the chunk instead.
    """

    def __init__(self, array, path: Path, name: str = "") -> None:
        self.array, self.path, self.name = array, path, name
        self.shape, self.dtype, self.chunks = tuple(array.shape), np.dtype(array.dtype), tuple(array.chunks)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        try:
            return np.asarray(self.array[key])
        except (IndexError, InvalidImageError, MemoryError):
            raise
        except Exception as exc:
            where = f"array '{self.name}', " if self.name else ""
            raise InvalidImageError(
                f"cannot read '{self.path}' ({where}{region_text(key)}{self._bad_chunk(key)}): "
                f"{type(exc).__name__}: {exc}; the store may be corrupt or incomplete"
            ) from exc

    def _bad_chunk(self, key, limit: int = 256) -> str:
        """``, chunk '<key>' is unreadable`` for the first chunk of the region that fails (if few enough to try)."""
        key = key if isinstance(key, tuple) else (key,)
        key = () if key == (Ellipsis,) else key
        if Ellipsis in key or len(key) > self.ndim or not all(isinstance(k, (slice, int, np.integer)) for k in key):
            return ""
        key = key + (slice(None),) * (self.ndim - len(key))
        grid = getattr(self.array, "shards", None) or self.chunks  # files hold shards when there are any
        ranges = []
        for k, n, c in zip(key, self.shape, grid):
            start, stop = (k.indices(n)[:2] if isinstance(k, slice) else (int(k) % n, int(k) % n + 1))
            ranges.append(range(start // c, -(-stop // c)))
        if np.prod([len(r) for r in ranges]) > limit:
            return ""
        for coords in itertools.product(*ranges):
            block = tuple(slice(i * c, (i + 1) * c) for i, c in zip(coords, grid))
            try:
                self.array[block]
            except Exception:
                return f", chunk {self.array.metadata.encode_chunk_key(coords)!r} is unreadable"
        return ""


class ZarrSource:
    """Identity of a zarr directory: its metadata files and a sample of level 0."""

    def __init__(self, path: Path, level_paths, level0, axes: str):
        self.path, self.level_paths, self.level0, self.axes = path, level_paths, level0, axes

    def identity(self) -> str:
        hasher = xxhash.xxh3_64(str(self.path.resolve()).encode())
        folders = [self.path] + [self.path / p for p in self.level_paths]
        stat_digest([folder / name for folder in folders for name in METADATA_FILES], hasher)
        return sample_digest(self.level0, self.axes, hasher).hexdigest()

    def close(self) -> None:
        """Nothing to close: zarr opens chunk files per read."""


def open_zarr(path: Path) -> Image:
    """Open a zarr directory lazily (see the module docstring)."""
    try:
        import zarr
    except ImportError:
        raise ImportError(f"reading '{path}' needs the zarr package: pip install zarr") from None
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise InvalidImageError(f"'{path}' is not a readable zarr store: {exc}") from exc
    if isinstance(node, zarr.Array):
        axes = _dimension_axes(node)
        level = ZarrLevel(node, path)
        return Image(level, axes, path=path, source=ZarrSource(path, [], level, axes))
    attrs = node.attrs.asdict()
    ome = attrs.get("ome", attrs)
    if ome.get("multiscales"):
        return _open_multiscales(path, node, ome)
    paths = []
    while str(len(paths)) in node and isinstance(node[str(len(paths))], zarr.Array):
        paths.append(str(len(paths)))
    if not paths:
        raise InvalidImageError(
            f"zarr group '{path}' has no multiscales metadata and no array '0'; "
            f"open one of its arrays instead: {sorted(node.array_keys())}"
        )
    arrays = [node[p] for p in paths]
    arrays = [a for a in arrays if a.ndim == arrays[0].ndim and a.dtype == arrays[0].dtype]
    axes = _dimension_axes(arrays[0])
    levels = [ZarrLevel(a, path, p) for a, p in zip(arrays, paths)]
    return Image(levels, axes, path=path, source=ZarrSource(path, paths[: len(levels)], levels[0], axes))


def _dimension_axes(array) -> str:
    """Axes from zarr v3 ``dimension_names`` or xarray's ``_ARRAY_DIMENSIONS``, else guessed."""
    names = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS")
    if names and all(isinstance(n, str) and n.lower() in AXIS_NAMES for n in names):
        return fit_axes("".join(AXIS_NAMES[n.lower()] for n in names), array.shape)
    return guess_axes(array.shape)


def _open_multiscales(path: Path, group, ome: dict) -> Image:
    multiscale = ome["multiscales"][0]
    try:
        paths = [d["path"] for d in multiscale["datasets"]]
        levels = [ZarrLevel(group[p], path, p) for p in paths]
    except (KeyError, TypeError) as exc:
        raise InvalidImageError(f"multiscales metadata of '{path}' names a level that is missing: {exc}") from exc
    shape = levels[0].shape
    entries = multiscale.get("axes") or []
    letters, units = "", {}
    for entry in entries:
        entry = {"name": entry} if isinstance(entry, str) else entry  # version 0.3 lists names only
        letter = AXIS_NAMES.get(str(entry.get("name", "")).lower()) or AXIS_NAMES.get(entry.get("type", ""), "?")
        letters += letter
        if entry.get("unit"):
            units[letter] = entry["unit"]
    axes = fit_axes(letters, shape) if len(letters) == len(shape) else guess_axes(shape)
    transforms = [t for t in (_scale(multiscale["datasets"][0], len(shape)), _scale(multiscale, len(shape))) if t]
    scale = [1.0] * len(shape)
    for factors in transforms:
        scale = [s * f for s, f in zip(scale, factors)]
    spacing = {a: s for a, s in zip(axes, scale) if a in "ZYX"} if transforms else {}
    spacing, unit = common_unit(spacing, units)
    channels = (ome.get("omero") or {}).get("channels") or []
    names = [c.get("label") for c in channels] if channels else None
    return Image(
        levels, axes, spacing=fit_spacing(spacing, axes), unit=unit, channel_names=fit_channel_names(names, axes, shape),
        path=path, source=ZarrSource(path, paths, levels[0], axes),
    )  # fmt: skip


def _scale(node: dict, ndim: int) -> list[float] | None:
    """The "scale" coordinate transformation of a dataset or multiscale, None when it has none."""
    for transform in node.get("coordinateTransformations") or []:
        if transform.get("type") == "scale" and len(transform.get("scale", [])) == ndim:
            return [float(s) for s in transform["scale"]]
    return None
