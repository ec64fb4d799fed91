"""Lazy views of array-likes: some axes fixed to one index, the others reordered, axes of size 1 added.

A view reads from its base only the bounding block that a numpy-style index
asks for (ints and slices with a positive step, which every lazy array
supports), then applies the rest (negative steps, integer or boolean arrays)
to that block in memory.
"""

from __future__ import annotations

import numbers

import numpy as np


def region_text(key) -> str:
    """A numpy index as text for messages: ``region [0:256, 0:256, :]``, or ``the whole array``."""
    key = key if isinstance(key, tuple) else (key,)
    if key in ((), (Ellipsis,)):
        return "the whole array"
    parts = []
    for k in key:
        if isinstance(k, slice):
            parts.append(f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}")
        else:
            parts.append("..." if k is Ellipsis else str(k))
    return "region [" + ", ".join(parts) + "]"


def _int_index(k, n: int, axis: int) -> int:
    k = int(k)
    if not -n <= k < n:
        raise IndexError(f"index {k} is out of bounds for axis {axis} with size {n}")
    return k % n


def _expand(key, ndim: int) -> tuple:
    """``key`` as a tuple of exactly ``ndim`` items (Ellipsis expanded, missing axes full)."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is None for k in key):
        raise IndexError("np.newaxis is not supported by lazy images; add the axis to the returned array")
    ellipses = [i for i, k in enumerate(key) if k is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if ellipses:
        at = ellipses[0]
        key = key[:at] + (slice(None),) * (ndim - len(key) + 1) + key[at + 1 :]
    if len(key) > ndim:
        raise IndexError(f"too many indices: {len(key)} for an array of {ndim} dimensions")
    return key + (slice(None),) * (ndim - len(key))


def _split(k, n: int, axis: int) -> tuple:
    """(what to read on this axis, what to apply to the block read) for a non-integer index."""
    if isinstance(k, slice):
        start, stop, step = k.indices(n)
        if step > 0:
            return slice(start, stop, step), slice(None)
        picked = range(start, stop, step)
        if len(picked) == 0:
            return slice(0, 0), slice(None)
        return slice(picked[-1], picked[0] + 1, -step), slice(None, None, -1)
    arr = np.asarray(k)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise IndexError(f"boolean index of shape {arr.shape} does not match axis {axis} of size {n}")
        arr = np.flatnonzero(arr)
    if arr.dtype.kind not in "iu":
        raise IndexError(f"only integers, slices, ellipsis and integer or boolean arrays are valid indices, got {k!r}")
    if arr.size == 0:
        return slice(0, 0), arr.astype(np.intp)
    if arr.min() < -n or arr.max() >= n:
        raise IndexError(f"index array {k!r} is out of bounds for axis {axis} with size {n}")
    arr = arr % n
    low = int(arr.min())
    return slice(low, int(arr.max()) + 1), arr - low


def _is_full(index) -> bool:
    return isinstance(index, slice) and index == slice(None)


class View:
    """A lazy array-like over ``base``: fixed axes dropped, the others reordered, axes of size 1 added.

    Parameters
    ----------
    base : array-like
        Anything with ``shape``, ``dtype`` and basic ``__getitem__`` (numpy,
        zarr, dask, a TIFF level).
    fixed : dict of int to int
        Base axes dropped from the view, with the index kept.
    order : tuple of (int or None)
        For each axis of the view, the base axis it shows, or None for a new
        axis of size 1.
    """

    def __init__(self, base, fixed=None, order=None):
        fixed = dict(fixed or {})
        order = tuple(range(len(base.shape))) if order is None else tuple(order)
        if isinstance(base, View):  # compose, so that a view of a view reads its base once
            inner_fixed = dict(base.fixed)
            for axis, index in fixed.items():
                if base.order[axis] is not None:
                    inner_fixed[base.order[axis]] = index
            fixed, order, base = inner_fixed, tuple(None if a is None else base.order[a] for a in order), base.base
        shown = sorted(a for a in order if a is not None)
        if sorted(shown + list(fixed)) != list(range(len(base.shape))):
            raise ValueError(f"every base axis must be fixed or shown once: fixed {fixed}, order {order}")
        self.base, self.fixed, self.order = base, fixed, order
        self.shape = tuple(1 if a is None else int(base.shape[a]) for a in order)
        self.dtype = np.dtype(base.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<lazy array shape={self.shape} dtype={self.dtype}>"

    def __array__(self, dtype=None, copy=None):
        data = self[...]
        return data if dtype is None else data.astype(dtype, copy=False)

    def __getitem__(self, key) -> np.ndarray:
        key = _expand(key, self.ndim)
        base_key = [slice(None)] * len(self.base.shape)
        for axis, index in self.fixed.items():
            base_key[axis] = index
        kept = []  # (base axis or None, index applied after reading) for each axis of the result
        for axis, (k, a, n) in enumerate(zip(key, self.order, self.shape)):
            if isinstance(k, numbers.Integral) and not isinstance(k, bool):
                k = _int_index(k, n, axis)
                if a is not None:
                    base_key[a] = k
                continue
            coarse, fine = _split(k, n, axis)
            if a is not None:
                base_key[a] = coarse
            else:
                fine = _split(k, 1, axis)[0] if isinstance(k, slice) else fine
            kept.append((a, fine))
        data = np.asarray(self.base[tuple(base_key)])
        read = sorted(a for a, _ in kept if a is not None)  # the block's axes, in base order
        data = data.transpose([read.index(a) for a, _ in kept if a is not None])
        for position, (a, _) in enumerate(kept):
            if a is None:
                data = np.expand_dims(data, position)
        fine = tuple(f for _, f in kept)
        return data if all(_is_full(f) for f in fine) else data[fine]
