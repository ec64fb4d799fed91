"""TIFF files (plain, OME-TIFF, ImageJ, pyramidal, Aperio SVS, GeoTIFF, LSM) read lazily with tifffile.

Regions are read through ``tifffile``'s zarr store of each pyramid level (only
the tiles or strips a region touches are read and decoded), or memory-mapped
when the pixels are stored uncompressed in one piece. Pixel size, in order of
preference: OME-XML, ImageJ metadata, LSM, Aperio MPP, GeoTIFF pixel scale,
then the resolution tags.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from xml.etree import ElementTree

import numpy as np

from ..errors import InvalidImageError
from .identity import file_digest
from .image import Image
from .metadata import common_unit, fit_axes, fit_channel_names, fit_spacing, normalise_unit
from .views import View, region_text

UM_PER_RESOLUTION_UNIT = {2: 25_400.0, 3: 10_000.0}  # inch, centimetre
IGNORED_DPI = (1, 72, 96)  # defaults of image editors, not a measurement


class TiffSource:
    """One TIFF file, opened on first use and again after :meth:`close`; reads hold a lock.

    tifffile's store reads through one file handle, which is not thread-safe.
    """

    def __init__(self, path, tif=None):
        self.path = path
        self.lock = threading.RLock()
        self._tif = tif
        self._arrays = {}

    def _array(self, level: int):
        if level not in self._arrays:
            if self._tif is None:
                import tifffile

                self._tif = tifffile.TiffFile(self.path)
            series = self._tif.series[0].levels[level]
            if series.dataoffset is not None and not series.is_multifile:
                dtype = series.dtype.newbyteorder(self._tif.byteorder)
                self._arrays[level] = np.memmap(self.path, dtype, "r", series.dataoffset, series.shape)
            else:
                self._arrays[level] = _zarr_level(self._tif, level, self.path)
        return self._arrays[level]

    def read(self, level: int, key) -> np.ndarray:
        with self.lock:
            try:
                data = np.array(self._array(level)[key])
            except (IndexError, InvalidImageError):
                raise
            except Exception as exc:
                raise InvalidImageError(
                    f"cannot read level {level} of '{self.path}' ({region_text(key)}): {type(exc).__name__}: {exc}; "
                    "the file may be truncated or corrupt"
                ) from exc
        return data if data.dtype.isnative else data.astype(data.dtype.newbyteorder("="))

    def identity(self) -> str:
        return file_digest(self.path).hexdigest()

    def close(self) -> None:
        with self.lock:
            self._arrays.clear()
            if self._tif is not None:
                self._tif.close()
                self._tif = None


def _zarr_level(tif, level: int, path):
    try:
        import zarr
    except ImportError:
        warnings.warn(
            f"zarr is not installed: level {level} of '{path}' is read whole; "
            "install zarr (pip install zarr) to read large TIFFs region by region",
            stacklevel=4,
        )
        return tif.series[0].levels[level].asarray()
    return zarr.open(tif.aszarr(series=0, level=level), mode="r")


class _TiffLevel:
    """One pyramid level: shape and dtype known, pixels read through the source on indexing."""

    def __init__(self, source: TiffSource, level: int, shape, dtype):
        self.source, self.level = source, level
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def __getitem__(self, key):
        return self.source.read(self.level, key)


def open_tiff(path) -> Image:
    """Open a TIFF file lazily; see the module docstring for what is read."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise InvalidImageError(f"'{path}' is not a readable TIFF file: {exc}") from exc
    try:
        if not tif.series:
            raise InvalidImageError(f"'{path}' contains no image")
        series = tif.series[0]
        _check_complete(series, os.path.getsize(path), path)
        axes = fit_axes(series.axes, series.shape)
        spacing, unit, names = tiff_metadata(tif, series.pages[0], axes, path)
        source = TiffSource(path, tif)
        levels = [View(_TiffLevel(source, i, lev.shape, lev.dtype)) for i, lev in enumerate(series.levels)]
        return Image(
            levels, axes, spacing=fit_spacing(spacing, axes), unit=unit,
            channel_names=fit_channel_names(names, axes, series.shape), path=path, source=source,
        )  # fmt: skip
    except Exception:
        tif.close()
        raise


def _check_complete(series, size: int, path) -> None:
    """Raise when the first or last page of a level points past the end of the file."""
    for level in series.levels:
        if level.is_multifile:
            continue
        for page in (level.pages[0], level.pages[-1]):
            ends = np.add(getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ()))
            if len(ends) and int(ends.max()) > size:
                raise InvalidImageError(
                    f"'{path}' is truncated: its pixels end at byte {int(ends.max())} but the file has {size} bytes"
                )


