"""Real sample images shipped with samkit (see README.md here for sources and licences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def nuclei() -> tuple[np.ndarray, np.ndarray]:
    """Fluorescence nuclei (520, 696, 3) uint8 and their (520, 696) uint16 ground-truth labels.

    DSB2018 (BBBC038v1) image ``ade080c6618c``, CC0.
    """
    import tifffile
    from PIL import Image

    image = np.asarray(Image.open(HERE / "nuclei.png").convert("RGB"))
    labels = tifffile.imread(HERE / "nuclei_labels.tif")
    return image, labels
