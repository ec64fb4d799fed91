"""The object size of an image: given (pixels or physical units) or estimated once for the whole image.

The estimate has two steps, on the central window of the image:

1. from the image alone (its central 512 x 512 pixels): the scale of the
   strongest blobs, i.e. of the strongest 3 % of the maxima of the
   scale-normalised Laplacian of Gaussian over space and scale (sigma 1.5
   to 48 px; a blob of diameter ``d`` answers most at
   ``sigma = d / (2 sqrt 2)``);
2. from the model: size-aware prompts with step 1's size
   (:mod:`samkit.automatic.prompts`, at most 256) are decoded, and the size
   is the median equivalent diameter of the objects the model finds. Images whose fine texture dominates step 1 (aerial views of
   trees) get the size of the objects the model sees in them.

The size is decided once per image, so every window places its prompts
alike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage

from ..errors import InvalidSettingError
from ..io.metadata import convert, normalise_unit
from .contrast import grey

SIGMAS = np.geomspace(1.5, 48.0, 16)
SAMPLE = 512  # side of the central part of the window the blobs are measured in
STRONGEST = 97.0  # percentile of the scale-space maxima whose scales are taken
PROBE_PROMPTS = 256  # decoder calls spent on the estimate


def blob_size(image: np.ndarray) -> float:
    """Step 1: the diameter (pixels) of the strongest blobs of a grey ``image``."""
    image = np.asarray(image, np.float32)
    (h, w), side = image.shape, SAMPLE
    image = image[max(h - side, 0) // 2 :][:side, max(w - side, 0) // 2 :][:, :side]
    stack = np.stack([np.abs(s * s * ndimage.gaussian_laplace(image, s)) for s in SIGMAS])
    peaks = (stack == ndimage.maximum_filter(stack, size=(3, 5, 5), mode="nearest")) & (stack > 0)
    peaks[0] = peaks[-1] = False  # a maximum at the end of the scale range is no blob of that scale
    scale, ys, xs = np.nonzero(peaks)
    if scale.size == 0:
        return float(2 * np.sqrt(2) * SIGMAS[len(SIGMAS) // 2])
    strength = stack[scale, ys, xs]
    strong = strength >= np.percentile(strength, STRONGEST)
    return float(2 * np.sqrt(2) * np.median(SIGMAS[scale[strong]]))


def in_pixels(object_size, image) -> float | None:
    """``object_size`` (pixels, or ``(value, unit)``) in pixels of ``image`` (a :class:`samkit.io.Image`)."""
    if object_size is None or isinstance(object_size, (int, float, np.number)):
        return None if object_size is None else float(object_size)
    try:
        value, unit = object_size
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidSettingError(f"object_size={object_size!r}: give pixels (a number) or (value, unit), e.g. (8, 'µm')") from None
    unit = normalise_unit(unit)
    if unit is None:
        return value
    spacing = image.spacing.get("X") or image.spacing.get("Y")
    size = None if spacing is None else convert(value, unit, image.unit)
    if size is None:
        raise InvalidSettingError(
            f"object_size={object_size!r}: the image's pixel size is {spacing} {image.unit or '(no unit)'}; give "
            "object_size in pixels, or the pixel size (samkit.open_image(..., spacing=0.5, unit='µm'))"
        )
    return size / spacing


def estimate_object_size(session, settings) -> float:
    """Steps 1 and 2 on the central window of ``session`` (see the module docstring); pixels."""
    from .prompts import window_objects

    grid = session.grid
    ny, nx = grid.grid_shape
    index = (ny // 2, nx // 2)
    window = grid.window(index)
    pixels = session.intensity.apply(session.image.read(*window, level=session.level))
    size = min(blob_size(grey(pixels)), max(pixels.shape[:2]) / 4)
    decode = session.model.point_decoder(session.compute([index])[0], window)
    probe = replace(settings, object_size=size, max_prompts=PROBE_PROMPTS, min_area=0)
    found = window_objects(decode, pixels, probe)
    if not found:
        return size
    areas = np.array([f.crop.sum() for f in found], float)
    return float(max(2 * np.sqrt(np.median(areas) / np.pi), 1.0))
