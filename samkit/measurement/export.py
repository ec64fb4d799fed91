"""Writing object tables (CSV, Parquet) and label images (OME-TIFF, OME-Zarr) with their table.

Layouts
-------
``export_table(table, "objects.csv")``
    ``objects.csv`` (no index column unless the index is not a plain 0..n-1 range)
    and the sidecar ``objects.json``: ``{"samkit": "table", "attrs": ..., "dtypes": ...}``
    (table attributes and column dtypes, so :func:`read_table` restores both).
``export_table(table, "objects.parquet")``
    One Parquet file (pyarrow); pandas keeps ``attrs`` in its metadata.
``save_labels(labels, "nuclei.tif", table=table)``
    ``nuclei.tif``: OME-TIFF, zlib-compressed 256 x 256 tiles, pixel size as
    ``PhysicalSizeX/Y(/Z)`` and as resolution tags; ``nuclei.csv`` + ``nuclei.json``.
``save_labels(labels, "nuclei.zarr", table=table, name="nuclei")``
    OME-Zarr 0.5 (zarr v3)::

        nuclei.zarr/                 group {"ome": {"version": "0.5"}}
          labels/                    group {"ome": {"version": "0.5", "labels": ["nuclei"]}}
            nuclei/                  multiscales (scale = pixel size), "image-label" {"source": {"image": "../../"}}
              0, 1, ...              levels: full size, then every 2nd pixel, until <= 1024 px
              table.csv, table.json  the table (as export_table writes it)

Every writer refuses an existing output unless ``overwrite=True``, and writes to a
temporary name beside it that replaces the old output only once complete: a failed
or interrupted save never destroys saved work.
"""

from __future__ import annotations

import json
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _durable
from .._json import jsonable
from ..errors import InvalidImageError, InvalidTableError
from ..io.metadata import check_spacing, normalise_unit

TABLE_SUFFIXES = (".csv", ".parquet")
LABEL_SUFFIXES = (".tif", ".tiff", ".zarr")
TILE = 256  # TIFF tile side
ZARR_CHUNK = 512  # OME-Zarr chunk side (Y, X)
PYRAMID_MIN = 1024  # OME-Zarr levels halve until both sides are at most this
_NGFF_UNITS = {
    "pm": "picometer", "Å": "angstrom", "nm": "nanometer", "µm": "micrometer", "mm": "millimeter",
    "cm": "centimeter", "m": "meter", "km": "kilometer", "in": "inch", "ft": "foot",
}  # fmt: skip
_CM = {"pm": 1e-10, "Å": 1e-8, "nm": 1e-7, "µm": 1e-4, "mm": 0.1, "cm": 1.0, "m": 100.0, "km": 1e5}


# -- tables -------------------------------------------------------------------------------


def export_table(table: pd.DataFrame, path, *, overwrite: bool = False) -> Path:
    """Write an object table to CSV or Parquet, keeping its ``attrs``.

    Parameters
    ----------
    table : DataFrame
        One row per object, e.g. from :func:`samkit.measure`.
    path : str or Path
        ``.csv``: the table plus a JSON sidecar ``<stem>.json`` holding ``attrs``
        (spacing, unit, channel names, ...) and column dtypes. ``.parquet``: one file
        holding both (needs pyarrow: ``pip install samkit[parquet]``).
    overwrite : bool
        Replace existing files; by default an existing file is an error.

    Returns
    -------
    Path
        The table file written.

    Raises
    ------
    InvalidTableError
        ``path`` has another suffix.
    FileExistsError
        The file (or the CSV's sidecar) exists and ``overwrite`` is False.
    ImportError
        Parquet without pyarrow.

    Notes
    -----
    Read back with :func:`read_table` (restores ``attrs`` and dtypes; tuples in
    ``attrs`` come back as lists, as JSON has no tuples), or with any CSV or Parquet
    reader. Floats are written with full precision.
    """
    if not isinstance(table, pd.DataFrame):
        raise InvalidTableError(f"expected a pandas DataFrame, not {type(table).__name__}")
    path = Path(path)
    suffix = _suffix(path, TABLE_SUFFIXES, "a table", InvalidTableError)
    outputs = [path] + ([sidecar(path)] if suffix == ".csv" else [])
    if suffix == ".parquet":
        _need_pyarrow()
    _check_free(outputs, overwrite)
    with ExitStack() as stack:
        targets = [stack.enter_context(_replacing(p, overwrite)) for p in outputs]
        _write_table(table, targets[0], suffix, targets[1:])
    return path