def tiff_metadata(tif, page, axes: str, path) -> tuple[dict, str | None, list | None]:
    """(spacing, unit, channel names) from the best metadata the file has."""
    if tif.is_ome and tif.ome_metadata:
        found = _ome(tif.ome_metadata, path)
        if found is not None:
            return found
    if tif.is_imagej and tif.imagej_metadata and normalise_unit(tif.imagej_metadata.get("unit")):
        meta = tif.imagej_metadata
        spacing = _inverse_resolution(page)
        if "spacing" in meta and "Z" in axes:
            spacing["Z"] = meta["spacing"]
        return spacing, normalise_unit(meta["unit"]), None
    if tif.is_lsm and tif.lsm_metadata:
        meta = tif.lsm_metadata  # voxel sizes in metres
        spacing = {a: meta.get(f"VoxelSize{a}", 0) * 1e6 for a in "ZYX"}
        return {a: v for a, v in spacing.items() if v > 0}, "µm", None
    if tif.is_svs:
        found = re.search(r"\bMPP\s*=\s*([0-9.eE+-]+)", page.description or "")
        if found:
            mpp = float(found.group(1))
            return {"Y": mpp, "X": mpp}, "µm", None
    if 33550 in page.tags:  # GeoTIFF ModelPixelScaleTag: (x, y, z) in the CRS unit
        scale = page.tags[33550].value
        return {"X": scale[0], "Y": scale[1]}, _geotiff_unit(page), None
    spacing = _resolution(page)
    return spacing, "µm" if spacing else None, None


def _ome(xml: str, path) -> tuple[dict, str | None, list | None] | None:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        warnings.warn(f"OME-XML of '{path}' cannot be parsed ({exc}); its pixel size is ignored", stacklevel=4)
        return None
    pixels = next((e for e in root.iter() if _local(e) == "Pixels"), None)
    if pixels is None:
        return None
    sizes, units = {}, {}
    for axis in "ZYX":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            sizes[axis] = float(value)
            units[axis] = pixels.get(f"PhysicalSize{axis}Unit", "µm")  # the OME schema's default
    spacing, unit = common_unit(sizes, units)
    names = [c.get("Name") for c in pixels if _local(c) == "Channel"]
    return spacing, unit, names or None


def _local(element) -> str:
    """An XML tag without its namespace."""
    return element.tag.rsplit("}", 1)[-1]


def _rational(page, name: str) -> float | None:
    tag = page.tags.get(name)
    if tag is None:
        return None
    value = tag.value
    if isinstance(value, tuple):
        return value[0] / value[1] if len(value) == 2 and value[1] else None
    return float(value)


def _inverse_resolution(page) -> dict[str, float]:
    """Pixel size as 1 / resolution, in the unit given elsewhere (ImageJ)."""
    out = {}
    for axis in "YX":
        res = _rational(page, f"{axis}Resolution")
        if res and res > 0:
            out[axis] = 1.0 / res
    return out


def _resolution(page) -> dict[str, float]:
    """Pixel size in µm from XResolution / YResolution in pixels per inch or cm.

    Unitless resolution, 1 pixel per unit and 72 or 96 dpi (editors' defaults) count as unknown.
    """
    tag = page.tags.get("ResolutionUnit")
    code = int(tag.value) if tag is not None else 2  # TIFF's default unit is the inch
    um = UM_PER_RESOLUTION_UNIT.get(code)
    out = {}
    for axis in "YX":
        res = _rational(page, f"{axis}Resolution")
        if um and res and res > 0 and not (code == 2 and round(res) in IGNORED_DPI) and res != 1:
            out[axis] = um / res
    return out


def _geotiff_unit(page) -> str | None:
    """"m" when the GeoKeys say the projected CRS is in metres, else None."""
    tag = page.tags.get(34735)  # GeoKeyDirectoryTag: header, then (key, location, count, value) entries
    if tag is None:
        return None
    keys = np.asarray(tag.value, dtype=np.int64)
    entries = {int(k): (int(loc), int(v)) for k, loc, _, v in keys[4:].reshape(-1, 4)}
    location, units = entries.get(3076, (None, None))  # ProjLinearUnitsGeoKey
    if location == 0 and units == 9001:  # EPSG linear unit 9001 = metre
        return "m"
    location, crs = entries.get(3072, (None, None))  # ProjectedCSTypeGeoKey
    if location == 0 and units is None and crs is not None and (32601 <= crs <= 32660 or 32701 <= crs <= 32760):
        return "m"  # WGS 84 / UTM zones are in metres
    return None
