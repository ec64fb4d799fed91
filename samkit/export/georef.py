"""Where an image's pixels lie on Earth: its CRS and affine geotransform (from a GeoTIFF).

Pixel (y, x) covers [y, y + 1) x [x, x + 1) in samkit's pixel-edge frame; the
geotransform maps a pixel corner (column, row) to world (X, Y) as GDAL and rasterio do:
``X = a * col + b * row + c``, ``Y = d * col + e * row + f`` (``e`` < 0 for north-up).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import CRSError, InvalidImageError
from .objects import require


@dataclass(frozen=True)
class Georef:
    """A CRS and the affine transform from pixel corners to world coordinates.

    Parameters
    ----------
    crs : str
        The CRS as WKT, ``"EPSG:32617"`` or anything :class:`pyproj.CRS` reads.
    transform : (a, b, c, d, e, f)
        The geotransform in rasterio / affine order (see the module docstring).
    shape : (H, W), optional
        The image's size in pixels, when known.
    """

    crs: str
    transform: tuple[float, float, float, float, float, float]
    shape: tuple[int, int] | None = None

    @classmethod
    def from_image(cls, path) -> Georef:
        """The georeferencing of a GeoTIFF (or any raster GDAL reads), via rasterio.

        Raises
        ------
        CRSError
            The file has no CRS or no geotransform.
        """
        rasterio = require("rasterio", "gis")
        try:
            with warnings.catch_warnings():  # a file without georeferencing is answered below
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(path) as source:
                    crs, transform, shape = source.crs, source.transform, source.shape
        except rasterio.errors.RasterioIOError as e:
            raise InvalidImageError(f"cannot read georeferencing from '{path}': {e}") from e
        if crs is None or transform.is_identity:
            raise CRSError(f"'{path}' has no georeferencing (CRS {crs}, transform {tuple(transform)[:6]})")
        return cls(crs.to_wkt(), tuple(float(v) for v in tuple(transform)[:6]), tuple(shape))

    @property
    def affine(self):
        """The transform as an :class:`affine.Affine` (what rasterio and shapely take)."""
        from affine import Affine

        return Affine(*self.transform)

    @property
    def pyproj_crs(self):
        return require("pyproj", "gis").CRS.from_user_input(self.crs)

    @property
    def pixel_area(self) -> float:
        """The area of one pixel in CRS units squared."""
        a, b, _, d, e, _ = self.transform
        return abs(a * e - b * d)

    @property
    def unit(self) -> str:
        """The CRS's linear unit as an abbreviation ("m", "ft", "degree", ...)."""
        info = self.pyproj_crs.axis_info
        name = info[0].unit_name if info else "unknown"
        return {"metre": "m", "meter": "m", "foot": "ft", "US survey foot": "ftUS"}.get(name, name)

    def to_world(self, yx: np.ndarray) -> np.ndarray:
        """(N, 2) pixel-edge (y, x) to (N, 2) world (X, Y)."""
        a, b, c, d, e, f = self.transform
        y, x = np.asarray(yx, float).T
        return np.stack([a * x + b * y + c, d * x + e * y + f], axis=-1)

    def to_pixel(self, world: np.ndarray) -> np.ndarray:
        """(N, 2) world (X, Y) to (N, 2) pixel-edge (y, x)."""
        inverse = ~self.affine
        a, b, c, d, e, f = tuple(inverse)[:6]
        wx, wy = np.asarray(world, float).T
        return np.stack([d * wx + e * wy + f, a * wx + b * wy + c], axis=-1)

    def same_crs(self, other) -> bool:
        """Whether ``other`` (anything pyproj reads) is this CRS."""
        return self.pyproj_crs == require("pyproj", "gis").CRS.from_user_input(other)


def as_georef(value) -> Georef | None:
    """``value`` as a :class:`Georef`: None, a Georef, or the path of a georeferenced image."""
    if value is None or isinstance(value, Georef):
        return value
    return Georef.from_image(value)


def crs_name(crs) -> str:
    """A short readable name of a CRS ("EPSG:32617 (WGS 84 / UTM zone 17N)")."""
    if crs is None:
        return "no CRS"
    crs = require("pyproj", "gis").CRS.from_user_input(crs)
    code = crs.to_epsg()
    return f"EPSG:{code} ({crs.name})" if code else crs.name


def check_crs(have, want: Georef | None, what: str, reproject: bool) -> None:
    """Refuse coordinates in CRS ``have`` for an image in ``want``, when they cannot meet."""
    if have is None or want is None:
        if have is not None or want is not None:
            raise CRSError(
                f"{what} is in {crs_name(have)} but the image has {crs_name(want and want.crs)}: "
                "pass the georeferenced image (a GeoTIFF) as `georef`, or use pixel coordinates"
            )
        return
    if not reproject and not want.same_crs(have):
        raise CRSError(f"{what} is in {crs_name(have)}, the image in {crs_name(want.crs)}; "
                       "pass reproject=True or reproject the file first")  # fmt: skip
