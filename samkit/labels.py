"""``LabelImage``: the label image that interactive segmentation builds, with undo and autosave.

Objects arrive as :class:`samkit.engine.Mask` (bbox + boolean crop) and are written
into a 2D (y, x) label image, 0 = background, held in a zarr array: in memory, or on
disk under ``path`` where every change is durable before the call returns (the folder
layout and why a crash leaves each operation whole or absent: :mod:`samkit._journal`).
Pixels can also be set one by one (brush, eraser, fill: :mod:`samkit.engine.editing`),
and each object carries attributes (class name, score: :mod:`samkit._attributes`); all
of it goes through one journal, so every change is undoable and saved alike.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import zarr

from . import _attributes, _labelsetup, _labelstore, _pixels
from ._journal import autosave_error, has_pixel_record, is_saved
from ._json import jsonable
from .engine.mask import Box, Mask
from .errors import AutosaveError, InvalidImageError, InvalidLabelError, InvalidPromptError

log = logging.getLogger(__name__)

DEFAULT_CHUNKS = (256, 256)  # small: a commit rewrites only the chunks under its bbox


class LabelImage:
    """A 2D (H, W) label image built one object at a time, with undo/redo and autosave.

    Parameters
    ----------
    shape : (H, W)
        Size of the image being segmented.
    path : str or Path, optional
        Folder to autosave to. If it already holds a saved label image, that image is
        reopened and continues where it stopped (``shape`` must match). Without
        ``path`` the label image lives in memory (see :meth:`save`).
    dtype : integer dtype, optional
        Label type of a new image (default ``uint32``); must match when reopening.
    chunks : (int, int), optional
        zarr chunk shape of a new image (default (256, 256)). Only chunks that hold
        objects are ever stored, so a 20000 x 20000 image costs nothing up front.
    initial : (H, W) integer array-like, optional
        Labels to start from (numpy, zarr, dask), copied in chunk by chunk.

    Notes
    -----
    All methods are thread-safe. Each undo step keeps only the previous values of
    the pixels it changed. Only one process may write to a ``path`` at a time.
    """

    def __init__(self, shape, *, path=None, dtype=None, chunks=None, initial=None):
        self._lock = threading.RLock()
        self._callbacks: list[Callable] = []
        self._attribute_callbacks: list[Callable] = []
        shape = _pixels.check_shape(shape)
        if path is not None and is_saved(Path(path)):
            if initial is not None:
                raise InvalidImageError(f"{path} already holds a saved label image; reopen it without `initial`")
            self._history = _labelsetup.reopen(Path(path), shape, dtype, chunks)
        else:
            dtype = np.dtype(np.uint32 if dtype is None else dtype)
            self._history = _labelsetup.create(shape, path, dtype, tuple(chunks or DEFAULT_CHUNKS), initial)

    @classmethod
    def open(cls, path, *, repair: bool = False) -> LabelImage:
        """Reopen the label image saved under ``path``.

        Its stored files are checked against the checksums in its log; a damaged or
        missing one raises :class:`~samkit.errors.AutosaveError` naming it. ``repair=True``
        rebuilds it from the log instead (chunks that check out are kept, the others
        replayed), into a new folder that takes the place of ``path``: the damaged folder is
        kept beside it as ``<name>.damaged-<time>``; a warning names what could not be restored.
        """
        path = Path(path)
        if repair:
            _labelstore.repair(path)
        return cls(_labelstore.saved_shape(path), path=path)

    # -- reading --

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._history.array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._history.array.dtype

    @property
    def chunks(self) -> tuple[int, int]:
        return tuple(self._history.array.chunks)

    @property
    def array(self) -> zarr.Array:
        """The zarr array behind the labels (read it, e.g. with napari or dask; don't write)."""
        return self._history.array

    @property
    def path(self) -> Path | None:
        """The autosave folder, or None in memory."""
        return self._history.journal.path

    @property
    def next_label(self) -> int:
        """The id the next commit gets by default: the largest id ever used + 1."""
        return self._history.next

    @property
    def objects(self) -> dict[int, Box]:
        """Each object id and its bounding box (y0, x0, y1, x1)."""
        with self._lock:
            return dict(self._history.objects)

    @property
    def attributes(self) -> dict[int, dict]:
        """Each object's attributes, ``{label: {name: value}}`` (a copy; objects without any are left out)."""
        with self._lock:
            return {label: dict(values) for label, values in self._history.attributes.items()}

    @property
    def log(self) -> list[dict]:
        """Every operation so far, as written to ``log.jsonl`` (prompts, scores, ids, bboxes)."""
        with self._lock:
            return json.loads(json.dumps(self._history.journal.entries))

    @property
    def can_undo(self) -> bool:
        return bool(self._history.undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._history.redo)

    def __getitem__(self, key) -> np.ndarray:
        with self._lock:
            return self._history.array[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def read(self, bbox: Box) -> np.ndarray:
        """The labels inside ``bbox`` = (y0, x0, y1, x1), as a (y1 - y0, x1 - x0) array."""
        y0, x0, y1, x1 = self._check_box(bbox)
        return self[y0:y1, x0:x1]

    def labels_in(self, bbox: Box) -> list[int]:
        """The ids of the objects that have pixels inside ``bbox``, sorted."""
        return [v.item() for v in np.unique(self.read(bbox)) if v]

    def mask(self, label: int) -> Mask:
        """Object ``label`` as a :class:`~samkit.engine.Mask` (to show, edit or measure it)."""
        with self._lock:
            box = self._box_of(label)
            return Mask(box, self.read(box) == label)

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path else "in memory"
        return f"LabelImage(shape={self.shape}, dtype={self.dtype}, {len(self._history.objects)} objects, {where})"

    # -- changing --

    def on_change(self, callback: Callable[[Box], None]) -> Callable[[Box], None]:
        """Call ``callback(bbox)`` after every change, with the (y0, x0, y1, x1) that changed.

        Returns ``callback``, so this works as a decorator. A callback that raises is
        logged and does not affect the change.
        """
        with self._lock:
            self._callbacks.append(callback)
        return callback

    def off_change(self, callback: Callable[[Box], None]) -> None:
        """Stop calling ``callback``."""
        with self._lock:
            self._callbacks.remove(callback)

    def on_attributes(self, callback: Callable[[set], None]) -> Callable[[set], None]:
        """Call ``callback(ids)`` after every change of object attributes (set, undone, dropped with an object)."""
        with self._lock:
            self._attribute_callbacks.append(callback)
        return callback

    def off_attributes(self, callback: Callable[[set], None]) -> None:
        """Stop calling ``callback``."""
        with self._lock:
            self._attribute_callbacks.remove(callback)

    def commit(self, mask: Mask, label: int | None = None, *, overwrite: bool = False, attributes=None) -> int:
        """Write ``mask`` into the label image as object ``label`` and return its id.

        Parameters
        ----------
        mask : Mask
            The object, in image coordinates; its ``prompt`` and ``score`` go to the log,
            its score to the object's ``score`` attribute.
        label : int, optional
            Id to write (default :attr:`next_label`); an existing id grows that object.
        overwrite : bool
            False (default) writes only background pixels, keeping other objects;
            True replaces whatever the mask covers.
        attributes : dict, optional
            More attributes of the object, ``{name: value}`` (e.g. ``{"class_name": "nucleus"}``).

        Raises
        ------
        InvalidLabelError
            The mask is empty or leaves nothing to write, or ``label`` is out of range.
        InvalidPromptError
            The mask lies outside the image or its prompt is not JSON-able.
        AutosaveError
            Saving failed; nothing was changed, in memory or on disk.
        """
        if not isinstance(mask, Mask):
            raise TypeError(f"commit takes a samkit Mask, not {type(mask).__name__} (see Mask.from_array)")
        if mask.empty:
            raise InvalidLabelError("the mask is empty: nothing to commit")
        y0, x0, y1, x1 = self._check_box(mask.bbox, InvalidPromptError)
        try:
            prompt = jsonable(mask.prompt)
        except (TypeError, ValueError) as e:
            raise InvalidPromptError(f"the mask's prompt must be JSON-able to be logged: {e}") from e
        with self._lock:
            self._history.ready()
            label = _pixels.check_label(self._history.next if label is None else label, self.dtype)
            current = self._history.array[y0:y1, x0:x1]
            changed = mask.crop & ((current != label) if overwrite else (current == 0))
            if not changed.any():
                hint = "" if overwrite else " (other objects cover it; overwrite=True replaces them)"
                raise InvalidLabelError(f"the mask leaves no pixel to write{hint}")
            part = _pixels.tight_part((y0, x0, y1, x1), changed, current, label)
            values = _attributes.checked({label: {"score": float(mask.score), **(attributes or {})}}, {label})
            entry = {"op": "commit", "id": label, "overwrite": bool(overwrite),
                     "score": float(mask.score), "prompt": prompt}
            change = self._run(entry, [part], attributes=values)
        self._notify(*change)
        return label

    def set_pixels(self, ys, xs, values, *, attributes=None) -> Box | None:
        """Set pixels (ys, xs) to ``values`` as one undoable step; return the box that changed (None: nothing).

        What brushes, erasers and fills do (:mod:`samkit.engine.editing` computes their pixels).

        Parameters
        ----------
        ys, xs : (N,) int arrays
            Pixel coordinates (y, x); a pixel given twice gets its last value.
        values : int or (N,) int array
            The label of each pixel; 0 erases. An object whose last pixel goes loses its attributes.
        attributes : dict, optional
            ``{label: {name: value}}`` set in the same step (e.g. the scores of objects added at once).

        Raises
        ------
        InvalidPromptError
            Coordinates that are not 1-D integer arrays of one length, or lie outside the image.
        InvalidLabelError
            Values that are not integer labels in the range of :attr:`dtype`.
        AutosaveError
            Saving failed; nothing was changed.
        """
        ys, xs, values = _pixels.check_pixels(ys, xs, values, self.shape, self.dtype)
        with self._lock:
            self._history.ready()
            parts = _pixels.pixel_parts(self._history.array, ys, xs, values)
            if not parts:
                return None
            ids = sorted({p.value for p in parts})
            extra = _attributes.checked(attributes or {}, {*self._history.objects, *ids})
            change = self._run({"op": "paint", "ids": ids}, parts, attributes=extra)
        self._notify(*change)
        return change[0]

    def set_attributes(self, changes: dict) -> None:
        """Set attributes of any number of objects as one undoable step.

        Parameters
        ----------
        changes : dict
            ``{label: {name: value, ...}, ...}``; a value is a str, int, finite float or
            bool, and ``None`` removes that name. Names in use: ``class_name``, ``score``,
            ``stability``, ``mode``.

        Raises
        ------
        InvalidLabelError
            An id that is no object, a name that is not a string, a value of another kind.
        """
        with self._lock:
            values = _attributes.checked(changes, self._history.objects)
            self._history.ready()
            if not _attributes.diff(self._history.attributes, values):
                return
            change = self._run({"op": "attributes", "ids": sorted(values)}, [], attributes=values)
        self._notify(*change)

    def erase(self, label: int) -> None:
        """Remove object ``label`` (reads and writes only its bounding box)."""
        with self._lock:
            self._history.ready()
            y0, x0, y1, x1 = box = self._box_of(label)
            current = self._history.array[y0:y1, x0:x1]
            part = _pixels.tight_part(box, current == label, current, 0)
            change = self._run({"op": "erase", "id": int(label)}, [part])
        self._notify(*change)

    def clear(self) -> None:
        """Remove every object, as one undoable step."""
        with self._lock:
            history = self._history
            history.ready()
            if not history.objects:
                return
            parts = []
            for label, (y0, x0, y1, x1) in sorted(history.objects.items()):
                current = history.array[y0:y1, x0:x1]
                parts.append(_pixels.tight_part((y0, x0, y1, x1), current == label, current, 0))
            change = self._run({"op": "clear", "ids": sorted(history.objects)}, parts)
        self._notify(*change)

    def undo(self) -> bool:
        """Undo the last change (commit, erase, clear, pixel edit, attributes); False when there is nothing to undo."""
        return self._step("undo")

    def redo(self) -> bool:
        """Redo the last undone step; False when there is nothing to redo."""
        return self._step("redo")

    def _step(self, op: str) -> bool:
        with self._lock:
            history = self._history
            stack = history.undo if op == "undo" else history.redo
            if not stack:
                return False
            history.ready()
            target = stack[-1]
            try:
                parts = history.journal.parts(target) if has_pixel_record(history.journal.entries[target]) else []
            except OSError as e:
                raise autosave_error(e, f"cannot {op}: the record of operation {target} in {self.path} cannot be read "
                                        "(the labels themselves are not affected)") from e
            change = self._run({"op": op, "target": target}, parts, forward=op == "redo", record=False)
        self._notify(*change)
        return True

    def save(self, path, *, autosave: bool = False, overwrite: bool = False) -> None:
        """Write a copy of the label image and its history to the folder ``path`` (undo works in the copy too).

        Parameters
        ----------
        path : str or Path
            A new folder; reopen it with :meth:`open`.
        autosave : bool
            False (default): changes keep being saved where they were (or stay in memory).
            True: they are saved to ``path`` from now on; the old folder keeps what it holds.
        overwrite : bool
            Replace a copy saved at ``path`` before (never this image's own autosave folder,
            nor a folder samkit did not write).
        """
        root = Path(path)
        with self._lock:
            self._history.ready()
            try:
                if overwrite and root.exists():
                    _labelsetup.replace_copy(self._history, root)
                else:
                    _labelsetup.write_copy(self._history, root)
                if autosave:
                    _labelsetup.autosave_at(self._history, root)
            except OSError as e:
                raise autosave_error(e, f"cannot save the label image to {root}") from e

    def to_tiff(self, path) -> None:
        """Write the whole label image to a (compressed) TIFF file; it must fit in memory."""
        import tifffile

        tifffile.imwrite(path, np.asarray(self), compression="zlib")

    def _run(self, entry: dict, parts, *, forward=True, record=True, attributes=None) -> tuple[Box | None, set]:
        """Do an operation (the caller holds the lock); return what changed: (box or None, ids whose attributes did)."""
        box = self._history.run(entry, parts, forward=forward, record=record, attributes=attributes)
        return box, self._history.last_attributes

    def _notify(self, box: Box | None, ids: set) -> None:
        for callbacks, arg in ((self._callbacks, box), (self._attribute_callbacks, ids)):
            for callback in list(callbacks) if arg else []:
                try:
                    callback(arg)
                except Exception:
                    log.exception("change callback %r failed", callback)

    # -- validation --

    def _check_box(self, bbox, error=InvalidPromptError) -> Box:
        return _pixels.check_box(bbox, self.shape, error)

    def _box_of(self, label) -> Box:
        objects = self._history.objects
        if label not in objects:
            raise InvalidLabelError(f"there is no object {label}; ids present: {sorted(objects)[:20]}")
        return objects[label]
