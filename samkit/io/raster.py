"""PNG, JPEG and other small raster files, read whole with Pillow."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidImageError
from .identity import file_digest
from .image import Image

IGNORED_DPI = (1, 72, 96)  # defaults of image editors, not a measurement
_TO_RGB = {"P": None, "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}


class FileSource:
    """A file read whole when opened: nothing to close, identity from the file."""

    def __init__(self, path):
        self.path = path

    def identity(self) -> str:
        return file_digest(self.path).hexdigest()

    def close(self) -> None:
        """Nothing is kept open."""


def open_raster(path) -> Image:
    """Read a PNG, JPEG, BMP, GIF or WebP file (first frame) with its dpi as pixel size."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(path) as picture:
            if picture.mode in _TO_RGB:
                mode = _TO_RGB[picture.mode] or ("RGBA" if "transparency" in picture.info else "RGB")
                picture = picture.convert(mode)
            data = np.asarray(picture)
            dpi = picture.info.get("dpi")
    except Exception as exc:
        raise InvalidImageError(f"'{path}' is not a readable image file: {exc}") from exc
    spacing = {}
    if dpi and len(dpi) == 2 and all(d and d > 0 and round(d) not in IGNORED_DPI for d in dpi):
        spacing = {"Y": 25_400.0 / dpi[1], "X": 25_400.0 / dpi[0]}
    axes = "YX" if data.ndim == 2 else "YXS"
    return Image(data, axes, spacing=spacing, unit="µm" if spacing else None, path=path, source=FileSource(path))
