"""From whatever the microscope wrote to the 8-bit RGB that SAM was trained on.

The rule, decided once per image (never per tile, so tiles agree):

* ``uint8`` is used as it is: SAM saw 8-bit RGB in training.
* ``bool`` becomes 0 / 255.
* Any other integer or float type is scaled linearly so that the
  ``percentiles`` (default 0.5 % and 99.5 %) of all its pixels, taken over
  all channels together, map to 0 and 255, and clipped. A constant image
  becomes black.
* One channel is repeated into R, G and B; an alpha channel is dropped.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidImageError

DEFAULT_PERCENTILES = (0.5, 99.5)


def check_image(image) -> np.ndarray:
    """Validate a 2D image, (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); return it as an array."""
    arr = np.asarray(image)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidImageError(f"image dtype {arr.dtype} is not numeric; expected uint8, uint16 or float")
    if np.iscomplexobj(arr):
        raise InvalidImageError("image is complex-valued; pass its magnitude (np.abs) instead")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise InvalidImageError(
            f"image shape {arr.shape} is not (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); "
            "for other channel counts or stacks, select a 2D plane or up to 3 channels first"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidImageError(f"image shape {arr.shape} is empty")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InvalidImageError("image contains NaN or inf values; replace them (e.g. np.nan_to_num) first")
    return arr


def intensity_range(image: np.ndarray, percentiles=DEFAULT_PERCENTILES) -> tuple[float, float]:
    """The (low, high) values that map to 0 and 255 for a non-uint8 image."""
    low, high = np.percentile(image, percentiles)
    return float(low), float(high)


def to_rgb8(image, *, percentiles=DEFAULT_PERCENTILES, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Convert a 2D image to (H, W, 3) uint8 RGB by the rule in this module's docstring.

    Parameters
    ----------
    image : (H, W[, C]) array, C in {1, 3, 4}
    percentiles : (float, float)
        Percentiles mapped to 0 and 255 for non-uint8 images.
    value_range : (float, float), optional
        Use these (low, high) values instead of percentiles, e.g. the range
        measured once on a whole large image.
    """
    arr = check_image(image)
    if arr.ndim == 3:
        arr = arr[..., :3]  # drop alpha
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        low, high = value_range if value_range is not None else intensity_range(arr, percentiles)
        scale = 255.0 / (high - low) if high > low else 0.0
        arr = np.clip((arr.astype(np.float32) - low) * scale, 0, 255).round().astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr)
