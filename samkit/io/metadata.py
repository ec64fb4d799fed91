"""Validate and normalise what describes an image: axes, spacing, unit, channel names, dtype.

File readers pass what they found through ``fit_*`` (which drops what does not
fit the image); values a user passes go through ``check_*`` (which raises).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InvalidImageError

AXES = "TCZYXS"  # T time, C separate channels, Z planes, Y rows, X columns, S samples (RGB(A))
SPATIAL = "ZYX"  # the axes that have a pixel size
MAX_CHANNELS_GUESS = 8  # a 3D (n, H, W) array with n <= this is read as channels (CYX)

# unit symbol -> metres
_METRES = {
    "pm": 1e-12, "Å": 1e-10, "nm": 1e-9, "µm": 1e-6, "mm": 1e-3, "cm": 1e-2, "m": 1.0,
    "km": 1e3, "in": 0.0254, "ft": 0.3048,
}  # fmt: skip
_ALIASES = {
    "um": "µm", "μm": "µm", "\\u00b5m": "µm", "micron": "µm", "microns": "µm",
    "micrometer": "µm", "micrometre": "µm", "micrometers": "µm", "micrometres": "µm",
    "nanometer": "nm", "nanometre": "nm", "nanometers": "nm", "nanometres": "nm",
    "millimeter": "mm", "millimetre": "mm", "millimeters": "mm", "millimetres": "mm",
    "centimeter": "cm", "centimetre": "cm", "meter": "m", "metre": "m", "meters": "m",
    "metres": "m", "kilometer": "km", "kilometre": "km", "picometer": "pm",
    "picometre": "pm", "angstrom": "Å", "ångström": "Å", "inch": "in",
    "inches": "in", "foot": "ft", "feet": "ft",
}  # fmt: skip
_NO_UNIT = {"", "pixel", "pixels", "px", "none", "unknown"}


def normalise_unit(unit) -> str | None:
    """A length unit as its symbol ("um", "micron", "micrometer", "\\u00B5m" -> "µm").

    Returns None for no unit ("pixel", ""); unknown names are kept as given.
    """
    if unit is None:
        return None
    text = str(unit).strip()
    if text.lower() in _NO_UNIT:
        return None
    if text in _METRES:
        return text
    return _ALIASES.get(text.lower(), text)


def convert(value: float, unit: str | None, to: str | None) -> float | None:
    """``value`` in ``unit`` expressed in ``to``; None when either unit is not a known length."""
    if unit == to:
        return value
    if unit not in _METRES or to not in _METRES:
        return None
    return value * _METRES[unit] / _METRES[to]


def common_unit(spacing: dict, units: dict) -> tuple[dict, str | None]:
    """Bring per-axis spacings with per-axis units to one unit (that of X, else Y, else Z).

    Axes whose unit cannot be converted are dropped from the spacing.
    """
    units = {a: normalise_unit(u) for a, u in units.items() if a in spacing}
    target = next((units[a] for a in "XYZ" if units.get(a)), None)
    out = {}
    for axis, value in spacing.items():
        value = convert(value, units.get(axis) or target, target)
        if value is not None:
            out[axis] = value
    return out, target


def check_dtype(dtype, name: str) -> np.dtype:
    """The dtype as np.dtype, or InvalidImageError when it is not bool, integer or float."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise InvalidImageError(f"{name} is complex-valued ({dtype}); pass its magnitude (np.abs) instead")
    if dtype.kind not in "biuf":
        raise InvalidImageError(f"{name} has dtype {dtype}; expected bool, integer or float pixels")
    return dtype


def check_shape(shape, name: str) -> tuple[int, ...]:
    """The shape as a tuple of ints, or InvalidImageError when it is empty or has fewer than 2 axes."""
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2:
        raise InvalidImageError(f"{name} has {len(shape)} axis; an image needs at least 2 (Y, X)")
    if 0 in shape:
        raise InvalidImageError(f"{name} is empty: an axis has size 0")
    return shape


def guess_axes(shape) -> str:
    """Axes for an array without metadata, by these rules (pass ``axes=`` when they are wrong):

    * 2D: "YX".
    * channels last, when the last axis has at most 8 entries and the two before
      it more than 8: RGB(A) samples "S" if it has 3 or 4, else channels "C"
      ((H, W, 3) is "YXS", (H, W, 2) "YXC", (Z, H, W, 3) "ZYXS", (T, Z, H, W, 3) "TZYXS").
    * else 3D (n, H, W): "CYX" when n <= 8 (a few channels), else "ZYX" (a stack of planes).
    * else 4D "CZYX", 5D "TCZYX" (the tail of OME's TCZYX order).
    """
    shape = tuple(shape)
    ndim = len(shape)
    if ndim > len(AXES):
        raise InvalidImageError(f"an array of shape {shape} has {ndim} axes; images have at most 6 (TCZYXS)")
    if ndim >= 3 and shape[-1] <= MAX_CHANNELS_GUESS and min(shape[-3:-1]) > MAX_CHANNELS_GUESS:
        last = "S" if shape[-1] in (3, 4) else "C"
        head = {3: "", 4: "Z", 5: "TZ", 6: "TCZ" if last == "S" else None}[ndim]
        if head is not None:
            return head + "YX" + last
    elif ndim == 3:
        return "CYX" if shape[0] <= MAX_CHANNELS_GUESS else "ZYX"
    elif ndim <= 5:
        return "TCZYX"[-ndim:]
    raise InvalidImageError(f"cannot guess the axes of an array of shape {shape}; pass axes=, e.g. axes={AXES[-ndim:]!r}")


