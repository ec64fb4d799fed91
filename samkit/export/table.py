"""Objects as a plain table with their outline as WKT, for spreadsheets, pandas and databases."""

from __future__ import annotations

from .georef import as_georef
from .gis import to_geodataframe


def to_table(labels, *, georef=None, classes=None, scores=None):
    """One row per object with ``id``, ``class``, ``score``, area, perimeter and ``geometry`` as WKT.

    Parameters
    ----------
    labels : LabelImage, (H, W) integer array or Objects
    georef : Georef or path of a GeoTIFF, optional
        World coordinates in its CRS; else pixel edges (x = column, y = row).
    classes, scores : dict of int, optional
        Class name and score per object id (default: the label image's).

    Returns
    -------
    pandas.DataFrame
        ``attrs`` holds ``crs`` (WKT, or None) and ``unit``; write it with
        :func:`samkit.export_table` (CSV or Parquet); ``shapely.from_wkt`` reads the
        geometry column back.
    """
    georef = as_georef(georef)
    frame = to_geodataframe(labels, georef=georef, classes=classes, scores=scores)
    table = frame.to_wkt()
    table.attrs = {"crs": georef.crs if georef else None, "unit": georef.unit if georef else "px"}
    return table
