"""Reading images lazily, with their axes, pixel size and channel names.

``open_image`` (alias ``imread``) opens TIFF (OME-TIFF, ImageJ, pyramidal,
Aperio SVS, GeoTIFF), zarr and OME-Zarr directories, PNG and JPEG files, and
wraps arrays in memory (numpy, zarr, dask). Large files are not loaded: an
:class:`Image` reads only the regions asked for.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from ..errors import InvalidImageError
from .image import Image

__all__ = ["Image", "imread", "open_image"]

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
RASTER_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF")
TIFF_SUFFIXES = {".tif", ".tiff", ".btf", ".tf8", ".svs", ".ndpi", ".scn", ".lsm", ".stk", ".qptiff"}
RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}


def open_image(source, *, axes=None, plane=None, channel_names=None, spacing=None, unit=None) -> Image:
    """Open an image lazily, with its metadata.

    Parameters
    ----------
    source : str, Path, array-like or Image
        A TIFF file (also OME-TIFF, ImageJ, pyramidal TIFF, SVS, GeoTIFF), a
        ``.zarr`` directory (an array, a group with array "0", or OME-Zarr
        multiscales), a PNG or JPEG file (read whole), or an array in memory:
        anything with ``shape``, ``dtype``, ``ndim`` and ``__getitem__``
        (numpy, zarr, dask). An :class:`Image` is returned as is, or with the
        overrides below applied.
    axes : str, optional
        One letter per axis from "TCZYXS" (T time, C channels, Z planes, Y
        rows, X columns, S RGB(A) samples). Replaces the file's axes or the
        guess for arrays: 2D "YX"; last axis of 3 or 4 "YXS" ("ZYXS", ...);
        3D (n, H, W) "CYX" when n <= 8, else "ZYX"; 4D "CZYX"; 5D "TCZYX".
    plane : dict, optional
        Select one index along non-spatial axes, e.g. ``{"Z": 12}``; same as
        ``open_image(...).plane(Z=12)``.
    channel_names : list of str, optional
        One name per channel (C axis, else S axis, else one).
    spacing : dict or float or sequence of float, optional
        Pixel size, e.g. ``{"Y": 0.65, "X": 0.65}``, ``0.65`` (Y and X) or
        ``(2.0, 0.65, 0.65)`` (Z, Y, X); updates what the file says.
    unit : str, optional
        Unit of ``spacing``; "um", "micron" and "µm" all become "µm".

    Returns
    -------
    Image
        Array-like; indexing and :meth:`Image.read` read only what they need.

    Raises
    ------
    FileNotFoundError
        When the path does not exist.
    samkit.errors.InvalidImageError
        For unsupported formats, corrupt or truncated files, empty arrays,
        complex or non-numeric dtypes, and metadata that does not fit the image.

    Examples
    --------
    >>> import numpy as np
    >>> image = open_image(np.zeros((3, 64, 64), np.uint16), spacing=0.5, unit="um")
    >>> image.axes, image.spacing, image.unit
    ('CYX', {'Y': 0.5, 'X': 0.5}, 'µm')
    """
    if isinstance(source, Image):
        image = source
    elif isinstance(source, (str, os.PathLike)):
        image = _open_path(Path(source))
    else:
        if isinstance(source, (list, tuple)):
            source = np.asarray(source)
        if not all(hasattr(source, name) for name in ("shape", "dtype", "ndim", "__getitem__")):
            raise InvalidImageError(
                f"cannot open a value of type {type(source).__name__!r}: pass a file path or an array (numpy, zarr, dask)"
            )
        image, axes = Image(source, axes), None
    if any(v is not None for v in (axes, channel_names, spacing, unit)):
        image = image.with_metadata(axes=axes, spacing=spacing, unit=unit, channel_names=channel_names)
    if plane:
        image = image.plane(**plane)
    return image


imread = open_image


def _open_path(path: Path) -> Image:
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "No such image file or directory", str(path))
    if path.is_dir():
        from .ngff import is_zarr, open_zarr

        if not is_zarr(path):
            raise InvalidImageError(f"'{path}' is a directory but not a zarr store (no zarr.json, .zarray or .zgroup)")
        return open_zarr(path)
    with open(path, "rb") as f:
        magic = f.read(8)
    suffix = "".join(path.suffixes[-1:]).lower()
    if not magic:
        raise InvalidImageError(f"'{path}' is empty (0 bytes)")
    if magic[:4] in TIFF_MAGIC:
        from .tiff import open_tiff

        return open_tiff(path)
    if suffix in TIFF_SUFFIXES:
        raise InvalidImageError(f"'{path}' is named like a TIFF file but is not one (it starts with {magic!r})")
    if magic.startswith(RASTER_MAGIC) or suffix in RASTER_SUFFIXES:
        from .raster import open_raster

        return open_raster(path)
    raise InvalidImageError(
        f"'{path}': unsupported format ({suffix or 'no extension'}); samkit reads TIFF (OME-TIFF, ImageJ, "
        "pyramidal, SVS, GeoTIFF), zarr / OME-Zarr directories, PNG and JPEG"
    )
