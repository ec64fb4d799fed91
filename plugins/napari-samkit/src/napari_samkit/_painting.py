"""napari's own labels tools (paint brush, eraser, fill, polygon) on the samkit labels layer, journaled.

napari paints by writing into its layer's data as the mouse moves, and at the
end of the gesture emits the layer's ``paint`` event with every change (each
a bounding box, the mask of the pixels it changed and their new label). The
samkit labels layer's data is a :class:`PaintableLabels`: it reads the
engine's label image, and holds napari's writes of the gesture in progress
in copies of the chunks they touch, so the engine's array (and its autosave
folder) is never written behind the journal's back. :func:`journal_stroke`
turns the paint event into one :meth:`samkit.LabelImage.set_pixels`: one
journaled, autosaved, undoable step per gesture; then the copies are dropped.
"""

from __future__ import annotations

import numpy as np


class PaintableLabels:
    """A (H, W) array-like over a :class:`samkit.LabelImage` that napari's labels tools can write to.

    Reading gives the label image with the writes of the gesture in
    progress on top; writing (basic slices, or one integer array per axis)
    goes to copies of the touched chunks until :meth:`take_writes`.
    """

    ndim = 2

    def __init__(self, labels) -> None:
        self.labels = labels
        self.shape, self.dtype = tuple(labels.shape), labels.dtype
        self.chunks = tuple(labels.chunks)
        self._scratch: dict[tuple[int, int], np.ndarray] = {}  # chunk index -> its pixels with the writes

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def writing(self) -> bool:
        """Whether napari has written pixels that are not journaled yet (a gesture in progress)."""
        return bool(self._scratch)

    def take_writes(self) -> None:
        """Drop the gesture's writes (they are journaled, or refused): reading shows the label image again."""
        self._scratch = {}

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        out = np.asarray(self.labels[key])
        if self._scratch:
            out = self._apply(key, np.array(out), create=False)
        return out[()] if out.ndim == 0 else out  # one pixel: a scalar, as numpy gives

    def __setitem__(self, key, value) -> None:
        self._apply(key, np.asarray(value, self.dtype), create=True)

    def _apply(self, key, values: np.ndarray, create: bool):
        """Reading (``create`` False): copy the written chunks' pixels into ``values``, the key's result.
        Writing: copy ``values`` into the chunks (copied in from the label image when first written)."""
        key = _full_key(key)
        if any(isinstance(k, (np.ndarray, list)) for k in key):  # one integer array per axis
            rows, cols = np.broadcast_arrays(*(np.asarray(k, np.int64) for k in key))
            flat = np.broadcast_to(values, rows.shape).reshape(-1) if create else values.reshape(-1)
            rows, cols = rows.ravel(), cols.ravel()
            for chunk, hit in _groups(rows // self.chunks[0], cols // self.chunks[1]):
                pixels = self._chunk(chunk, create)
                if pixels is not None:
                    local = rows[hit] - chunk[0] * self.chunks[0], cols[hit] - chunk[1] * self.chunks[1]
                    if create:
                        pixels[local] = flat[hit]
                    else:
                        flat[hit] = pixels[local]
            return values
        rows, cols = (np.arange(*k.indices(n)) if isinstance(k, slice) else np.array([int(k) % n])
                      for k, n in zip(key, self.shape))  # fmt: skip
        if create:  # read from: the values, spread over the key's result
            grid = np.broadcast_to(values, _basic_shape(key, rows, cols)).reshape(len(rows), len(cols))
        else:  # written into: a view of the result
            grid = values.reshape(len(rows), len(cols))
        ch, cw = self.chunks
        for (cy,), in_rows in _groups(rows // ch):
            for (cx,), in_cols in _groups(cols // cw):
                pixels = self._chunk((cy, cx), create)
                if pixels is None:
                    continue
                there = np.ix_(rows[in_rows] - cy * ch, cols[in_cols] - cx * cw)
                here = np.ix_(in_rows, in_cols)
                if create:
                    pixels[there] = grid[here]
                else:
                    grid[here] = pixels[there]
        return values

    def _chunk(self, chunk, create: bool):
        """The written copy of a chunk (copied in first if ``create``), or None."""
        if chunk not in self._scratch and create:
            y0, x0 = chunk[0] * self.chunks[0], chunk[1] * self.chunks[1]
            self._scratch[chunk] = np.array(self.labels[y0 : y0 + self.chunks[0], x0 : x0 + self.chunks[1]])
        return self._scratch.get(chunk)


def _full_key(key) -> tuple:
    """A 2D index as two entries (slices, ints or integer arrays)."""
    key = key if isinstance(key, tuple) else (key,)
    at = next((i for i, k in enumerate(key) if k is Ellipsis), None)
    if at is not None:
        key = key[:at] + (slice(None),) * (2 - len(key) + 1) + key[at + 1 :]
    return key + (slice(None),) * (2 - len(key))


def _basic_shape(key, rows, cols) -> tuple:
    """The result shape of a key of slices and ints."""
    return tuple(len(a) for k, a in zip(key, (rows, cols)) if isinstance(k, slice))


def _groups(*chunk_ids):
    """(chunk index tuple, positions) for each distinct chunk in the per-axis chunk id arrays."""
    ids = np.stack(chunk_ids, axis=-1)
    found, inverse = np.unique(ids, axis=0, return_inverse=True)
    for i, chunk in enumerate(found):
        yield tuple(int(c) for c in chunk), np.flatnonzero(inverse.ravel() == i)


def stroke_pixels(atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (ys, xs, values) a napari ``paint`` event's atoms wrote, in order (a later write of a pixel wins).

    An atom is a masked box edit (``slice_key``, ``mask`` or None for the
    whole box, ``new_value``) or napari's (indices, old values, new values).
    """
    ys, xs, values = [], [], []
    for atom in atoms:
        if hasattr(atom, "slice_key"):
            (rows, cols) = atom.slice_key[-2:]
            height, width = rows.stop - rows.start, cols.stop - cols.start
            mask = np.ones((height, width), bool) if atom.mask is None else np.asarray(atom.mask).reshape(height, width)
            y, x = np.nonzero(mask)
            ys.append(y + rows.start), xs.append(x + cols.start)
            values.append(np.full(y.size, int(atom.new_value), np.int64))
        else:
            indices, _, new = atom
            y, x = (np.asarray(i, np.int64).ravel() for i in indices[-2:])
            ys.append(y), xs.append(x)
            values.append(np.broadcast_to(np.asarray(new, np.int64), y.shape).ravel())
    if not ys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ys), np.concatenate(xs), np.concatenate(values)


def journal_stroke(layer, atoms):
    """Write the pixels of a napari paint event into the label image as one step; returns the changed box.

    ``layer`` is the samkit labels layer (data: :class:`PaintableLabels`). The
    gesture's held writes are dropped first, so that what the layer shows
    next is the label image, edited or, if the edit was refused (a
    :class:`samkit.errors.SamkitError` is raised), as it was. napari's own
    undo history of the layer is emptied: undo and redo go through samkit's journal.
    """
    data = layer.data
    ys, xs, values = stroke_pixels(atoms)
    data.take_writes()
    reset = getattr(layer, "_reset_history", None)  # napari keeps the old pixels too: not needed, samkit's journal has them
    if reset is not None:
        reset()
    try:
        return data.labels.set_pixels(ys, xs, values) if ys.size else None
    finally:
        layer.refresh()
