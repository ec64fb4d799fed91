"""Plots of object tables: histograms, scatter plots and label images coloured by a measurement.

Each function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``. Without ``ax`` a new figure is made with matplotlib's object API
(not pyplot), so plotting works headless and leaves no open pyplot figures; in
Jupyter the returned figure displays itself (once). Pass ``ax`` to draw into your own axes.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..errors import InvalidImageError, InvalidTableError
from .summary import STATISTICS, check_columns, split_unit

DISPLAY_SIZE = 2048  # label images larger than this (either side) are subsampled for display


def column_label(column: str, unit: str | None = None) -> str:
    """A column name made readable for an axis: ``"area_um2"`` -> ``"area (µm²)"``.

    Underscores become spaces and the unit goes in parentheses (``"centroid_y_px"`` ->
    ``"centroid y (px)"``, ``"mean_intensity_DNA"`` -> ``"mean intensity DNA"``,
    ``"area_um2_mean"`` -> ``"area mean (µm²)"``). ``unit``: the column's unit symbol
    when known (``table.attrs["units"]``), ``""`` for none; else it is read from the name.
    """
    column = str(column)
    stat = re.fullmatch(r"(?P<base>.+)_(?P<stat>" + "|".join(STATISTICS) + ")", column)
    if stat and split_unit(stat["base"])[1]:  # a summary column: <column with unit>_<statistic>
        name, found = split_unit(stat["base"])
        name = f"{name}_{stat['stat']}"
    else:
        name, found = split_unit(column)
    if unit is not None:
        name = name if (unit and found) else column
        found = unit or None
    name = name.replace("_", " ")
    return f"{name} ({found})" if found else name


def _label(table: pd.DataFrame, column: str) -> str:
    """``column_label`` with the unit the table records for the column, if it does."""
    units = table.attrs.get("units")
    return column_label(column, units.get(column) if isinstance(units, dict) else None)


class PlotFigure(Figure):
    """A matplotlib figure that displays itself in Jupyter, with or without pyplot."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def _axes(ax):
    """(figure, axes): ``ax`` and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    figure = PlotFigure(figsize=(5, 4), layout="constrained")
    return figure, figure.add_subplot()


def _groups(table: pd.DataFrame, by):
    """(name, rows) per value of column ``by`` (sorted; missing values last), or one unnamed group."""
    if by is None:
        return [(None, table)]
    check_columns(table, by, what="group column")
    return [(key, rows) for key, rows in table.groupby(by, dropna=False, observed=True, sort=True)]


def histogram(table: pd.DataFrame, column: str, *, by=None, bins=30, ax=None):
    """Histogram of one measurement, optionally one overlaid histogram per group.

    Parameters
    ----------
    table : DataFrame
        One row per object.
    column : str
        A numeric column, e.g. ``"area_um2"``; missing and infinite values are left out.
    by : str, optional
        A column whose values split the objects into groups, drawn as overlaid,
        semi-transparent histograms with a legend. All groups share the same bins.
    bins : int, sequence or str
        Number of bins, bin edges, or a rule understood by :func:`numpy.histogram_bin_edges`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Bars in ``ax.containers`` (one container per group); x axis labelled with the
        column and its unit (``"area (µm²)"``), y axis ``"objects"``.

    Raises
    ------
    InvalidTableError
        ``column`` or ``by`` is not in the table, or ``column`` is not numeric.
    """
    check_columns(table, column, numeric=True)
    values = table[column].to_numpy(dtype=float)
    edges = np.histogram_bin_edges(values[np.isfinite(values)], bins=bins)
    figure, ax = _axes(ax)
    for key, rows in _groups(table, by):
        data = rows[column].to_numpy(dtype=float)
        data = data[np.isfinite(data)]
        if by is None:
            ax.hist(data, bins=edges)
        else:
            ax.hist(data, bins=edges, alpha=0.5, label=str(key))
    if by is not None:
        ax.legend(title=_label(table, by))
    ax.set_xlabel(_label(table, column))
    ax.set_ylabel("objects")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def scatter(table: pd.DataFrame, x: str, y: str, *, color=None, cmap="viridis", ax=None):
    """Scatter plot of two measurements, one point per object.

    Parameters
    ----------
    table : DataFrame
        One row per object.
    x, y : str
        Numeric columns for the horizontal and vertical axis. Objects missing
        either value are left out.
    color : str, optional
        A column to colour the points by: numeric columns through ``cmap`` with a
        colourbar labelled with the column; other columns (text, categories,
        booleans) one colour per value with a legend.
    cmap : str or Colormap
        Colour map for a numeric ``color``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        Points in ``ax.collections`` (one collection, or one per category), axes
        labelled with the columns and their units.

    Raises
    ------
    InvalidTableError
        A column is not in the table, or ``x`` or ``y`` is not numeric.
    """
    check_columns(table, [x, y], numeric=True)
    if color is not None:
        check_columns(table, color, what="colour column")
    rows = table[np.isfinite(table[x].to_numpy(dtype=float)) & np.isfinite(table[y].to_numpy(dtype=float))]
    figure, ax = _axes(ax)
    if color is None:
        ax.scatter(rows[x], rows[y], s=12)
    elif pd.api.types.is_numeric_dtype(rows[color]) and not pd.api.types.is_bool_dtype(rows[color]):
        points = ax.scatter(rows[x], rows[y], c=rows[color].to_numpy(dtype=float), cmap=cmap, s=12)
        figure.colorbar(points, ax=ax, label=_label(table, color))
    else:
        for key, group in _groups(rows, color):
            ax.scatter(group[x], group[y], s=12, label=str(key))
        ax.legend(title=_label(table, color))
    ax.set_xlabel(_label(table, x))
    ax.set_ylabel(_label(table, y))
    return figure


def label_overlay(labels, table: pd.DataFrame, column: str, *, image=None, cmap="viridis", alpha=None,
                  max_size: int = DISPLAY_SIZE, ax=None):  # fmt: skip
    """A label image with each object filled in the colour of one of its measurements.

    Parameters
    ----------
    labels : (H, W) integer array-like
        numpy, zarr, dask, a :class:`samkit.LabelImage` or a :class:`samkit.Image`;
        0 is background. For 3D labels pass one plane (``labels[z]``).
    table : DataFrame
        One row per object with a ``label`` column (each id once) and ``column``.
    column : str
        Numeric column giving each object's colour.
    image : (H, W[, C]) array-like, optional
        Image to show under the objects: RGB(A) in colour, else its first channel in grey.
    cmap : str or Colormap
        Colour map of the values; the colourbar is labelled with the column and its unit.
    alpha : float, optional
        Opacity of the objects: default 1 without ``image``, 0.6 with it.
    max_size : int
        Images with a side longer than this are shown subsampled (every n-th
        pixel; labels are never blended), at about this size. A :class:`samkit.Image`
        with a pyramid (OME-Zarr, pyramidal TIFF) is read from its smallest level that
        is large enough.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; default a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The objects are the last image of ``ax.images``: a masked array of each
        displayed pixel's value, masked (transparent) on background, on objects the
        table does not list and where the value is missing. Axes are in pixels of
        ``labels`` at full resolution.

    Raises
    ------
    InvalidTableError
        ``label`` or ``column`` is missing, ``column`` is not numeric, or labels repeat.
    InvalidImageError
        ``labels`` is not 2D integer, or ``image`` has another size.
    """
    check_columns(table, ["label", column], numeric=True)
    ids = table["label"].to_numpy()
    if len(np.unique(ids)) != len(ids):
        raise InvalidTableError(
            "the table lists some labels more than once (several images?); pass the rows of one label image"
        )
    labels = getattr(labels, "array", labels)  # a LabelImage: read its zarr array
    shape = tuple(int(n) for n in labels.shape)
    if len(shape) != 2:
        raise InvalidImageError(f"labels have shape {shape}; label_overlay draws 2D labels, pass one plane (labels[z])")
    if not np.issubdtype(np.dtype(labels.dtype), np.integer):
        raise InvalidImageError(f"labels must be integers, not {labels.dtype}")
    level, factor = _display_level(labels, shape, max_size)
    step = max(1, math.ceil(max(level.shape) / max_size))
    shown = np.asarray(level[::step, ::step])
    step *= factor  # full-resolution pixels per displayed pixel

    # one value per distinct id on screen: works for any id range, missing ids -> NaN
    ids, inverse = np.unique(shown, return_inverse=True)
    lookup = pd.Series(table[column].to_numpy(dtype=float), index=table["label"].to_numpy())
    per_id = lookup.reindex(ids).to_numpy(dtype=float, copy=True)
    per_id[ids == 0] = np.nan
    values = np.ma.masked_invalid(per_id[inverse.reshape(shown.shape)])

    figure, ax = _axes(ax)
    extent = (-0.5, shown.shape[1] * step - 0.5, shown.shape[0] * step - 0.5, -0.5)
    if image is not None:
        _show_image(ax, image, shape, step, extent)
    colours = _colormap(cmap).with_extremes(bad=(0, 0, 0, 0))  # masked pixels: transparent
    finite = table[column].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite)]
    low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    objects = ax.imshow(
        values, cmap=colours, vmin=low, vmax=high, interpolation="nearest", extent=extent,
        alpha=(0.6 if image is not None else 1.0) if alpha is None else alpha,
    )  # fmt: skip
    figure.colorbar(objects, ax=ax, label=_label(table, column))
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    return figure


def _display_level(labels, shape, max_size: int):
    """(array, factor): the smallest pyramid level of a :class:`samkit.Image` that still has
    ``max_size`` pixels along its longest side (``labels`` itself otherwise), and its reduction."""
    chosen, factor = labels, 1
    for level in (getattr(labels, "levels", None) or [])[1:]:
        reduction = round(shape[0] / level.shape[0])
        plain = tuple(level.shape) == tuple(-(-n // reduction) for n in shape)  # every n-th pixel
        if max(level.shape) < min(max_size, max(shape)) or not plain:
            break
        chosen, factor = level, reduction
    return chosen, factor


def _colormap(cmap):
    import matplotlib

    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


def _show_image(ax, image, shape, step: int, extent) -> None:
    """Draw ``image`` (RGB(A), else grey), subsampled like the labels, under them."""
    if tuple(image.shape[:2]) != shape or len(image.shape) not in (2, 3):
        expected = f"{shape} or {shape + ('C',)}"
        raise InvalidImageError(f"image has shape {tuple(image.shape)}; expected {expected}, like the labels")
    data = np.asarray(image[::step, ::step])
    if data.ndim == 3 and data.shape[2] not in (3, 4):
        data = data[..., 0]  # not RGB(A): the first channel, in grey
    if data.ndim == 2:
        ax.imshow(data, cmap="gray", interpolation="nearest", extent=extent)
        return
    if data.dtype != np.uint8:  # stretch each channel to [0, 1] between its 0.5 and 99.5 percentiles
        data = data.astype(float)
        low = np.nanpercentile(data, 0.5, axis=(0, 1))
        high = np.nanpercentile(data, 99.5, axis=(0, 1))
        data = np.clip((data - low) / np.where(high > low, high - low, 1), 0, 1)
    ax.imshow(data, interpolation="nearest", extent=extent)
