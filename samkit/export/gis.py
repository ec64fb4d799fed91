"""Objects as GIS vector data: GeoJSON and GeoPackage (geopandas + pyogrio), and back.

With the georeferencing of the image (:class:`~samkit.export.Georef`, e.g. read from
its GeoTIFF) the shapes are written in the image's CRS and land where the image lies in
QGIS or ArcGIS; areas and perimeters are in the CRS's units (``area_m2``,
``perimeter_m`` for a metric CRS). Without it, coordinates are pixel edges, x = column
and y = row (y down), with no CRS (``area_px2``, ``perimeter_px``): QuPath reads such
GeoJSON in place over the image.

GeoJSON is written in the image's CRS with GDAL's ``crs`` member (RFC 7946 wants WGS 84
longitude/latitude; QGIS and GDAL read the ``crs`` member; reproject with geopandas if a
tool insists on RFC 7946).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from .. import _durable
from ..errors import InvalidImageError
from ..labels import LabelImage
from .georef import as_georef, check_crs
from .objects import Objects, gather, output_path, require, temporary_beside
from .polygons import _require_2d, mask_geometry, to_labels

SUFFIXES = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}


def to_geodataframe(labels, *, georef=None, classes=None, scores=None):
    """One row per object: ``id``, ``class``, ``score``, area, perimeter and the geometry.

    Parameters
    ----------
    labels : LabelImage, (H, W) integer array or Objects
    georef : Georef or path of a GeoTIFF, optional
        World coordinates and CRS (see the module docstring); else pixel edges.
    classes, scores : dict of int, optional
        Class name and score per object id (default: the label image's).

    Returns
    -------
    geopandas.GeoDataFrame
        ``crs`` the image's (None without ``georef``); ``score`` is NaN for objects
        without one.
    """
    geopandas = require("geopandas", "gis")
    objects = gather(labels, classes, scores)
    _require_2d(objects.shape)
    georef = as_georef(georef)
    unit = georef.unit if georef else "px"
    rows = {"id": [], "class": [], "score": [], "geometry": []}
    for label, box, crop in objects.crops():
        rows["id"].append(label)
        rows["class"].append(objects.class_of(label))
        rows["score"].append(objects.scores.get(label, np.nan))
        rows["geometry"].append(mask_geometry(crop, (box[0].start, box[1].start), georef))
    frame = geopandas.GeoDataFrame(
        {k: rows[k] for k in ("id", "class", "score")}, geometry=geopandas.GeoSeries(rows["geometry"], dtype="geometry"),
        crs=georef.crs if georef else None,
    )  # fmt: skip
    frame = frame.astype({"id": "int64", "class": "str", "score": "float64"})
    frame.insert(3, f"area_{unit}2", frame.geometry.area.astype(float))
    frame.insert(4, f"perimeter_{unit}", frame.geometry.length.astype(float))
    return frame


def write_vector(labels, path, *, georef=None, classes=None, scores=None, layer: str = "objects",
                 overwrite: bool = False) -> Path:  # fmt: skip
    """Write the objects as GeoJSON (``.geojson``) or GeoPackage (``.gpkg``), one feature each.

    Parameters
    ----------
    labels : LabelImage, (H, W) integer array or Objects
    path : str or Path
    georef, classes, scores
        As for :func:`to_geodataframe`.
    layer : str
        The GeoPackage layer name.
    overwrite : bool
        Replace an existing file; by default that is an error.

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = output_path(path, tuple(SUFFIXES), overwrite)
    frame = to_geodataframe(labels, georef=georef, classes=classes, scores=scores)
    tmp = temporary_beside(path)
    try:
        options = {"layer": layer} if SUFFIXES[path.suffix.lower()] == "GPKG" else {}
        with warnings.catch_warnings():  # pyogrio warns of a missing CRS: pixel coordinates have none
            warnings.simplefilter("ignore", UserWarning)
            frame.to_file(tmp, driver=SUFFIXES[path.suffix.lower()], engine="pyogrio", geometry_type="Unknown",
                          **options)  # fmt: skip
        _durable.rename(tmp, path)
    finally:
        if tmp.exists():
            os.remove(tmp)
    return path


def read_vector(path, *, georef=None, shape=None, layer=None, reproject: bool = True) -> Objects:
    """Polygons of a GeoJSON or GeoPackage file filled into a label image.

    Parameters
    ----------
    path : str or Path
    georef : Georef or path of a GeoTIFF, optional
        The image the shapes belong to; shapes in another CRS are reprojected to it.
        Without it, coordinates are pixel edges (x = column, y = row).
    shape : (H, W), optional
        The label image's size (default: ``georef``'s image size).
    layer : str, optional
        GeoPackage layer (default: the first).
    reproject : bool
        False refuses a file in another CRS than ``georef``'s instead.

    Returns
    -------
    Objects
        A :class:`samkit.LabelImage` (ids from an ``id`` column, else 1, 2, ... in file
        order; a pixel belongs to the polygon holding its centre, the later one where
        they overlap), with ``class`` and ``score`` columns as classes and scores.
    """
    frame = read_frame(path, georef=georef, layer=layer, reproject=reproject)
    georef = as_georef(georef)
    shape = tuple(shape) if shape is not None else (georef.shape if georef else None)
    if shape is None:
        raise InvalidImageError(f"pass shape=(H, W) to read '{path}' without a georeferenced image")
    frame = frame[frame.geometry.notna() & frame.geom_type.isin(["Polygon", "MultiPolygon"])]
    ids = frame["id"].astype(int).tolist() if "id" in frame else list(range(1, len(frame) + 1))
    if len(set(ids)) != len(ids) or any(i <= 0 for i in ids):
        ids = list(range(1, len(frame) + 1))
    array = to_labels(dict(zip(ids, frame.geometry)), shape, georef=georef)
    present = set(np.unique(array).tolist())
    classes = dict(zip(ids, frame["class"].astype(str))) if "class" in frame else {}
    scores = dict(zip(ids, frame["score"].astype(float))) if "score" in frame else {}
    return Objects(LabelImage(shape, initial=array), {k: v for k, v in classes.items() if k in present},
                   {k: v for k, v in scores.items() if k in present and np.isfinite(v)})  # fmt: skip


def read_frame(path, *, georef=None, layer=None, reproject: bool = True):
    """A vector file as a GeoDataFrame in ``georef``'s CRS (or in pixels, without one)."""
    geopandas = require("geopandas", "gis")
    pyogrio = require("pyogrio", "gis")
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        frame = geopandas.read_file(path, layer=layer, engine="pyogrio")
    except pyogrio.errors.DataSourceError as e:
        raise InvalidImageError(f"cannot read '{path}' as vector data: {e}") from e
    georef = as_georef(georef)
    crs = frame.crs
    if georef is None and crs is not None and _geojson_without_crs(path):
        crs = None  # GDAL reads GeoJSON without a crs member as WGS 84; without an image, it is pixels
    check_crs(crs, georef, f"'{path}'", reproject)
    if georef is not None and not georef.same_crs(crs):
        frame = frame.to_crs(georef.crs)
    return frame.set_crs(None, allow_override=True) if georef is None else frame


def _geojson_without_crs(path) -> bool:
    if Path(path).suffix.lower() not in (".geojson", ".json"):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            return "crs" not in json.load(f)
    except (ValueError, OSError):
        return False
