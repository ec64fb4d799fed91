"""``measure``: a label image (and an intensity image) in, a table of object statistics out."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import InvalidPropertyError
from ..labels import LabelImage
from . import inputs, tiled
from .crop import crop_names, uses_intensity
from .properties import PROPERTIES, columns, resolve, values


def measure(labels, intensity=None, *, spacing=None, unit=None, channel_names=None, properties=("basic",), extra=None):
    """Measure every object of a label image: one row per object, in physical units.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) integer array-like, LabelImage or Image
        Object ids, 0 = background: numpy, zarr, dask, a :class:`samkit.LabelImage`
        or a :class:`samkit.Image`. zarr, dask and large arrays are read block by block.
    intensity : (M, N[, C]) or (P, M, N[, C]) array-like or Image, optional
        Image to measure intensities in, channels last; an :class:`samkit.Image`
        may hold its channels on any axis (e.g. "CYX").
    spacing : float or sequence of float, optional
        Pixel size: one number (all axes) or one per axis ((dz,) dy, dx). Default: the
        spacing of ``labels`` or ``intensity`` when they are :class:`samkit.Image`,
        else 1 (pixels).
    unit : str, optional
        Unit of ``spacing`` ("um", "µm", "nm", ...); default from the image.
    channel_names : list of str, optional
        Names of the intensity channels, used in column names; default from the
        image's metadata, else "ch0", "ch1", ... (none for one channel).
    properties : str or sequence of str
        Groups ("basic", "position", "size", "shape", "intensity", "all") and single
        properties (scikit-image names such as "perimeter", "solidity",
        "intensity_median", plus "circularity" and "intensity_integrated").
    extra : callable or sequence of callable, optional
        Functions ``f(region_mask) -> float`` or ``f(region_mask, region_intensity) -> float``
        (called per channel), as scikit-image's ``extra_properties``; the column is
        named ``f.__name__`` (plus ``_<channel>``).

    Returns
    -------
    pandas.DataFrame
        One row per object, sorted by ``label`` (first column). Column names carry
        their unit: ``centroid_y_um``, ``area_um2``, ``mean_intensity_DNA``. ``attrs``
        holds "spacing", "unit", "channel_names", "shape" and "units" (column -> unit).
        A :class:`samkit.LabelImage` adds one column per object attribute (``class_name``,
        ``score``, ...; empty where an object has none).

    Raises
    ------
    samkit.errors.InvalidImageError
        Labels that are not integers or are negative, intensity of another shape, a
        spacing of the wrong length.
    samkit.errors.InvalidPropertyError
        Unknown property names, intensity properties without intensity, 2D-only ones in 3D.

    Examples
    --------
    >>> import samkit.data
    >>> from samkit import measure
    >>> image, labels = samkit.data.nuclei()
    >>> table = measure(labels, image[..., 0], spacing=0.5, unit="um")
    >>> list(table.columns[:4])
    ['label', 'centroid_y_um', 'centroid_x_um', 'bbox_y0_px']
    """
    source = inputs.Labels(labels)
    ndim = len(source.shape)
    reader = None if intensity is None else inputs.Intensity(intensity, source.shape)
    names = inputs.channel_names(channel_names, reader)
    spacing, unit = inputs.scale(spacing, unit, ndim, [source.image, getattr(reader, "image", None)])
    scaled = any(s != 1.0 for s in spacing)
    props = resolve(properties, ndim=ndim, has_intensity=reader is not None)
    functions = _check_extra(extra, reader is not None)
    if len(set(spacing)) > 1 and any(p.isotropic for p in props):
        warnings.warn(
            f"perimeter and circularity are NaN: scikit-image defines them for equal spacing only, "
            f"and spacing is {spacing}",
            UserWarning,
            stacklevel=2,
        )
    plan = tiled.Plan(spacing=spacing, stats=_stats(props), crop=crop_names(props), extra=functions)
    needed = plan.stats or any(uses_intensity(f) for f in functions)
    raw = tiled.measure_objects(source, reader if needed else None, plan)
    for name, ids in plan.failed.items():
        ids = sorted(set(ids))
        if ids:
            shown = ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")
            warnings.warn(f"{name} is NaN for {len(ids)} objects scikit-image could not measure (labels {shown})",
                          UserWarning, stacklevel=2)  # fmt: skip
    table = _table(raw, props, functions, spacing, unit, scaled, names)
    if isinstance(labels, LabelImage):
        _add_attributes(table, labels.attributes)
    table.attrs.update({
        "spacing": spacing, "unit": unit, "channel_names": [n for n in names if n] or None,
        "shape": source.shape, "units": table.attrs.pop("units"),
    })  # fmt: skip
    return table


def _stats(props) -> set[str]:
    """The intensity statistics of :func:`samkit.measurement.fast.intensity` that ``props`` need."""
    wanted = {p.name for p in props if p.intensity}
    if "intensity_integrated" in wanted:
        wanted = (wanted - {"intensity_integrated"}) | {"intensity_sum"}
    return wanted


def _check_extra(extra, has_intensity: bool) -> list:
    if extra is None:
        return []
    functions = [extra] if callable(extra) else list(extra) if isinstance(extra, (list, tuple)) else None
    if functions is None or not all(callable(f) for f in functions):
        raise InvalidPropertyError(f"extra: expected a function or a list of functions, not {extra!r}")
    names = [getattr(f, "__name__", "") for f in functions]
    for f, name in zip(functions, names):
        if not name.isidentifier() or name == "<lambda>":
            raise InvalidPropertyError(f"extra: {f!r} has no usable name; use a def with the column's name")
        if name in PROPERTIES or name == "label":
            raise InvalidPropertyError(f"extra: the function name {name!r} is a property name; rename the function")
        if uses_intensity(f) and not has_intensity:
            raise InvalidPropertyError(
                f"extra: {name}(mask, intensity) needs an intensity image: pass measure(labels, intensity, ...)"
            )
    if len(set(names)) != len(names):
        raise InvalidPropertyError(f"extra: two functions share a name in {names}")
    return functions


def _table(raw, props, functions, spacing, unit, scaled, names) -> pd.DataFrame:
    ndim = len(spacing)
    data = {"label": raw["ids"]}
    units = {"label": ""}
    for prop in props:
        pairs = columns(prop, ndim=ndim, unit=unit, scaled=scaled, channels=names)
        for (column, symbol), value in zip(pairs, values(prop, raw, spacing)):
            data[column] = value.astype(np.int64 if prop.integer else np.float64, copy=False)
            units[column] = symbol
    for f in functions:
        value = raw[f.__name__]
        pairs = [(f.__name__, value)] if value.ndim == 1 else [
            (f"{f.__name__}_{channel}" if channel else f.__name__, value[:, c]) for c, channel in enumerate(names)
        ]  # fmt: skip
        for column, column_values in pairs:
            if column in data:
                raise InvalidPropertyError(f"extra: {f.__name__}() would make a column {column!r} that exists already")
            data[column], units[column] = column_values, ""
    table = pd.DataFrame(data)
    table.attrs["units"] = units
    return table


def _add_attributes(table: pd.DataFrame, attributes: dict[int, dict]) -> None:
    """One column per attribute name of a LabelImage's objects (None / NaN where an object has none)."""
    names = list(dict.fromkeys(name for values in attributes.values() for name in values))
    for name in names:
        column = name if name not in table.columns else f"attribute_{name}"
        table[column] = [attributes.get(int(label), {}).get(name) for label in table["label"]]
        if pd.api.types.is_numeric_dtype(table[column].dropna()) and table[column].notna().any():
            table[column] = pd.to_numeric(table[column])
        table.attrs["units"][column] = ""