def read_table(path) -> pd.DataFrame:
    """Read a table written by :func:`export_table`, with its ``attrs`` and column dtypes.

    A CSV without sidecar is read as it is (empty ``attrs``).
    """
    path = Path(path)
    suffix = _suffix(path, TABLE_SUFFIXES, "a table", InvalidTableError)
    if suffix == ".parquet":
        _need_pyarrow()
        return pd.read_parquet(path)
    meta = json.loads(sidecar(path).read_text(encoding="utf-8")) if sidecar(path).is_file() else {}
    index = meta.get("index") or None
    table = pd.read_csv(path, index_col=index)
    for column, dtype in (meta.get("dtypes") or {}).items():
        if column in table.columns and str(table[column].dtype) != dtype:
            try:
                table[column] = table[column].astype(dtype)
            except (TypeError, ValueError):
                pass  # keep what the CSV gave
    table.attrs = meta.get("attrs") or {}
    return table


def sidecar(path) -> Path:
    """The JSON file beside a CSV table: ``objects.csv`` -> ``objects.json``."""
    return Path(path).with_suffix(".json")


def _write_table(table: pd.DataFrame, target: Path, suffix: str, sidecars) -> None:
    attrs = jsonable(dict(table.attrs))
    if suffix == ".parquet":
        table = table.copy(deep=False)
        table.attrs = attrs
        table.to_parquet(target, engine="pyarrow")
        return
    plain_index = isinstance(table.index, pd.RangeIndex) and table.index.start == 0 and table.index.step == 1
    index = [] if plain_index else [n if n is not None else f"level_{i}" for i, n in enumerate(table.index.names)]
    if index:
        table = table.rename_axis(index)
    table.to_csv(target, index=bool(index), encoding="utf-8")
    dtypes = {str(c): str(t) for c, t in table.dtypes.items()}
    meta = {"samkit": "table", "attrs": attrs, "dtypes": dtypes, "index": index}
    sidecars[0].write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")


def _need_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("Parquet files need pyarrow: pip install samkit[parquet] (or pip install pyarrow)") from None


def save_labels(labels, path, *, table=None, spacing=None, unit=None, name: str = "objects",
                overwrite: bool = False) -> Path:  # fmt: skip
    """Write a label image, with its pixel size and optionally its table, as OME-TIFF or OME-Zarr.

    Parameters
    ----------
    labels : (H, W) or (Z, H, W) integer array-like
        numpy, zarr, dask, a :class:`samkit.LabelImage` or a :class:`samkit.Image`.
        Read and written tile by tile (chunk by chunk), never whole.
    path : str or Path
        ``.tif`` / ``.tiff``: an OME-TIFF, table beside it as ``<stem>.csv``.
        ``.zarr``: an OME-Zarr 0.5 image folder with the labels in ``labels/<name>``
        and the table in ``labels/<name>/table.csv`` (see the module docstring).
    table : DataFrame, optional
        The objects' table, written alongside with :func:`export_table`.
    spacing : float, sequence or dict, optional
        Pixel size: one number (Y and X), (Y, X) or (Z, Y, X), or ``{"Y": .., "X": ..}``.
        Default: ``table.attrs["spacing"]``, else the ``spacing`` of a :class:`samkit.Image`.
    unit : str, optional
        Unit of ``spacing`` ("um", "µm", "nm", ...); default from ``table.attrs`` or the image.
    name : str
        Name of the label image inside an OME-Zarr (``labels/<name>``).
    overwrite : bool
        Replace existing outputs; by default an existing output is an error.

    Returns
    -------
    Path
        ``path``. Open it (the ``.zarr``: its ``labels/<name>`` folder) with
        :func:`samkit.open_image` to get the labels with their pixel size.

    Raises
    ------
    InvalidImageError
        ``labels`` is not 2D/3D integer, holds ids too large for TIFF (> 2**32 - 1:
        use ``.zarr``), or ``path`` has another suffix.
    FileExistsError
        An output exists and ``overwrite`` is False (a directory that is not a zarr
        store is never replaced).
    """
    path = Path(path)
    suffix = _suffix(path, LABEL_SUFFIXES, "a label image", InvalidImageError)
    source = getattr(labels, "array", labels)  # a LabelImage: its zarr array
    shape = tuple(int(n) for n in source.shape)
    dtype = np.dtype(source.dtype)
    axes = getattr(labels, "axes", None)  # a samkit.Image knows its axes
    if len(shape) not in (2, 3) or 0 in shape or (isinstance(axes, str) and axes not in ("YX", "ZYX")):
        given = f"shape {shape}" + (f" (axes {axes})" if axes else "")
        raise InvalidImageError(f"labels have {given}; expected (H, W) or (Z, H, W)")
    if not (np.issubdtype(dtype, np.integer) or dtype == bool):
        raise InvalidImageError(f"labels must be integers, not {dtype}; convert with labels.astype(np.uint32)")
    spacing, unit = _pixel_size(labels, table, spacing, unit, len(shape))
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise InvalidImageError(f"name {name!r} must be a plain folder name, e.g. 'nuclei'")

    table_path = None
    if table is not None:
        if not isinstance(table, pd.DataFrame):
            raise InvalidTableError(f"table must be a pandas DataFrame, not {type(table).__name__}")
        table_path = path.with_suffix(".csv") if suffix != ".zarr" else None
    outputs = [path] + ([table_path, sidecar(table_path)] if table_path else [])
    _check_free(outputs, overwrite)
    with _replacing(path, overwrite) as target:
        if suffix == ".zarr":
            _write_zarr(source, shape, dtype, target, spacing, unit, name)
            if table is not None:
                export_table(table, target / "labels" / name / "table.csv")
        else:
            _write_tiff(source, shape, dtype, target, spacing, unit)
    if table_path is not None:
        export_table(table, table_path, overwrite=overwrite)
    return path


