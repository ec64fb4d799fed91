"""The arguments of ``measure`` checked once and turned into block readers, spacing, unit and channel names."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..errors import InvalidImageError
from ..io.image import Image
from ..io.metadata import normalise_unit
from ..labels import LabelImage


class Labels:
    """Reads blocks of a label image of any kind: numpy, zarr, dask, LabelImage or Image.

    ``shape`` is spatial ((Z,) Y, X); ``chunks`` the storage chunks when known (else None).
    """

    def __init__(self, labels):
        self.image = labels if isinstance(labels, Image) else None
        if isinstance(labels, LabelImage):
            labels = labels.array
        if isinstance(labels, (list, tuple)):
            labels = np.asarray(labels)
        if not all(hasattr(labels, a) for a in ("shape", "dtype", "__getitem__")):
            raise InvalidImageError(
                f"labels: expected an integer array (numpy, zarr, dask), a LabelImage or an Image, "
                f"not {type(labels).__name__}"
            )
        dtype = np.dtype(labels.dtype)
        if dtype.kind not in "iu":
            fix = "labels.astype(int) if the values are whole numbers" if dtype.kind == "f" else "skimage.measure.label(mask)"
            raise InvalidImageError(
                f"labels: expected integer object ids (0 = background), not dtype {dtype}; use {fix}"
            )
        self.dtype = dtype
        if self.image is not None:
            self._key, self.shape = _spatial_key(self.image, "labels", channels=False)
        else:
            self.shape = tuple(int(n) for n in labels.shape)
            self._key, self._array = None, labels
        if len(self.shape) not in (2, 3):
            raise InvalidImageError(
                f"labels: expected a 2D (Y, X) or 3D (Z, Y, X) label image, not shape {tuple(labels.shape)}"
            )
        if 0 in self.shape:
            raise InvalidImageError(f"labels: the label image is empty (shape {self.shape})")
        self.chunks = _chunks(labels) if self.image is None else None

    def read(self, box: tuple[slice, ...]) -> np.ndarray:
        if self._key is None:
            return np.asarray(self._array[box])
        return _read(self.image, self._key(box), box, None)


class Intensity:
    """Reads blocks of an intensity image as (..., C) arrays: channels last, or as an Image's axes say."""

    def __init__(self, intensity, shape: tuple[int, ...]):
        self.image = intensity if isinstance(intensity, Image) else None
        self.names = None
        if self.image is not None:
            self._key, spatial = _spatial_key(self.image, "intensity", channels=True)
            channel_axis = self._channel_axis(self.image)
            self.channels = 1 if channel_axis is None else self.image.shape[self.image.axes.index(channel_axis)]
            names = self.image.channel_names
            self.names = names if names and len(names) == self.channels else None
        else:
            if isinstance(intensity, (list, tuple)):
                intensity = np.asarray(intensity)
            if not all(hasattr(intensity, a) for a in ("shape", "dtype", "__getitem__")):
                raise InvalidImageError(
                    f"intensity: expected an array (numpy, zarr, dask) or an Image, not {type(intensity).__name__}"
                )
            spatial = tuple(int(n) for n in intensity.shape[: len(shape)])
            extra = tuple(int(n) for n in intensity.shape[len(shape) :])
            if len(extra) > 1 or spatial != shape:
                raise InvalidImageError(
                    f"intensity: shape {tuple(intensity.shape)} does not match labels of shape {shape}; expected "
                    f"{shape} or {shape + ('C',)} (channels last; for channels first use "
                    "np.moveaxis(intensity, 0, -1) or samkit.open_image(intensity, axes='CYX'))"
                )
            self.channels = extra[0] if extra else 1
            self._key, self._array, self._last = None, intensity, bool(extra)
        if spatial != shape:
            raise InvalidImageError(f"intensity: spatial shape {spatial} does not match labels of shape {shape}")
        self.dtype = np.dtype(intensity.dtype)
        if self.dtype.kind not in "biuf":
            raise InvalidImageError(f"intensity: expected a numeric image, not dtype {self.dtype}")
        if self.channels < 1:
            raise InvalidImageError("intensity: has no channels (a channel axis of length 0)")

    @staticmethod
    def _channel_axis(image: Image) -> str | None:
        sizes = dict(zip(image.axes, image.shape))
        return next((a for a in "CS" if sizes.get(a, 1) > 1), next((a for a in "CS" if a in sizes), None))

    def read(self, box: tuple[slice, ...]) -> np.ndarray:
        """The block ``box`` as (..., C)."""
        if self._key is None:
            block = np.asarray(self._array[box])
            return block if self._last else block[..., None]
        return _read(self.image, self._key(box), box, self.channels)


