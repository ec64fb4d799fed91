"""Properties that need a whole object, computed by scikit-image on the object's crop.

Perimeter, convex hull (solidity), Feret diameter, inertia axes, Euler number and
user functions: each object is cut out at its bounding box (the same crop
``skimage.measure.regionprops`` uses), so values equal scikit-image's.
"""

from __future__ import annotations

import inspect

import numpy as np
from skimage.measure import regionprops

from ..errors import InvalidPropertyError

NAN_WHEN_ANISOTROPIC = ("perimeter", "perimeter_crofton")


def crop_names(props) -> list[str]:
    """The scikit-image properties to compute on crops for ``props`` (circularity needs the perimeter)."""
    names = []
    for prop in props:
        if not prop.crop:
            continue
        name = "perimeter" if prop.name == "circularity" else prop.name
        if name not in names:
            names.append(name)
    return names


def measure_crops(labels, image, geo: dict, origin, select: np.ndarray, names, extra, spacing, failed: dict) -> dict:
    """Crop properties of the objects ``select`` (indices into ``geo["ids"]``) of a block.

    Parameters
    ----------
    labels : (..., M, N) ndarray
        The block of labels; ``origin`` is its position in the whole image.
    image : (..., M, N, C) ndarray or None
        Intensity of the block, channels last.
    geo : dict
        From :func:`samkit.measurement.fast.geometry`: ids and whole-image bounding boxes.
    names : list of str
        scikit-image property names; ``extra``: functions ``f(mask[, intensity]) -> float``.
    failed : dict
        Gets name -> [ids] of objects where scikit-image could not compute a property
        (e.g. the convex hull of an object that is flat in 3D); their value is NaN.

    Returns
    -------
    dict
        name -> (k,) float64 array (int64 for "euler_number"), NaN for objects not selected.
    """
    k = geo["ids"].size
    channels = 0 if image is None else image.shape[-1]
    isotropic = len(set(spacing)) == 1
    out = {name: np.full(k, np.nan) for name in names}
    per_channel = [channels if uses_intensity(f) else 0 for f in extra]
    out.update({f.__name__: np.full((k, n) if n else k, np.nan) for f, n in zip(extra, per_channel)})
    if "euler_number" in out:
        out["euler_number"] = np.zeros(k, np.int64)
    if not (names or extra):
        return out
    lo = geo["lo"] - np.asarray(origin)
    hi = geo["hi"] - np.asarray(origin)
    computed = [n for n in names if isotropic or n not in NAN_WHEN_ANISOTROPIC]
    for j in select:
        box = tuple(slice(a, b) for a, b in zip(lo[j], hi[j]))
        mask = labels[box] == geo["ids"][j]
        crop = None
        if image is not None:
            crop = image[box]
            crop = crop[..., 0] if crop.shape[-1] == 1 else crop
        region = regionprops(mask.view(np.uint8), crop, spacing=spacing, extra_properties=extra)[0]
        for name in computed:
            try:
                out[name][j] = getattr(region, name)
            except (ValueError, IndexError, ZeroDivisionError):
                failed.setdefault(name, []).append(int(geo["ids"][j]))
        for f, n in zip(extra, per_channel):
            out[f.__name__][j] = _scalar(getattr(region, f.__name__), f, n)
    return out


def uses_intensity(f) -> bool:
    """Whether ``f`` takes (mask, intensity) rather than (mask): two required positional parameters."""
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds and p.default is p.empty for p in parameters) >= 2


def _scalar(value, f, channels: int):
    shape = np.shape(value)
    if shape != (() if channels <= 1 else (channels,)):
        raise InvalidPropertyError(
            f"extra: {f.__name__}() returned a value of shape {shape}; an extra function returns one number "
            "(per channel: scikit-image calls it once per channel)"
        )
    return np.asarray(value, dtype=np.float64)