def _pixel_size(labels, table, spacing, unit, ndim: int) -> tuple[list[float] | None, str | None]:
    """(pixel size per axis of the labels, unit) from the arguments, the table or the image."""
    attrs = table.attrs if isinstance(table, pd.DataFrame) else {}
    if spacing is None:
        spacing = attrs.get("spacing")
        unit = unit if unit is not None else attrs.get("unit")
    if spacing is None and isinstance(getattr(labels, "spacing", None), dict) and labels.spacing:
        spacing = labels.spacing
        unit = unit if unit is not None else getattr(labels, "unit", None)
    unit = normalise_unit(unit)
    if spacing is None:
        return None, unit
    axes = "ZYX"[-ndim:]
    sizes = check_spacing(dict(spacing) if isinstance(spacing, dict) else spacing, axes)
    if "Y" not in sizes or "X" not in sizes:
        raise InvalidImageError(f"spacing {spacing!r} must give the pixel size along Y and X")
    values = [sizes.get(a) for a in axes]  # None: unknown (Z)
    if unit is None and all(v in (None, 1.0) for v in values):
        return None, None  # what measure() records without a pixel size: nothing to write
    return values, unit


def _blocks(shape, block):
    """Slices of the (Z,) Y, X grid of ``block``-sized pieces, row by row (C order)."""
    ranges = [range(0, n, b) for n, b in zip(shape, block)]
    for corner in np.ndindex(*[len(r) for r in ranges]):
        yield tuple(slice(r[i], min(r[i] + b, n)) for r, i, b, n in zip(ranges, corner, block, shape))


def _write_tiff(source, shape, dtype, target: Path, spacing, unit) -> None:
    import tifffile

    dtype = _tiff_dtype(source, shape, dtype)
    axes = "ZYX"[-len(shape) :]
    metadata = {"axes": axes}
    extra = {}
    if spacing is not None:
        for axis, size in zip(axes, spacing):
            if size is not None:  # an unknown Z size is left out
                metadata[f"PhysicalSize{axis}"] = size
                metadata[f"PhysicalSize{axis}Unit"] = unit or "pixel"
        if unit in _CM:  # resolution tags too, for readers that ignore OME-XML
            extra = {"resolution": (_CM[unit] / spacing[-1], _CM[unit] / spacing[-2]), "resolutionunit": "CENTIMETER"}
    tifffile.imwrite(
        target, _tiles(source, shape, dtype), shape=shape, dtype=dtype, tile=(TILE, TILE),
        compression="zlib", ome=True, metadata=metadata, **extra,
    )  # fmt: skip


def _tiles(source, shape, dtype):
    """The (TILE, TILE) tiles of each plane, row by row, as tifffile expects them (edge tiles smaller)."""
    for region in _blocks(shape, (1,) * (len(shape) - 2) + (TILE, TILE)):
        tile = np.asarray(source[region]).astype(dtype, copy=False)
        yield tile.reshape(tile.shape[-2:])


def _tiff_dtype(source, shape, dtype) -> np.dtype:
    """A dtype OME-TIFF can hold: 64-bit labels become uint32 when their ids fit (checked chunk by chunk)."""
    if dtype == bool:
        return np.dtype(np.uint8)
    if dtype.itemsize < 8:
        return dtype
    low, high = 0, 0
    for region in _blocks(shape, (1,) * (len(shape) - 2) + (4 * TILE, 4 * TILE)):
        block = np.asarray(source[region])
        low, high = min(low, int(block.min())), max(high, int(block.max()))
    if low < 0 or high > np.iinfo(np.uint32).max:
        raise InvalidImageError(
            f"labels of dtype {dtype} hold ids from {low} to {high}; OME-TIFF holds 0 .. 2**32 - 1: save as .zarr"
        )
    return np.dtype(np.uint32)


