"""``LabelImage``: the label image that interactive segmentation builds, with undo and autosave.

Objects arrive as :class:`samkit.engine.Mask` (bbox + boolean crop) and are written
into a 2D (y, x) label image, 0 = background, held in a zarr array: in memory, or on
disk under ``path`` where every change is durable before the call returns (the folder
layout and why a crash leaves each operation whole or absent: :mod:`samkit._journal`).
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

import numpy as np
import zarr
from zarr.storage import MemoryStore

from . import _labelstore
from ._journal import FORMAT, DiskJournal, History, MemoryJournal, Part, autosave_error, is_saved, now, prepare
from ._labelstore import COMPRESSORS, DurableStore
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
        shape = _check_shape(shape)
        if path is not None and is_saved(Path(path)):
            if initial is not None:
                raise InvalidImageError(f"{path} already holds a saved label image; reopen it without `initial`")
            self._reopen(Path(path), shape, dtype, chunks)
        else:
            dtype = np.dtype(np.uint32 if dtype is None else dtype)
            self._create(shape, path, dtype, tuple(chunks or DEFAULT_CHUNKS), initial)

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

    # -- creation and reopening --

    def _create(self, shape, path, dtype, chunks, initial) -> None:
        if not np.issubdtype(dtype, np.integer):
            raise InvalidImageError(f"label dtype must be an integer type, not {dtype}")
        if len(chunks) != 2 or min(chunks) < 1:
            raise InvalidImageError(f"chunks must be two positive ints, not {chunks}")
        root = None if path is None else Path(path)
        try:
            store = MemoryStore() if root is None else DurableStore(prepare(root) / "labels.zarr")
            journal = MemoryJournal() if root is None else DiskJournal(root)
            array = zarr.create_array(
                store, shape=shape, chunks=chunks, dtype=dtype, fill_value=0, compressors=COMPRESSORS,
                attributes={"samkit": {"kind": "labels", "format": FORMAT}},
            )
            self._history = history = History(array, journal)
            if initial is not None:
                self._copy_in(initial)
            entry = {"seq": 0, "op": "create", "format": FORMAT, "shape": list(shape), "dtype": dtype.name,
                     "chunks": list(chunks), "time": now(), "next_label": history.next,
                     "objects": {str(k): list(v) for k, v in history.objects.items()}}
            if root is None:
                journal.append(entry)
            else:
                journal.create({**entry, "checksums": store.take()})
        except OSError as e:
            raise autosave_error(e, f"cannot create a label image at {root}") from e

    def _copy_in(self, initial) -> None:
        if tuple(initial.shape) != self.shape:
            raise InvalidImageError(f"initial labels have shape {tuple(initial.shape)}, expected {self.shape}")
        if not np.issubdtype(initial.dtype, np.integer):
            raise InvalidImageError(f"initial labels must be integers, not {initial.dtype}")
        self._history.fill(initial)

    def _reopen(self, root: Path, shape, dtype, chunks) -> None:
        try:
            journal = DiskJournal(root)
            entries = journal.load()
            self._history = history = History(_labelstore.open_checked(root, journal, entries), journal)
        except AutosaveError:
            raise
        except OSError as e:
            raise autosave_error(e, f"cannot reopen the label image at {root}") from e
        wanted = {"shape": shape, "chunks": chunks and tuple(chunks)}
        wanted["dtype"] = None if dtype is None else np.dtype(dtype)
        for name, want in wanted.items():
            have = getattr(self, name)
            if want is not None and want != have:
                raise InvalidImageError(f"{root} holds a label image with {name} {have}, not {want}")
        for entry in entries:
            history.account(entry)
        try:
            history.recover()
        except OSError as e:
            raise autosave_error(e, f"cannot finish recovering {root}") from e

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

    def commit(self, mask: Mask, label: int | None = None, *, overwrite: bool = False) -> int:
        """Write ``mask`` into the label image as object ``label`` and return its id.

        Parameters
        ----------
        mask : Mask
            The object, in image coordinates; its ``prompt`` and ``score`` go to the log.
        label : int, optional
            Id to write (default :attr:`next_label`); an existing id grows that object.
        overwrite : bool
            False (default) writes only background pixels, keeping other objects;
            True replaces whatever the mask covers.

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
            label = self._check_label(self._history.next if label is None else label)
            current = self._history.array[y0:y1, x0:x1]
            changed = mask.crop & ((current != label) if overwrite else (current == 0))
            if not changed.any():
                hint = "" if overwrite else " (other objects cover it; overwrite=True replaces them)"
                raise InvalidLabelError(f"the mask leaves no pixel to write{hint}")
            part = _tight_part((y0, x0, y1, x1), changed, current, label)
            entry = {"op": "commit", "id": label, "overwrite": bool(overwrite),
                     "score": float(mask.score), "prompt": prompt}
            box = self._history.run(entry, [part], forward=True, record=True)
        self._notify(box)
        return label

    def erase(self, label: int) -> None:
        """Remove object ``label`` (reads and writes only its bounding box)."""
        with self._lock:
            self._history.ready()
            y0, x0, y1, x1 = box = self._box_of(label)
            current = self._history.array[y0:y1, x0:x1]
            part = _tight_part(box, current == label, current, 0)
            box = self._history.run({"op": "erase", "id": int(label)}, [part], forward=True, record=True)
        self._notify(box)

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
                parts.append(_tight_part((y0, x0, y1, x1), current == label, current, 0))
            box = history.run({"op": "clear", "ids": sorted(history.objects)}, parts, forward=True, record=True)
        self._notify(box)

    def undo(self) -> bool:
        """Undo the last commit, erase or clear; False when there is nothing to undo."""
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
                parts = history.journal.parts(target)
            except OSError as e:
                raise autosave_error(e, f"cannot {op}: the record of operation {target} in {self.path} cannot be read "
                                        "(the labels themselves are not affected)") from e
            box = history.run({"op": op, "target": target}, parts, forward=op == "redo", record=False)
        self._notify(box)
        return True

    def save(self, path) -> None:
        """Copy the label image and its history to the new folder ``path`` and autosave there from now on."""
        root = Path(path)
        with self._lock:
            history = self._history
            history.ready()
            try:
                journal = DiskJournal(prepare(root))
                store = DurableStore(root / "labels.zarr")
                array = zarr.create_array(
                    store, shape=self.shape, chunks=self.chunks, dtype=self.dtype, fill_value=0,
                    compressors=COMPRESSORS, attributes=history.array.attrs.asdict(),
                )
                (cy, cx), (h, w) = self.chunks, self.shape
                cells = {(i, j) for y0, x0, y1, x1 in history.objects.values()  # the chunks under objects
                         for i in range(y0 // cy, (y1 - 1) // cy + 1) for j in range(x0 // cx, (x1 - 1) // cx + 1)}
                for i, j in cells:
                    cell = slice(i * cy, min(h, i * cy + cy)), slice(j * cx, min(w, j * cx + cx))
                    array[cell] = history.array[cell]
                journal.copy(_labelstore.rebased(history.journal.entries, store.take()), history.journal.parts)
            except OSError as e:
                raise autosave_error(e, f"cannot save the label image to {root}") from e
            history.array, history.journal = array, journal

    def to_tiff(self, path) -> None:
        """Write the whole label image to a (compressed) TIFF file; it must fit in memory."""
        import tifffile

        tifffile.imwrite(path, np.asarray(self), compression="zlib")

    def _notify(self, box: Box) -> None:
        for callback in list(self._callbacks):
            try:
                callback(box)
            except Exception:
                log.exception("on_change callback %r failed", callback)

    # -- validation --

    def _check_box(self, bbox, error=InvalidPromptError) -> Box:
        y0, x0, y1, x1 = (int(v) for v in bbox)
        if not (0 <= y0 < y1 <= self.shape[0] and 0 <= x0 < x1 <= self.shape[1]):
            raise error(f"bbox {tuple(bbox)} is empty or outside the image {self.shape} (y0, x0, y1, x1)")
        return y0, x0, y1, x1

    def _box_of(self, label) -> Box:
        objects = self._history.objects
        if label not in objects:
            raise InvalidLabelError(f"there is no object {label}; ids present: {sorted(objects)[:20]}")
        return objects[label]

    def _check_label(self, label) -> int:
        limit = np.iinfo(self.dtype).max
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 1 <= label <= limit:
            raise InvalidLabelError(f"label must be an int in 1..{limit} for {self.dtype}, not {label!r}")
        return int(label)


def _check_shape(shape) -> tuple[int, int]:
    shape = tuple(shape)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
        raise InvalidImageError(f"a label image is 2D: shape must be (H, W) positive ints, not {shape}")
    return int(shape[0]), int(shape[1])


def _tight_part(bbox: Box, changed: np.ndarray, current: np.ndarray, value: int) -> Part:
    """The part that writes ``value`` at ``changed``, cropped to the changed pixels."""
    tight = Mask.from_array(changed, offset=bbox[:2]).bbox
    local = slice(tight[0] - bbox[0], tight[2] - bbox[0]), slice(tight[1] - bbox[1], tight[3] - bbox[1])
    changed = np.ascontiguousarray(changed[local])
    return Part(tight, changed, current[local][changed], value)