def check_axes(axes, shape, name: str) -> str:
    """``axes`` upper-cased and checked against ``shape``: letters of TCZYXS, once each, Y and X present."""
    text = str(axes).upper()
    if len(text) != len(shape):
        raise InvalidImageError(f"axes {axes!r} has {len(text)} letters but {name} has {len(shape)} axes {tuple(shape)}")
    bad = sorted(set(text) - set(AXES))
    if bad or len(set(text)) != len(text) or "Y" not in text or "X" not in text:
        raise InvalidImageError(
            f"axes {axes!r} is not valid: use each of the letters {AXES} at most once "
            "(T time, C channels, Z planes, Y rows, X columns, S RGB samples), including Y and X"
        )
    return text


def fit_axes(axes: str, shape) -> str:
    """Axes a file reader found, made valid: unknown letters (tifffile's I, Q, ...) are replaced."""
    axes = axes.upper()
    if len(axes) == len(shape) and set(axes) <= set(AXES) and len(set(axes)) == len(axes) and {"Y", "X"} <= set(axes):
        return axes
    try:
        guess = guess_axes(shape)
    except InvalidImageError:
        guess = None
    known = [(i, a) for i, a in enumerate(axes) if a in AXES]
    if guess is not None and all(guess[i] == a for i, a in known):
        return guess
    free = [a for a in "ZTC" if a not in axes]
    letters = [a if a in AXES else None for a in axes]
    for i, a in enumerate(letters):
        if a is None:
            if not free:
                raise InvalidImageError(f"cannot map axes {axes!r} of shape {tuple(shape)}; pass axes=")
            letters[i] = free.pop(0)
    return "".join(letters)


def _positive(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidImageError(f"{what} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise InvalidImageError(f"{what} must be a positive finite number, got {value!r}")
    return value


def check_spacing(spacing, axes: str) -> dict[str, float]:
    """Spacing as ``{axis: size}`` for Z, Y, X axes of ``axes``.

    Accepts a dict (``{"Y": 0.65, "X": 0.65}``, lower-case keys allowed), one
    number (the size of Y and X) or a sequence giving the last spatial axes in
    order (``(2.0, 0.65, 0.65)`` for Z, Y, X).
    """
    if spacing is None:
        return {}
    spatial = [a for a in axes if a in SPATIAL]
    if isinstance(spacing, dict):
        items = [(str(k).upper(), v) for k, v in spacing.items()]
    elif isinstance(spacing, numbers.Real):
        items = [("Y", spacing), ("X", spacing)]
    else:
        values = list(spacing)
        if not 1 <= len(values) <= len(spatial):
            raise InvalidImageError(f"spacing {spacing!r} has {len(values)} values for the spatial axes {''.join(spatial)}")
        items = list(zip(spatial[-len(values) :], values))
    out = {}
    for axis, value in items:
        if axis not in spatial:
            raise InvalidImageError(f"spacing names axis {axis!r}, which is not a spatial axis of {axes!r}")
        out[axis] = _positive(value, f"spacing of {axis}")
    return out


def fit_spacing(spacing: dict, axes: str) -> dict[str, float]:
    """The valid spatial entries of a spacing a file reader found."""
    out = {}
    for axis, value in (spacing or {}).items():
        try:
            if axis in axes and axis in SPATIAL:
                out[axis] = _positive(value, axis)
        except InvalidImageError:
            pass
    return out


def channel_count(axes: str, shape) -> int:
    """How many channels a 2D view of this image has: the size of C, else of S, else 1."""
    for axis in "CS":
        if axis in axes:
            return int(shape[axes.index(axis)])
    return 1


def check_channel_names(names, axes: str, shape) -> list[str] | None:
    """Channel names as a list of str, one per channel (see ``channel_count``)."""
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    names = [str(n) for n in names]
    count = channel_count(axes, shape)
    if len(names) != count:
        raise InvalidImageError(
            f"{len(names)} channel names {names} for {count} channels (axes {axes!r}, shape {tuple(shape)})"
        )
    return names


def fit_channel_names(names, axes: str, shape) -> list[str] | None:
    """Channel names a file reader found, or None when they do not fit the channels."""
    if not names or any(n is None for n in names):
        return None
    try:
        return check_channel_names(names, axes, shape)
    except InvalidImageError:
        return None
