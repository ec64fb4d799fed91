"""From napari image layers to the 2D samkit image a session segments.

A napari image layer may be RGB, 16-bit, n-dimensional, multiscale, or lazy
(dask, zarr). samkit segments 2D planes with channels, so a layer with more
dimensions gives its *current slice*; extra single-channel layers of the
same shape (napari's usual way to hold the channels of one image) are
stacked as channels. Nothing is read here: the result is lazy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from samkit.errors import InvalidImageError
from samkit.io import Image
from samkit.io.metadata import normalise_unit

from ._layers import same

LEADING = "TCZ"  # names given to a layer's leading (non-displayed) axes, innermost last


@dataclass
class Source:
    """The plane of one or more image layers that a session segments.

    Attributes
    ----------
    layer : napari.layers.Image
        The layer chosen in the widget.
    channel_layers : tuple of napari.layers.Image
        Further layers stacked as channels after ``layer``.
    image : samkit.io.Image
        The lazy 2D (Y, X[, C]) image, with the layer's pixel size and unit.
    scale, translate : (float, float)
        The layer's (y, x) transform: world = pixel * scale + translate.
    plane : dict of int to int
        Leading axis of the layer -> index of the slice taken (empty for 2D layers).
    """

    layer: object
    channel_layers: tuple
    image: Image
    scale: tuple[float, float]
    translate: tuple[float, float]
    plane: dict = field(default_factory=dict)

    @property
    def layers(self) -> tuple:
        return (self.layer, *self.channel_layers)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self.image.shape[:2])

    @property
    def multiscale(self) -> bool:
        return len(self.image.levels) > 1

    def describe_plane(self) -> str:
        """E.g. "axis 0 = 12" for the slice taken from a 3D layer ("" for 2D)."""
        return ", ".join(f"axis {a} = {i}" for a, i in sorted(self.plane.items()))

    def to_pixels(self, layer, coords) -> np.ndarray:
        """(N, 2) data coordinates of a 2D ``layer`` -> (N, 2) (y, x) pixel coordinates of the image."""
        world = np.asarray(coords, float).reshape(-1, 2) * layer.scale[-2:] + layer.translate[-2:]
        return (world - self.translate) / self.scale

    def from_pixels(self, layer, pixels) -> np.ndarray:
        """(N, 2) (y, x) pixel coordinates of the image -> data coordinates of a 2D ``layer``."""
        world = np.asarray(pixels, float).reshape(-1, 2) * self.scale + self.translate
        return (world - layer.translate[-2:]) / layer.scale[-2:]

    def world_to_pixels(self, world) -> np.ndarray:
        """A world position (as many axes as the viewer) -> (y, x) pixel coordinates."""
        return (np.asarray(world, float)[-2:] - self.translate) / self.scale


def source_from_layers(layer, channel_layers=(), world_point=None) -> Source:
    """The lazy 2D image a session segments, from image layers.

    Parameters
    ----------
    layer : napari.layers.Image
        2D or nD; RGB(A) or single-channel; any dtype samkit reads; multiscale or not.
    channel_layers : sequence of napari.layers.Image
        Extra single-channel layers of the same shape, stacked as channels
        (the model sees the first three, measurement all).
    world_point : sequence of float, optional
        The viewer's current position (``viewer.dims.point``): picks the
        slice of an nD layer (default: index 0 on every leading axis).

    Returns
    -------
    Source

    Raises
    ------
    samkit.errors.InvalidImageError
        Layers that cannot be stacked, too many dimensions, unsupported dtypes.
    """
    channel_layers = tuple(c for c in channel_layers if not same(c, layer))
    plane = _plane(layer, world_point)
    image = _as_image(layer, plane)
    if channel_layers:
        if layer.rgb:
            raise InvalidImageError(f"'{layer.name}' is RGB: extra channel layers can only join single-channel layers")
        images = [image]
        for other in channel_layers:
            if other.rgb or other.ndim != layer.ndim or _levels_count(other) != _levels_count(layer):
                raise InvalidImageError(
                    f"'{other.name}' cannot be stacked with '{layer.name}': channel layers must be single-channel, "
                    "with the same dimensions and the same number of pyramid levels"
                )
            images.append(_as_image(other, _plane(other, world_point)))
            if images[-1].shape[:2] != image.shape[:2]:
                shapes = f"'{other.name}' has shape {images[-1].shape[:2]}, '{layer.name}' {image.shape[:2]}"
                raise InvalidImageError(f"channel layers must have the image's shape: {shapes}")
        levels = [_Stack([im.levels[i] for im in images]) for i in range(len(image.levels))]
        image = Image(levels, "YXC", channel_names=[lay.name for lay in (layer, *channel_layers)])
    scale = tuple(float(s) for s in layer.scale[-2:])
    translate = tuple(float(t) for t in layer.translate[-2:])
    unit = normalise_unit(str(layer.units[-1])) if getattr(layer, "units", None) is not None else None
    if unit is not None or scale != (1.0, 1.0):
        image = image.with_metadata(spacing={"Y": scale[0], "X": scale[1]}, unit=unit)
    return Source(layer, channel_layers, image, scale, translate, plane)


def _levels_count(layer) -> int:
    return len(layer.data) if layer.multiscale else 1


def _plane(layer, world_point) -> dict:
    """Leading axis -> index of the current slice of ``layer``."""
    lead = layer.ndim - 2
    if lead <= 0:
        return {}
    if lead > len(LEADING):
        raise InvalidImageError(f"'{layer.name}' has {layer.ndim} dimensions; samkit takes at most {len(LEADING) + 2}")
    shape = layer.data[0].shape if layer.multiscale else layer.data.shape
    if world_point is None:
        return {a: 0 for a in range(lead)}
    world = np.asarray(world_point, float)[-layer.ndim :]
    data = (world[:lead] - layer.translate[:lead]) / layer.scale[:lead]
    return {a: int(np.clip(np.round(data[a]), 0, shape[a] - 1)) for a in range(lead)}


def _as_image(layer, plane: dict) -> Image:
    levels = list(layer.data) if layer.multiscale else [layer.data]
    lead = layer.ndim - 2
    names = LEADING[len(LEADING) - lead :] if lead > 0 else ""
    image = Image(levels, names + "YX" + ("S" if layer.rgb else ""))
    if plane:
        image = image.plane(**{names[a]: i for a, i in plane.items()})
    return image


class _Stack:
    """Lazy (H, W, C) array-like of C lazy (H, W) arrays (one per channel layer)."""

    ndim = 3

    def __init__(self, arrays) -> None:
        self.arrays = list(arrays)
        self.shape = (*self.arrays[0].shape[:2], len(self.arrays))
        self.dtype = np.result_type(*[np.dtype(a.dtype) for a in self.arrays])

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (self.ndim - len(key) + 1) + key[at + 1 :]
        key = key + (slice(None),) * (self.ndim - len(key))
        spatial, channel = key[:2], key[2]
        if isinstance(channel, (int, np.integer)):
            return np.asarray(self.arrays[channel][spatial]).astype(self.dtype, copy=False)
        chosen = self.arrays[channel] if isinstance(channel, slice) else [self.arrays[i] for i in np.asarray(channel)]
        return np.stack([np.asarray(a[spatial]).astype(self.dtype, copy=False) for a in chosen], axis=-1)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)