def _write_zarr(source, shape, dtype, target: Path, spacing, unit, name: str) -> None:
    import zarr

    dtype = np.dtype(np.uint8) if dtype == bool else dtype
    version = {"version": "0.5"}
    root = zarr.open_group(target, mode="w-", zarr_format=3, attributes={"ome": dict(version)})
    labels = root.create_group("labels", attributes={"ome": {**version, "labels": [name]}})
    group = labels.create_group(name)
    names = ["z", "y", "x"][-len(shape) :]
    chunks = tuple(min(n, c) for n, c in zip(shape, (1,) * (len(shape) - 2) + (ZARR_CHUNK, ZARR_CHUNK)))
    scale = [1.0 if s is None else s for s in spacing] if spacing is not None else [1.0] * len(shape)
    datasets, level, factor = [], source, 1
    while True:
        path = str(len(datasets))
        array = group.create_array(path, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, dimension_names=names)
        for region in _blocks(shape, chunks):
            array[region] = np.asarray(level[region]).astype(dtype, copy=False)
        level_scale = scale[:-2] + [s * factor for s in scale[-2:]]
        datasets.append({"path": path, "coordinateTransformations": [{"type": "scale", "scale": level_scale}]})
        if max(shape[-2:]) <= PYRAMID_MIN:
            break
        # next level: every 2nd pixel in Y and X (labels are never averaged)
        level, factor = _Every2nd(array), factor * 2
        shape = shape[:-2] + tuple((n + 1) // 2 for n in shape[-2:])
        chunks = tuple(min(n, c) for n, c in zip(shape, chunks))
    axes = [{"name": n, "type": "space"} for n in names]
    if unit:
        for axis in axes:
            axis["unit"] = _NGFF_UNITS.get(unit, unit)
    multiscale = {"name": name, "axes": axes, "datasets": datasets}
    image_label = {"source": {"image": "../../"}}  # the image group two levels up
    group.attrs.update({"ome": {**version, "multiscales": [multiscale], "image-label": image_label}})


class _Every2nd:
    """Indexing returns every 2nd pixel in Y and X of ``array`` (a view for building a pyramid level)."""

    def __init__(self, array):
        self.array = array

    def __getitem__(self, region):
        *head, ys, xs = region
        return self.array[(*head, slice(2 * ys.start, 2 * ys.stop, 2), slice(2 * xs.start, 2 * xs.stop, 2))]


# -- files --------------------------------------------------------------------------------


def _suffix(path: Path, allowed, what: str, error) -> str:
    suffix = path.suffix.lower()
    if suffix not in allowed:
        raise error(f"cannot write {what} as '{path.name}': use one of the suffixes {', '.join(allowed)}")
    return suffix


def _check_free(paths, overwrite: bool) -> None:
    """Raise before anything is written when an output exists (or cannot be replaced safely)."""
    for path in paths:
        if not (path.exists() or path.is_symlink()):
            continue
        if not overwrite:
            raise FileExistsError(f"'{path}' already exists; pass overwrite=True to replace it")
        if path.is_dir() and not _is_zarr(path):
            raise FileExistsError(f"'{path}' is a folder that is not a zarr store; samkit will not replace it")


def _is_zarr(path: Path) -> bool:
    return any((path / n).is_file() for n in ("zarr.json", ".zgroup", ".zarray"))


@contextmanager
def _replacing(path: Path, overwrite: bool):
    """Yield a temporary path beside ``path``; move it to ``path`` when the block succeeds.

    An existing ``path`` (allowed only with ``overwrite``) is moved aside first and
    deleted after the new output is in place; on failure the temporary output is removed.
    """
    tag = uuid.uuid4().hex[:8]
    temporary = path.with_name(f".{path.name}.{tag}.partial")
    try:
        yield temporary
        if path.exists() or path.is_symlink():
            if not overwrite:  # appeared while writing
                raise FileExistsError(f"'{path}' already exists; pass overwrite=True to replace it")
            old = path.with_name(f".{path.name}.{tag}.old")
            _durable.rename(path, old)
            _durable.rename(temporary, path)
            _durable.remove(old)
        else:
            _durable.rename(temporary, path)
    finally:
        _durable.remove(temporary)
