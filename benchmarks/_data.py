"""The real images the benchmarks run on (tests/data, copied from ../shared/data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

DSB = Path(__file__).resolve().parents[1] / "tests" / "data" / "nuclei" / "dsb2018"


def dsb_mosaic(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The 17 DSB2018 images and their labels laid side by side on an (H, W) canvas; exits without the data."""
    import tifffile
    from PIL import Image

    from samkit.testing import mosaic

    if not DSB.is_dir():
        sys.exit(f"needs the real images in {DSB}")
    paths = sorted(DSB.glob("*_img.png"))
    pairs = [(np.asarray(Image.open(p).convert("RGB")), tifffile.imread(str(p).replace("_img.png", "_labels.tif"))) for p in paths]
    return mosaic(pairs, shape)


class Repeated:
    """A lazily read (H, W, ...) array that repeats ``base`` like a wallpaper."""

    def __init__(self, base: np.ndarray, shape: tuple[int, int]) -> None:
        self.base, self.shape = base, tuple(shape) + base.shape[2:]
        self.dtype, self.ndim = base.dtype, base.ndim

    def __getitem__(self, key):
        ys, xs = key[0], key[1]
        rows = np.arange(*ys.indices(self.shape[0])) % self.base.shape[0]
        cols = np.arange(*xs.indices(self.shape[1])) % self.base.shape[1]
        return self.base[rows[:, None], cols[None, :]]

    def __array__(self, dtype=None, copy=None):
        raise MemoryError("this benchmark image must never be read whole")
