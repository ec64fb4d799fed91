"""`Image`: a lazily read image with its axes, pixel size and channel names."""

from __future__ import annotations

import operator
from pathlib import Path

import numpy as np
import xxhash

from ..errors import InvalidImageError
from .identity import sample_digest
from .metadata import (
    check_axes,
    check_channel_names,
    check_dtype,
    check_shape,
    check_spacing,
    fit_channel_names,
    guess_axes,
    normalise_unit,
)
from .views import View


class Image:
    """An image read lazily, with its metadata; made by :func:`samkit.io.open_image`.

    Array-like (``shape``, ``dtype``, ``ndim``, numpy-style indexing, ``np.asarray``):
    indexing reads only the pixels asked for, from level 0.

    Parameters
    ----------
    levels : array-like or list of array-likes
        Level 0 (full resolution) first, then the reduced levels of a pyramid.
        Anything with ``shape``, ``dtype`` and ``__getitem__`` (numpy, zarr, dask).
    axes : str, optional
        One letter of "TCZYXS" per axis; guessed from the shape when None
        (see :func:`samkit.io.metadata.guess_axes`).
    spacing : dict or float or sequence of float, optional
        Pixel size of the spatial axes, e.g. ``{"Y": 0.65, "X": 0.65}``.
    unit : str, optional
        Unit of ``spacing`` ("um", "micron" and "µm" all become "µm").
    channel_names : list of str, optional
        One name per channel (the C axis, else the S axis, else one).
    path : str or Path, optional
        The file the image was read from.
    source : object, optional
        Owner of the open file: has ``identity() -> str`` and ``close()``.
    view : str
        How these levels were derived from the source (e.g. "plane(Z=3)"), for ``identity()``.
    """

    def __init__(self, levels, axes=None, *, spacing=None, unit=None, channel_names=None, path=None, source=None, view=""):
        levels = list(levels) if isinstance(levels, (list, tuple)) else [levels]
        self._path = None if path is None else Path(path)
        name = self._name(levels[0].shape)
        shape = check_shape(levels[0].shape, name)
        dtype = check_dtype(levels[0].dtype, name)
        for level in levels[1:]:
            if len(level.shape) != len(shape) or np.dtype(level.dtype) != dtype:
                raise InvalidImageError(f"the levels of {name} differ in dimensions or dtype")
        self._levels = levels
        self._axes = guess_axes(shape) if axes is None else check_axes(axes, shape, name)
        spacing = check_spacing(spacing, self._axes)
        self._spacing = {a: spacing[a] for a in self._axes if a in spacing}
        self._unit = normalise_unit(unit)
        self._channel_names = check_channel_names(channel_names, self._axes, shape)
        self._source = source
        self._view = view  # how this image was derived from its source, e.g. "plane(Z=3)"
        self._yxc = None

    # -- description -------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of level 0."""
        return tuple(int(n) for n in self._levels[0].shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._levels[0].dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def axes(self) -> str:
        """One letter per axis: T time, C channels, Z planes, Y rows, X columns, S RGB(A) samples."""
        return self._axes

    @property
    def spacing(self) -> dict[str, float]:
        """Pixel size of level 0 per spatial axis, e.g. ``{"Y": 0.65, "X": 0.65}``; only known axes."""
        return dict(self._spacing)

    @property
    def unit(self) -> str | None:
        """Unit of ``spacing`` ("µm", "nm", "m", ...), None when unknown."""
        return self._unit

    @property
    def channel_names(self) -> list[str] | None:
        return None if self._channel_names is None else list(self._channel_names)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def levels(self) -> list:
        """Lazy arrays of the pyramid, level 0 (full resolution) first; one for flat images."""
        return list(self._levels)

    @property
    def level_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(n) for n in level.shape) for level in self._levels]

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        spacing = "{" + ", ".join(f"{a!r}: {v:g}" for a, v in self._spacing.items()) + "}"
        parts = [f"shape={self.shape}", f"dtype={self.dtype}", f"axes={self.axes!r}"]
        parts += [f"spacing={spacing}", f"unit={self.unit!r}"]
        if self._channel_names:
            parts.append(f"channel_names={self._channel_names}")
        if len(self._levels) > 1:
            parts.append(f"levels={len(self._levels)}")
        if self._path is not None:
            parts.append(f"path='{self._path}'")
        return f"Image({', '.join(parts)})"

    def _name(self, shape=None) -> str:
        return f"'{self._path}'" if self._path is not None else f"array of shape {tuple(shape or self.shape)}"

    # -- pixels ------------------------------------------------------------
    def __getitem__(self, key) -> np.ndarray:
        """Numpy-style indexing of level 0; reads only the pixels asked for."""
        return np.asarray(self._levels[0][key])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def _derive(self, levels, axes, *, spacing, channel_names, view) -> Image:
        return Image(
            levels, axes, spacing=spacing, unit=self._unit, channel_names=channel_names,
            path=self._path, source=self._source, view=self._view + view,
        )  # fmt: skip

    def with_metadata(self, *, axes=None, spacing=None, unit=None, channel_names=None) -> Image:
        """The same pixels with metadata replaced; values not given are kept where they still fit.

        ``spacing`` updates the known axes (a number sets Y and X).
        """
        new_axes = self._axes if axes is None else check_axes(axes, self.shape, self._name())
        merged = {a: v for a, v in self._spacing.items() if a in new_axes}
        merged.update(check_spacing(spacing, new_axes))
        if channel_names is None:
            channel_names = fit_channel_names(self._channel_names, new_axes, self.shape)
        return Image(
            self._levels, new_axes, spacing=merged, unit=self._unit if unit is None else unit,
            channel_names=channel_names, path=self._path, source=self._source, view=self._view,
        )  # fmt: skip

    def plane(self, **index) -> Image:
        """One index along non-spatial axes, e.g. ``image.plane(Z=12, T=0)``; lazy, metadata kept.

        The selected axes are removed. Reduced pyramid levels whose axis is
        smaller (Z downsampled in OME-Zarr) get the corresponding plane.
        """
        fixed = {}
        for name, i in index.items():
            axis = name.upper()
            if axis not in self._axes or axis in "YX":
                raise InvalidImageError(
                    f"plane({name}=...): {self._name()} has no non-spatial axis {axis!r} (axes {self._axes!r}); "
                    "plane() selects along T, C, Z or S; crop Y and X by indexing or read()"
                )
            position = self._axes.index(axis)
            size = self.shape[position]
            try:
                i = operator.index(i)
            except TypeError:
                raise InvalidImageError(f"plane({axis}={i!r}): the index must be an integer") from None
            if not -size <= i < size:
                raise InvalidImageError(f"plane({axis}={i}) is outside {self._name()}, whose {axis} axis has {size} entries")
            fixed[position] = i % size
        order = [a for a in range(self.ndim) if a not in fixed]
        levels = [
            View(level, {a: i * int(level.shape[a]) // self.shape[a] for a, i in fixed.items()}, order)
            for level in self._levels
        ]
        axes = "".join(self._axes[a] for a in order)
        names = self._channel_names
        channel_axis = "C" if "C" in self._axes else "S"
        if names is not None and self._axes.find(channel_axis) in fixed:
            names = [names[fixed[self._axes.index(channel_axis)]]]
        view = "plane(" + ",".join(f"{self._axes[a]}={i}" for a, i in sorted(fixed.items())) + ")"
        spacing = {a: v for a, v in self._spacing.items() if a in axes}
        names = fit_channel_names(names, axes, levels[0].shape)
        return self._derive(levels, axes, spacing=spacing, channel_names=names, view=view)

    def yxc(self) -> Image:
        """This image as (H, W, C) with axes "YXC", the layout the segmentation engine tiles.

        C is the C axis, else the S (RGB) axis, else a new axis of size 1.

        Raises
        ------
        InvalidImageError
            When axes other than Y, X and channels have more than one entry:
            select one plane first, e.g. ``image.plane(Z=0)``.
        """
        if self._axes == "YXC":
            return self
        if self._yxc is not None:
            return self._yxc
        sizes = dict(zip(self._axes, self.shape))
        extra = {a: n for a, n in sizes.items() if a not in "YXCS" and n > 1}
        if sizes.get("C", 1) > 1 and sizes.get("S", 1) > 1:
            extra["C"] = sizes["C"]
        if extra:
            raise InvalidImageError(
                f"{self._name()} has axes {self._axes!r} with sizes {sizes}; 2D segmentation needs one plane "
                f"of Y, X and channels: select it first with .plane({', '.join(f'{a}=...' for a in extra)})"
            )
        channel = next((a for a in "CS" if sizes.get(a, 1) > 1), next((a for a in "CS" if a in sizes), None))
        order = [self._axes.index("Y"), self._axes.index("X"), None if channel is None else self._axes.index(channel)]
        fixed = {i: 0 for i, a in enumerate(self._axes) if a not in "YX" and a != channel}
        levels = [View(level, fixed, order) for level in self._levels]
        spacing = {a: v for a, v in self._spacing.items() if a in "YX"}
        names = fit_channel_names(self._channel_names, "YXC", levels[0].shape)
        self._yxc = self._derive(levels, "YXC", spacing=spacing, channel_names=names, view="yxc")
        return self._yxc

    def read(self, y0: int, x0: int, y1: int, x1: int, level: int = 0) -> np.ndarray:
        """Read the region [y0:y1, x0:x1] of a pyramid level as a (y1 - y0, x1 - x0, C) array.

        Parameters
        ----------
        y0, x0, y1, x1 : int
            Corners of the region in that level's pixels, (y, x), end exclusive;
            0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width.
        level : int
            Pyramid level, 0 = full resolution.

        Returns
        -------
        (y1 - y0, x1 - x0, C) ndarray
            Channels last, as in :meth:`yxc`; only this region is read.
        """
        view = self.yxc()
        if not isinstance(level, (int, np.integer)) or not 0 <= level < len(view._levels):
            raise InvalidImageError(f"level {level!r} does not exist: {self._name()} has levels 0 to {len(view._levels) - 1}")
        height, width = view.level_shapes[level][:2]
        y0, x0, y1, x1 = (operator.index(v) for v in (y0, x0, y1, x1))
        if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
            raise InvalidImageError(
                f"region y0={y0}, x0={x0}, y1={y1}, x1={x1} is outside level {level} of {self._name()} "
                f"(height {height}, width {width}); need 0 <= y0 < y1 <= {height} and 0 <= x0 < x1 <= {width}"
            )
        return np.ascontiguousarray(view._levels[level][y0:y1, x0:x1, :])

    # -- identity and files ------------------------------------------------
    def identity(self) -> str:
        """A cheap identity of the pixels, for caches (hex string).

        Files: path, size, modification time and the file's first and last
        64 KiB; arrays in memory: shape, dtype and 16 blocks sampled over the
        image. Also depends on the axes and on ``plane()``/``yxc()``, not on
        spacing or channel names.

        It reads almost nothing, so it misses changes elsewhere in the
        pixels: it names an embedding store, and a session checks each
        window's pixels against the digest stored with its embedding (see
        :mod:`samkit.io.identity`).
        """
        hasher = xxhash.xxh3_64()
        if self._source is not None:
            hasher.update(self._source.identity().encode())
        else:
            sample_digest(self._levels[0], self._axes, hasher)
        hasher.update(f"|{self._axes}|{self.shape}|{self.dtype.str}|{self._view}".encode())
        return hasher.hexdigest()

    def close(self) -> None:
        """Close the file (shared by all views of it); a later read opens it again."""
        if self._source is not None:
            self._source.close()

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