def _read(image: Image, key: tuple, box: tuple[slice, ...], channels: int | None) -> np.ndarray:
    """``image[key]`` with its spatial axes in (Z, Y, X) order (then channels, when ``channels``)."""
    block = np.asarray(image[key])
    kept = [a for a, k in zip(image.axes, key) if not isinstance(k, int)]
    order = [a for a in "ZYX" if a in kept] + [a for a in kept if a not in "ZYX"]
    block = np.transpose(block, [kept.index(a) for a in order])
    size = tuple(s.stop - s.start for s in box)
    return block.reshape(size if channels is None else size + (channels,))


def _spatial_key(image: Image, what: str, *, channels: bool):
    """A function (spatial box) -> key into ``image``, and the image's spatial shape."""
    sizes = dict(zip(image.axes, image.shape))
    spatial = [a for a in "ZYX" if a in sizes]
    channel = Intensity._channel_axis(image) if channels else None
    others = {a: n for a, n in sizes.items() if a not in spatial and a != channel and n > 1}
    if others:
        raise InvalidImageError(
            f"{what}: the image has axes {image.axes!r} with sizes {sizes}; select one plane first, "
            f"e.g. image.plane({', '.join(f'{a}=0' for a in others)})"
        )

    def key(box):
        by_axis = dict(zip(spatial, box))
        return tuple(by_axis[a] if a in by_axis else (slice(None) if a == channel else 0) for a in image.axes)

    return key, tuple(sizes[a] for a in spatial)


def _chunks(array) -> tuple[int, ...] | None:
    chunks = getattr(array, "chunksize", None) or getattr(array, "chunks", None)  # dask: chunksize; zarr: chunks
    if not isinstance(chunks, tuple) or len(chunks) != len(array.shape):
        return None
    if all(isinstance(c, numbers.Integral) for c in chunks):
        return tuple(int(c) for c in chunks)
    return None


def scale(spacing, unit, ndim: int, images) -> tuple[tuple[float, ...], str | None]:
    """(spacing per axis, unit): explicit values win, then the first Image with a pixel size, else pixels."""
    unit = normalise_unit(unit) if unit is not None else None
    images = [im for im in images if im is not None]
    if spacing is not None:
        values = _check_spacing(spacing, ndim)
        if unit is None:
            unit = next((im.unit for im in images if im.unit is not None), None)
        return values, unit
    for image in images:
        known = image.spacing
        axes = "ZYX"[3 - ndim :]
        if not known:
            continue
        missing = [a for a in axes if a not in known]
        if missing:
            warnings.warn(
                f"the image gives no pixel size for axis {', '.join(missing)}; measuring in pixels "
                f"(pass spacing=(...) with {ndim} values to measure in {image.unit or 'physical units'})",
                UserWarning,
                stacklevel=3,
            )
            return (1.0,) * ndim, unit
        return tuple(float(known[a]) for a in axes), unit if unit is not None else image.unit
    return (1.0,) * ndim, unit


def _check_spacing(spacing, ndim: int) -> tuple[float, ...]:
    if isinstance(spacing, numbers.Real):
        values = [spacing] * ndim
    else:
        try:
            values = list(spacing)
        except TypeError:
            raise InvalidImageError(
                f"spacing must be a number or a sequence of {ndim} numbers, not {spacing!r}"
            ) from None
        if len(values) != ndim:
            names = "(dz, dy, dx)" if ndim == 3 else "(dy, dx)"
            raise InvalidImageError(
                f"spacing {tuple(values)} has {len(values)} values for {ndim}D labels; "
                f"give {ndim} values {names} or one number"
            )
    out = []
    for value in values:
        if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
            raise InvalidImageError(f"spacing must hold positive finite numbers, not {value!r} (in {spacing!r})")
        out.append(float(value))
    return tuple(out)


def channel_names(names, intensity: Intensity | None) -> list[str]:
    """Column suffixes per channel: the given names, an Image's channel names, else ch0, ch1 ('' for one)."""
    if intensity is None:
        if names is not None:
            raise InvalidImageError("channel_names: given without an intensity image")
        return []
    count = intensity.channels
    if names is not None:
        names = [names] if isinstance(names, str) else [str(n) for n in names]
        if len(names) != count:
            raise InvalidImageError(f"channel_names: {len(names)} names {names} for {count} intensity channels")
    else:
        names = intensity.names
    if names is None:
        return [""] if count == 1 else [f"ch{c}" for c in range(count)]
    if len(set(names)) != len(names) or "" in names:
        raise InvalidImageError(f"channel_names: {names} must be distinct and not empty")
    return list(names)
