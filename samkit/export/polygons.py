"""Objects as polygons with holes, traced along pixel edges, and polygons back to labels.

Outlines follow pixel edges (GDAL's polygonize, through ``rasterio.features.shapes``), so
filling them again (a pixel is in when its centre is) gives back the very same pixels.
Pixel (y, x) covers [y, y + 1) x [x, x + 1): the outline of a single pixel at (0, 0)
is the square with corners (0, 0), (0, 1), (1, 1), (1, 0). Objects made of parts that
touch only at corners become several polygons (4-connectivity, as in GDAL).

Inside samkit coordinates are (y, x) (or world (Y, X)); shapely geometries, like the
files they are written to, are (x, y).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidImageError
from .georef import Georef, as_georef
from .objects import gather, require


def geometries(labels, *, georef=None) -> dict:
    """Each object of a 2D label image as a shapely (Multi)Polygon in (x, y) order.

    Parameters
    ----------
    labels : LabelImage, (H, W) integer array or Objects
    georef : Georef or path of a GeoTIFF, optional
        Give world coordinates in its CRS; without it, pixel-edge (x = column, y = row).

    Returns
    -------
    dict of int to shapely geometry
        By object id, sorted.
    """
    objects = gather(labels)
    _require_2d(objects.shape)
    georef = as_georef(georef)
    return {label: mask_geometry(crop, (box[0].start, box[1].start), georef) for label, box, crop in objects.crops()}


def polygons(labels, *, georef=None) -> dict[int, list[list[np.ndarray]]]:
    """Each object's outline with holes, as arrays of (y, x) vertices.

    Parameters
    ----------
    labels : LabelImage, (H, W) integer array or Objects
    georef : Georef or path of a GeoTIFF, optional
        Give world (Y, X) (northing, easting for a north-up projected CRS) instead of
        pixel-edge (y, x).

    Returns
    -------
    dict of int to list of polygons
        By object id; each polygon is a list of closed rings, each a (N, 2) float
        array (first vertex repeated last): the outer ring first, then its holes.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((4, 4), np.uint8); labels[1:3, 1:3] = 7
    >>> polygons(labels)[7][0][0].tolist()
    [[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0], [1.0, 1.0]]
    """
    return {label: [_rings(p) for p in parts(geometry)] for label, geometry in geometries(labels, georef=georef).items()}


def to_labels(polys: dict, shape: tuple[int, int], *, georef=None, dtype=np.uint32) -> np.ndarray:
    """Fill polygons (as :func:`polygons` or :func:`geometries` give them) into a label image.

    Parameters
    ----------
    polys : dict of int to list of polygons, or to shapely geometries
    shape : (H, W)
    georef : Georef or path of a GeoTIFF, optional
        The coordinates are world coordinates in its CRS.

    Returns
    -------
    (H, W) array
        Each pixel whose centre lies inside an object's polygon gets its id; where
        objects overlap, the later id wins.
    """
    features = require("rasterio.features", "gis")
    shapely = require("shapely", "gis")
    georef = as_georef(georef)
    shapes = []
    for label, value in polys.items():
        if isinstance(value, shapely.Geometry):
            geometry = value
        else:
            geometry = shapely.MultiPolygon([shapely.Polygon(r[0][:, ::-1], [h[:, ::-1] for h in r[1:]]) for r in value])
        if not geometry.is_empty:
            shapes.append((geometry, int(label)))
    out = np.zeros(shape, dtype)
    if shapes:
        transform = georef.affine if georef else features.Affine.identity()
        features.rasterize(shapes, out_shape=shape, transform=transform, out=out, all_touched=False)
    return out


def mask_geometry(crop: np.ndarray, offset=(0, 0), georef: Georef | None = None):
    """The pixels of a boolean ``crop`` lying at ``offset`` (y, x), as one shapely (Multi)Polygon."""
    features = require("rasterio.features", "gis")
    shapely = require("shapely", "gis")
    from affine import Affine

    a, b, c, d, e, f = georef.transform if georef is not None else (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    oy, ox = offset  # the crop's corner, then the geotransform
    transform = Affine(a, b, a * ox + b * oy + c, d, e, d * ox + e * oy + f)
    crop = np.ascontiguousarray(crop, np.uint8)
    found = [shapely.geometry.shape(g) for g, _ in features.shapes(crop, mask=crop.astype(bool), transform=transform)]
    return found[0] if len(found) == 1 else shapely.MultiPolygon(found)


def parts(geometry) -> list:
    """The polygons of a Polygon or MultiPolygon."""
    return list(getattr(geometry, "geoms", [geometry]))


def _rings(polygon) -> list[np.ndarray]:
    return [np.asarray(polygon.exterior.coords)[:, ::-1]] + [np.asarray(r.coords)[:, ::-1] for r in polygon.interiors]


def _require_2d(shape) -> None:
    if len(shape) != 2:
        raise InvalidImageError(f"polygons need a 2D (H, W) label image, not shape {shape}; export one plane at a time")
