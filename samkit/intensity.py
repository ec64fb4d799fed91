"""From whatever the microscope wrote to the 8-bit RGB that SAM was trained on.

The rule, decided once per image (never per tile, so tiles agree):

* ``uint8`` is used as it is: SAM saw 8-bit RGB in training.
* ``bool`` becomes 0 / 255.
* Any other integer or float type is scaled linearly so that the
  ``percentiles`` (default 0.5 % and 99.5 %) of all its pixels, taken over
  all channels together, map to 0 and 255, and clipped. A constant image
  becomes black. The arithmetic is float64, so values far from 0 (a
  ``uint32`` offset by 2**28, floats around 1e9) keep their contrast.
* One channel is repeated into R, G and B; an alpha channel is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    pixels = arr.reshape(*arr.shape[:2], -1)  # (H, W, C)
    rgb = tuple(range(min(pixels.shape[2], 3)))  # an alpha channel is dropped
    policy = IntensityPolicy.fit(pixels, channels=rgb, percentiles=percentiles, value_range=value_range, joint=True)
    return policy.apply(pixels)


@dataclass(frozen=True)
class IntensityPolicy:
    """How one (possibly huge) image maps to the model's RGB input, fixed once for all tiles.

    Extends this module's rule to images read tile by tile: the percentiles
    come from a sample of the whole image (see :meth:`fit`), never from a
    tile, so every tile gets the same mapping.

    Attributes
    ----------
    channels : tuple of int
        The image channels that become R, G and B: one channel is shown as
        grey, two as red and green (blue black), three as RGB.
    low, high : tuple of float, or None
        Per selected channel, the values mapped to 0 and 255 (None: ``uint8``
        used as it is).
    """

    channels: tuple[int, ...]
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    @classmethod
    def fit(
        cls,
        sample: np.ndarray,
        *,
        channels=None,
        percentiles=DEFAULT_PERCENTILES,
        value_range: tuple[float, float] | None = None,
        joint: bool | None = None,
    ) -> IntensityPolicy:
        """Decide the mapping from ``sample``, (N, C) or (h, w, C) pixels representative of the image.

        Parameters
        ----------
        sample : array
            Pixels of the image, channels last (see :func:`sample_pixels`).
        channels : sequence of int, optional
            Up to three channels for R, G, B. Default: all when there are at
            most three, else the first three.
        percentiles : (float, float)
            Mapped to 0 and 255 for non-uint8 images.
        value_range : (float, float), optional
            Fixed (low, high) for every channel instead of percentiles.
        joint : bool, optional
            One (low, high) for all channels (keeps the colour balance of RGB
            photographs) rather than one per channel (fluorescence channels).
            Default: joint for three channels, per channel otherwise.
        """
        sample = np.asarray(sample)
        sample = sample.reshape(-1, sample.shape[-1]) if sample.ndim > 1 else sample[:, None]
        n = sample.shape[1]
        channels = tuple(range(min(n, 3))) if channels is None else tuple(int(c) for c in channels)
        if not 1 <= len(channels) <= 3 or any(not 0 <= c < n for c in channels):
            raise InvalidImageError(f"channels={channels}: choose 1 to 3 of the image's {n} channels (0..{n - 1})")
        picked = sample[:, channels]
        if value_range is None and picked.dtype in (np.uint8, bool):
            return cls(channels)
        if value_range is not None:
            low, high = [float(value_range[0])] * len(channels), [float(value_range[1])] * len(channels)
        else:
            values = picked.astype(np.float64)
            if not np.isfinite(values).any():
                raise InvalidImageError("the image has no finite pixel values (all NaN or inf)")
            joint = len(channels) == 3 if joint is None else joint
            if joint:
                low, high = np.nanpercentile(np.where(np.isfinite(values), values, np.nan), percentiles)
                low, high = [float(low)] * len(channels), [float(high)] * len(channels)
            else:
                ranges = np.nanpercentile(np.where(np.isfinite(values), values, np.nan), percentiles, axis=0)
                low, high = [float(v) for v in ranges[0]], [float(v) for v in ranges[1]]
        return cls(channels, tuple(low), tuple(high))

    def apply(self, region: np.ndarray) -> np.ndarray:
        """(h, w, C) pixels -> (h, w, 3) uint8 RGB; NaN and inf become 0."""
        picked = np.asarray(region)[..., list(self.channels)]
        if self.low is None:
            rgb = picked.astype(np.uint8) * 255 if picked.dtype == bool else picked
        else:
            low, high = np.array(self.low), np.array(self.high)  # float64
            scale = np.where(high > low, 255.0 / np.maximum(high - low, 1e-30), 0.0)
            # in float64: float32 would round away the contrast of values far from 0 (uint32, int64, 1e9 + x)
            scaled = (picked.astype(np.float64) - low) * scale
            rgb = np.clip(np.nan_to_num(scaled, nan=0.0, posinf=255.0, neginf=0.0), 0, 255).round().astype(np.uint8)
        if rgb.shape[-1] == 1:
            rgb = np.repeat(rgb, 3, axis=-1)
        elif rgb.shape[-1] == 2:
            rgb = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=-1)
        return np.ascontiguousarray(rgb)

    def signature(self) -> dict:
        return {"channels": list(self.channels), "low": self.low and list(self.low), "high": self.high and list(self.high)}


def sample_pixels(read, shape: tuple[int, int], *, blocks: int = 8, block_size: int = 128, whole_below: int = 4 * 2**20) -> np.ndarray:
    """Pixels representative of a large image, without reading it whole.

    Parameters
    ----------
    read : callable
        ``read(y0, x0, y1, x1) -> (h, w, C)`` array of the image.
    shape : (H, W)
    blocks : int
        A ``blocks`` x ``blocks`` lattice of ``block_size`` squares, spread
        evenly, is read when the image has more than ``whole_below`` pixels.

    Returns
    -------
    (N, C) array
    """
    h, w = shape
    if h * w <= whole_below:
        region = read(0, 0, h, w)
        return region.reshape(-1, region.shape[-1])
    bh, bw = min(block_size, h), min(block_size, w)
    ys = np.linspace(0, h - bh, blocks).astype(int)
    xs = np.linspace(0, w - bw, blocks).astype(int)
    parts = [read(y, x, y + bh, x + bw) for y in ys for x in xs]
    return np.concatenate([p.reshape(-1, p.shape[-1]) for p in parts])
