"""What can be measured: property names, groups, column names and their units.

Every property has the scikit-image name and definition (``skimage.measure.regionprops``
with ``spacing=``), plus ``circularity`` and ``intensity_integrated``. A column name is
``<quantity>[_<axis>][_<channel>][_<unit>]``: ``centroid_y_um``, ``area_um2``,
``volume_um3`` (3D), ``mean_intensity_DNA``, ``integrated_intensity_DNA_um2``,
``orientation_rad``, ``bbox_y0_px``; dimensionless quantities have no unit. Without a
unit lengths are in ``px`` (``px2``, ``px3``), or ``unit`` when a spacing has no unit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidPropertyError


@dataclass(frozen=True)
class Prop:
    """One property and how it becomes columns.

    ``dim``: "" dimensionless, "L" a length, "A" an area (2D) or volume (3D), "rad" an
    angle, "index" pixel indices. ``crop``: computed by scikit-image on each object's crop
    (the others are computed for all objects at once).
    """

    name: str
    stem: str
    dim: str = ""
    crop: bool = False
    per_axis: bool = False
    per_channel: bool = False
    intensity: bool = False
    only_2d: bool = False
    isotropic: bool = False  # NaN (with a warning) when the spacing differs between axes
    integer: bool = False


_ALL = (
    Prop("centroid", "centroid", "L", per_axis=True),
    Prop("bbox", "bbox", "index", per_axis=True, integer=True),
    Prop("area", "area", "A"),
    Prop("num_pixels", "num_pixels", integer=True),
    Prop("area_bbox", "area_bbox", "A"),
    Prop("extent", "extent"),
    Prop("equivalent_diameter_area", "equivalent_diameter", "L"),
    Prop("perimeter", "perimeter", "L", crop=True, only_2d=True, isotropic=True),
    Prop("perimeter_crofton", "perimeter_crofton", "L", crop=True, only_2d=True, isotropic=True),
    Prop("axis_major_length", "axis_major_length", "L", crop=True),
    Prop("axis_minor_length", "axis_minor_length", "L", crop=True),
    Prop("feret_diameter_max", "feret_diameter_max", "L", crop=True),
    Prop("eccentricity", "eccentricity", crop=True, only_2d=True),
    Prop("orientation", "orientation", "rad", crop=True, only_2d=True),
    Prop("solidity", "solidity", crop=True),
    Prop("area_convex", "area_convex", "A", crop=True),
    Prop("area_filled", "area_filled", "A", crop=True),
    Prop("euler_number", "euler_number", crop=True, integer=True),
    Prop("circularity", "circularity", crop=True, only_2d=True, isotropic=True),
    Prop("intensity_mean", "mean_intensity", per_channel=True, intensity=True),
    Prop("intensity_min", "min_intensity", per_channel=True, intensity=True),
    Prop("intensity_max", "max_intensity", per_channel=True, intensity=True),
    Prop("intensity_std", "std_intensity", per_channel=True, intensity=True),
    Prop("intensity_median", "median_intensity", per_channel=True, intensity=True),
    Prop("intensity_integrated", "integrated_intensity", "A", per_channel=True, intensity=True),
    Prop("centroid_weighted", "centroid_weighted", "L", per_axis=True, per_channel=True, intensity=True),
)
PROPERTIES = {p.name: p for p in _ALL}

ALIASES = {
    "equivalent_diameter": "equivalent_diameter_area", "major_axis_length": "axis_major_length",
    "minor_axis_length": "axis_minor_length", "bbox_area": "area_bbox", "convex_area": "area_convex",
    "filled_area": "area_filled", "mean_intensity": "intensity_mean", "min_intensity": "intensity_min",
    "max_intensity": "intensity_max", "std_intensity": "intensity_std", "median_intensity": "intensity_median",
    "integrated_intensity": "intensity_integrated", "weighted_centroid": "centroid_weighted",
    "feret_diameter": "feret_diameter_max", "volume": "area", "bbox_volume": "area_bbox",
    "convex_volume": "area_convex", "filled_volume": "area_filled",
}  # fmt: skip

INTENSITY = (
    "intensity_mean", "intensity_min", "intensity_max", "intensity_std", "intensity_median", "intensity_integrated",
)  # fmt: skip
GROUPS = {
    "position": ("centroid", "bbox"),
    "size": ("area", "perimeter", "equivalent_diameter_area", "axis_major_length", "axis_minor_length",
             "feret_diameter_max"),  # fmt: skip
    "shape": ("eccentricity", "solidity", "extent", "circularity", "orientation"),
    "intensity": INTENSITY,
    "basic": ("centroid", "bbox", "area", "intensity_mean"),  # intensity_mean only with an intensity image
    "all": (),  # position + size + shape (+ intensity), filled below
}
GROUPS["all"] = GROUPS["position"] + GROUPS["size"] + GROUPS["shape"] + INTENSITY


def resolve(properties, *, ndim: int, has_intensity: bool) -> list[Prop]:
    """The properties asked for (group names, property names, aliases) as a list without repeats.

    Group members that do not apply are left out (2D-only ones in 3D, intensity ones
    of "basic" and "all" without intensity); a property named on its own that does
    not apply raises :class:`~samkit.errors.InvalidPropertyError`.
    """
    if isinstance(properties, str):
        properties = (properties,)
    try:
        names = list(properties)
    except TypeError:
        raise InvalidPropertyError(f"properties must be a name or a list of names, not {properties!r}") from None
    out: dict[str, Prop] = {}
    for name in names:
        if not isinstance(name, str):
            raise InvalidPropertyError(f"properties: {name!r} is not a name; {_valid()}")
        if name == "label":
            continue
        if name in GROUPS:
            if name == "intensity" and not has_intensity:
                raise InvalidPropertyError(
                    "properties: the 'intensity' group needs an intensity image: pass measure(labels, intensity, ...)"
                )
            for member in GROUPS[name]:
                prop = PROPERTIES[member]
                if (prop.only_2d and ndim != 2) or (prop.intensity and not has_intensity):
                    continue
                out.setdefault(member, prop)
            continue
        prop = PROPERTIES.get(ALIASES.get(name, name))
        if prop is None:
            raise InvalidPropertyError(f"properties: unknown property {name!r}; {_valid()}")
        if prop.only_2d and ndim != 2:
            raise InvalidPropertyError(f"properties: {name!r} is defined for 2D labels only; these labels are {ndim}D")
        if prop.intensity and not has_intensity:
            raise InvalidPropertyError(
                f"properties: {name!r} needs an intensity image: pass measure(labels, intensity, ...)"
            )
        out.setdefault(prop.name, prop)
    return list(out.values())


def _valid() -> str:
    return f"valid groups: {', '.join(GROUPS)}; valid properties: {', '.join(PROPERTIES)}"


# -- column names and units ----------------------------------------------------------


def unit_token(unit: str | None, scaled: bool) -> str:
    """The unit as written in column names: "µm" -> "um", "Å" -> "A"; "px" without unit and spacing.

    A spacing without a unit (e.g. a GeoTIFF in degrees) gives "unit".
    """
    if unit is None:
        return "unit" if scaled else "px"
    token = re.sub(r"[^A-Za-z0-9]", "", unit.replace("µ", "u").replace("μ", "u").replace("Å", "A"))
    return token or "unit"


def _symbol(unit: str | None, scaled: bool, power: int) -> str:
    base = unit if unit is not None else ("unit" if scaled else "px")
    return base + {1: "", 2: "²", 3: "³"}[power]


def columns(prop: Prop, *, ndim: int, unit: str | None, scaled: bool, channels: list[str]) -> list[tuple[str, str]]:
    """The (column name, unit symbol) pairs of ``prop``; ``channels`` are the column suffixes ("" for none)."""
    axes = "zyx"[3 - ndim :]
    if prop.name == "bbox":
        return [(f"bbox_{a}{end}_px", "px") for end in "01" for a in axes]
    stem = prop.stem.replace("area", "volume") if ndim == 3 and prop.dim == "A" else prop.stem
    token, suffix = "", ""
    if prop.dim in ("L", "A"):
        power = 1 if prop.dim == "L" else ndim
        token = unit_token(unit, scaled) + ("" if power == 1 else str(power))
        suffix = _symbol(unit, scaled, power)
    elif prop.dim == "rad":
        token = suffix = "rad"
    parts = [[stem]]
    if prop.per_axis:
        parts.append(list(axes))
    parts.append(channels if prop.per_channel else [""])
    out = []
    for head in _product(parts):
        name = "_".join(p for p in head + [token] if p)
        out.append((name, suffix))
    return out


def _product(parts: list[list[str]]) -> list[list[str]]:
    out = [[]]
    for options in parts:
        out = [head + [o] for head in out for o in options]
    return out


def values(prop: Prop, raw: dict, spacing: tuple[float, ...]) -> list[np.ndarray]:
    """The column values of ``prop`` from the per-object measurements ``raw`` (see ``tiled.measure_objects``).

    Formulas follow scikit-image's: areas are ``pixel count * prod(spacing)``, the extent
    divides areas, the equivalent diameter is ``(2 * ndim * area / pi) ** (1 / ndim)``.
    """
    ndim = len(spacing)
    voxel = np.prod(np.asarray(spacing, dtype=np.float64))
    count = raw["count"]
    name = prop.name
    if name == "centroid":
        return [raw["centroid"][:, a] * spacing[a] for a in range(ndim)]
    if name == "bbox":
        return [raw["lo"][:, a] for a in range(ndim)] + [raw["hi"][:, a] for a in range(ndim)]
    if name == "area":
        return [count * voxel]
    if name == "num_pixels":
        return [count]
    bbox_area = np.prod(raw["hi"] - raw["lo"], axis=1) * voxel
    if name == "area_bbox":
        return [bbox_area]
    if name == "extent":
        return [(count * voxel) / bbox_area]
    if name == "equivalent_diameter_area":
        return [(2 * ndim * (count * voxel) / math.pi) ** (1 / ndim)]
    if name == "circularity":
        perimeter = raw["perimeter"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 4 * math.pi * (count * voxel) / perimeter**2
        return [np.where(perimeter > 0, out, np.nan)]
    if name == "intensity_integrated":
        stat = raw["intensity_sum"]
        return [stat[:, c] * voxel for c in range(stat.shape[1])]
    if name == "centroid_weighted":
        stat = raw["centroid_weighted"]  # (n, ndim, C), pixels
        return [stat[:, a, c] * spacing[a] for a in range(ndim) for c in range(stat.shape[2])]
    if prop.per_channel:
        stat = raw[name]
        return [stat[:, c] for c in range(stat.shape[1])]
    return [raw[name]]
