"""Summaries of an object table: counts, densities and statistics per group.

Tables follow the convention of :func:`samkit.measure`: one row per object,
a ``label`` column, column names that end with their unit (``area_um2``,
``centroid_y_um``, ``perimeter_px``), and ``table.attrs`` holding ``"spacing"``,
``"unit"``, ``"channel_names"`` and, when known, ``"shape"`` (the label image's) and
``"units"`` (column -> unit symbol).
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np
import pandas as pd

from ..errors import InvalidTableError

STATISTICS = ("mean", "median", "std", "min", "max")
ID_COLUMNS = ("label",)  # identifiers, not measurements: never summarised
ID_PREFIXES = ("bbox",)  # bounding-box corners are pixel indices, not measurements

# unit suffix of a column name -> how to print it
_UNIT_SYMBOLS = {
    "px": "px", "pm": "pm", "nm": "nm", "um": "µm", "mm": "mm", "cm": "cm", "m": "m",
    "km": "km", "A": "Å", "in": "in", "ft": "ft", "unit": "unit", "rad": "rad", "deg": "°",
}  # fmt: skip
_POWERS = {"": "", "2": "²", "3": "³"}
_SUFFIX = re.compile(r"^(?P<name>.+)_(?P<unit>" + "|".join(_UNIT_SYMBOLS) + r")(?P<power>[23]?)$")


def split_unit(column: str) -> tuple[str, str | None]:
    """A column name split into its quantity and its unit.

    ``"area_um2"`` -> ``("area", "µm²")``, ``"centroid_y_px"`` -> ``("centroid_y", "px")``,
    ``"mean_intensity_DNA"`` -> ``("mean_intensity_DNA", None)``.
    """
    found = _SUFFIX.match(str(column))
    if found is None:
        return str(column), None
    unit = _UNIT_SYMBOLS[found["unit"]] + _POWERS[found["power"]]
    return found["name"], unit


def check_columns(table: pd.DataFrame, columns, *, numeric: bool = False, what: str = "column") -> list[str]:
    """``columns`` (a name or a list of names) as a list, each present in ``table`` (and numeric).

    Raises
    ------
    InvalidTableError
        Naming the missing or non-numeric column and the columns the table has.
    """
    if not isinstance(table, pd.DataFrame):
        raise InvalidTableError(f"expected a pandas DataFrame of objects, not {type(table).__name__}")
    names = [columns] if isinstance(columns, str) or not np.iterable(columns) else list(columns)
    for name in names:
        if name not in table.columns:
            raise InvalidTableError(
                f"the table has no {what} {name!r}; its columns are: {', '.join(map(str, table.columns))}"
            )
        if numeric and not _is_numeric(table[name]):
            choices = [str(c) for c in table.columns if _is_numeric(table[c])]
            raise InvalidTableError(
                f"{what} {name!r} holds {table[name].dtype} values, not numbers; "
                f"numeric columns are: {', '.join(choices) or 'none'}"
            )
    return names


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def summarize(table: pd.DataFrame, by=None, *, area=None, columns=None) -> pd.DataFrame:
    """Count objects and summarise their measurements, overall or per group.

    Parameters
    ----------
    table : DataFrame
        One row per object, as made by :func:`samkit.measure`.
    by : str or list of str, optional
        Column(s) whose values define groups, e.g. ``"class"`` or ``["image", "class"]``.
        Without it the whole table is one group. Rows whose group value is missing
        (NaN) form their own group.
    area : float or mapping, optional
        Size of the region the objects were found in, in the table's unit squared
        (cubed for 3D tables, i.e. a volume): one number for every group, or a mapping
        (dict or Series) from group value (a tuple for several ``by`` columns) to its
        area. Without it the area is ``prod(table.attrs["shape"])`` pixels times the
        pixel size from ``table.attrs["spacing"]`` when the table records them, and
        no density is given otherwise.
    columns : list of str, optional
        The columns to summarise; default every numeric column except ``label``,
        ``bbox*`` and the ``by`` columns (boolean columns are skipped).

    Returns
    -------
    DataFrame
        One row per group (sorted by group value; one row in all without ``by``),
        flat column names:

        * the ``by`` columns, then ``count`` (objects in the group);
        * ``region_area_<unit>2`` and ``density_per_<unit>2`` (objects per unit²; for 3D
          tables ``region_volume_<unit>3`` and ``density_per_<unit>3``) when the area is known.
          ``<unit>`` is the table's unit as spelt in its column names (``um``), ``px`` without one;
        * ``<column>_mean``, ``_median``, ``_std`` (sample standard deviation, ddof=1),
          ``_min`` and ``_max`` of each summarised column, e.g. ``area_um2_mean``.

        ``attrs`` are copied from ``table``; when it has ``attrs["units"]`` (column ->
        unit, as :func:`~samkit.measure` records them), that is replaced by
        the units of the summary's columns (``"1/µm²"`` for the density).

    Raises
    ------
    InvalidTableError
        A ``by`` or ``columns`` name is not in the table, a summarised column is not
        numeric, or ``area`` lacks a group.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"label": [1, 2, 3], "area_um2": [10.0, 20.0, 60.0], "class": ["a", "a", "b"]})
    >>> summarize(table, "class", area=100.0)[["class", "count", "density_per_um2", "area_um2_mean"]]
      class  count  density_per_um2  area_um2_mean
    0     a      2             0.02           15.0
    1     b      1             0.01           60.0
    """
    keys = [] if by is None else check_columns(table, by, what="group column")
    if columns is None:
        skip = set(keys) | set(ID_COLUMNS)
        columns = [
            c for c in table.columns
            if c not in skip and not str(c).startswith(ID_PREFIXES) and _is_numeric(table[c])
        ]  # fmt: skip
    else:
        columns = check_columns(table, columns, numeric=True)
    ndim = _table_ndim(table)
    if area is None:
        area = _image_area(table.attrs, ndim)

    if keys:
        groups = table.groupby(keys if len(keys) > 1 else keys[0], dropna=False, observed=True, sort=True)
        counts = groups.size().rename("count")
        stats = groups[columns].agg(list(STATISTICS)) if columns else pd.DataFrame(index=counts.index)
    else:
        counts = pd.Series([len(table)], name="count")
        stats = table[columns].agg(list(STATISTICS)).unstack().to_frame().T if columns else pd.DataFrame(index=[0])
    stats.columns = [f"{column}_{stat}" for column, stat in stats.columns] if columns else []
    out = pd.concat([counts, stats], axis=1)

    units = dict(table.attrs.get("units") or {})  # column -> unit symbol, as measure() records them
    summary_units = {key: units.get(key, "") for key in keys} | {"count": ""}
    if area is not None:
        areas = _group_areas(area, out.index if keys else None)
        token, symbol = _unit_token(table), _unit_symbol(table) + _POWERS[str(ndim)]
        region = f"region_{'area' if ndim == 2 else 'volume'}_{token}{ndim}"
        density = f"density_per_{token}{ndim}"
        out.insert(1, region, areas)
        out.insert(2, density, out["count"] / areas)
        summary_units |= {region: symbol, density: f"1/{symbol}"}
    summary_units |= {f"{c}_{stat}": units.get(c, "") for c in columns for stat in STATISTICS}
    out = out.reset_index() if keys else out.reset_index(drop=True)
    out.attrs = dict(table.attrs)
    if units:
        out.attrs["units"] = summary_units
    return out


def _group_areas(area, index) -> np.ndarray:
    """One area per row of the summary: ``area`` repeated, or looked up per group."""
    if isinstance(area, numbers.Real) and not isinstance(area, bool):
        return np.full(1 if index is None else len(index), _positive_area(area, "area"))
    if index is None:
        raise InvalidTableError(f"area per group was given ({type(area).__name__}) but no `by` column to group by")
    lookup = dict(area.items()) if hasattr(area, "items") else None
    if lookup is None:
        raise InvalidTableError(f"area must be a number or a mapping from group to area, not {type(area).__name__}")
    missing = [key for key in index if key not in lookup]
    if missing:
        raise InvalidTableError(f"area has no entry for the group(s) {missing[:5]}; it has {list(lookup)[:10]}")
    return np.array([_positive_area(lookup[key], f"area of group {key!r}") for key in index])


def _positive_area(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidTableError(f"{what} must be a number, not {value!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InvalidTableError(f"{what} must be a positive finite number, not {value!r}")
    return value


def _table_ndim(table: pd.DataFrame) -> int:
    """2 or 3: from ``attrs["shape"]``, else 3 when the table has z or volume columns."""
    shape = table.attrs.get("shape")
    if shape is not None and len(shape) in (2, 3):
        return len(shape)
    names = [split_unit(c)[0] for c in table.columns]
    return 3 if any(n.startswith("volume") or n.endswith("_z") or "_z_" in n for n in names) else 2


def _spacing_values(spacing, ndim: int) -> list[float] | None:
    """Pixel size along the last ``ndim`` axes from a dict ({"Y": .., "X": ..}), sequence or number."""
    if spacing is None:
        return None
    if isinstance(spacing, dict):
        upper = {str(k).upper(): v for k, v in spacing.items()}
        values = [upper[a] for a in "ZYX"[-ndim:] if a in upper]
    elif isinstance(spacing, numbers.Real):
        values = [spacing] * 2
    else:
        values = list(spacing)
    if len(values) != ndim:
        return None
    return [float(v) for v in values]


def _image_area(attrs: dict, ndim: int) -> float | None:
    """Area (volume) of the label image from ``attrs["shape"]`` and ``attrs["spacing"]``, or None."""
    shape = attrs.get("shape")
    if shape is None or len(shape) != ndim:
        return None
    size = float(np.prod([int(n) for n in shape]))
    if attrs.get("spacing") is None:
        return size
    spacing = _spacing_values(attrs.get("spacing"), ndim)
    return None if spacing is None else size * float(np.prod(spacing))


def _token(unit: str) -> str:
    """A unit as spelt in column names: "µm" -> "um", "Å" -> "A"."""
    text = str(unit).replace("µ", "u").replace("μ", "u").replace("Å", "A")
    return re.sub(r"[^A-Za-z0-9]", "", text) or "unit"


def _unit_symbol(table: pd.DataFrame) -> str:
    """The table's length unit as printed: "µm", "px" (no pixel size) or "unit" (a pixel size without unit)."""
    token = _unit_token(table)
    if table.attrs.get("unit") and token not in ("px", "unit"):
        return str(table.attrs["unit"])
    return _UNIT_SYMBOLS.get(token, token)


def _unit_token(table: pd.DataFrame) -> str:
    """The table's length unit as spelt in its column names, from attrs, else from a column name."""
    attrs = table.attrs
    if "spacing" in attrs and attrs["spacing"] is None:
        return "px"  # measured without a pixel size
    if attrs.get("unit"):
        return _token(attrs["unit"])
    for column in table.columns:
        found = _SUFFIX.match(str(column))
        if found and found["unit"] not in ("rad", "deg"):
            return found["unit"]
    return "px"
