"""``LabelImage``: the label image that interactive segmentation builds, with undo and autosave.

Objects arrive as :class:`samkit.engine.Mask` (bbox + boolean crop) and are written
into a 2D (y, x) label image, 0 = background, held in a zarr array: in memory, or on
disk under ``path`` where every change is durable before the call returns.

On-disk layout of ``path``::

    labels.zarr/      zarr v3 array (H, W); chunk files exist only where objects are
    log.jsonl         one JSON line per operation, in order; line 0 describes the image
    ops/000017.npz    what operation 17 changed: bbox, changed mask, previous values
    ops/000018.json   an undo/redo: which operation it undoes or redoes

Each operation ``n`` is done in three durable steps (temporary file, fsync, rename,
fsync of the folder): (1) its intent ``ops/n.*``, which holds the previous values of
every pixel it changes; (2) the chunks it changes, each replaced whole; (3) its line
appended to ``log.jsonl``. The operation exists once its line is in the log. On
reopen a torn last line is dropped and an intent newer than the log is rolled back
from the previous values it holds, so a process killed at any moment leaves each
operation either whole or absent.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import zarr
from zarr.storage import LocalStore, MemoryStore

from .engine.mask import Box, Mask
from .errors import AutosaveError, InvalidImageError, InvalidLabelError, InvalidPromptError

log = logging.getLogger(__name__)

FORMAT = 1
DEFAULT_CHUNKS = (1024, 1024)


class _Part(NamedTuple):
    """One rectangle an operation changes: after it, ``changed`` pixels hold ``value``."""

    bbox: Box  # (y0, x0, y1, x1) in image coordinates
    changed: np.ndarray  # (y1 - y0, x1 - x0) bool
    before: np.ndarray  # (changed.sum(),) previous values, in C order of the changed pixels
    value: int


# -- durable files (module functions, so tests can simulate a full disk or a crash) --


def _fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # Windows cannot open folders; its renames are durable by themselves
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs(folder: Path) -> None:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)
        _fsync_dir(new.parent)


def _write_file(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically and durably."""
    _makedirs(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _append_line(path: Path, line: bytes) -> None:
    with open(path, "ab") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(size)
        os.fsync(f.fileno())


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
        _fsync_dir(path.parent)


class _DurableStore(LocalStore):
    """A zarr ``LocalStore`` whose chunk writes are atomic and durable (see ``_write_file``)."""

    async def _set(self, key, value, exclusive: bool = False) -> None:
        if not self._is_open:
            await self._open()
        self.set_sync(key, value, exclusive=exclusive)

    def set_sync(self, key, value, exclusive: bool = False) -> None:
        self._ensure_open_sync()
        self._check_writable()
        if not (exclusive and (self.root / key).exists()):
            _write_file(self.root / key, value.to_bytes())

    async def delete(self, key) -> None:
        self.delete_sync(key)

    def delete_sync(self, key) -> None:
        self._check_writable()
        _remove(self.root / key)


# -- journals: where operations are recorded (memory, or disk with the layout above) --


class _MemoryJournal:
    path = None

    def __init__(self, entries=(), records=None):
        self.entries = list(entries)
        self._records = dict(records or {})

    def begin(self, entry: dict, parts: list[_Part] | None) -> None:
        if parts is not None:
            self._records[entry["seq"]] = parts

    def append(self, entry: dict) -> None:
        self.entries.append(entry)

    def abort(self, seq: int) -> None:
        self._records.pop(seq, None)

    def parts(self, seq: int) -> list[_Part]:
        return self._records[seq]


class _LogUncertain(OSError):
    """A log line may or may not be on disk: only reopening can tell."""


class _DiskJournal:
    def __init__(self, path: Path):
        self.path, self.log, self.ops = path, path / "log.jsonl", path / "ops"
        self.entries: list[dict] = []

    def _op(self, seq: int, suffix: str) -> Path:
        return self.ops / f"{seq:06d}.{suffix}"

    def create(self, entry: dict) -> None:
        _makedirs(self.ops)
        _write_file(self.log, _line(entry))  # the label image exists from here on
        self.entries = [entry]

    def load(self) -> list[dict]:
        data = self.log.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn last line: its operation never finished
            _truncate(self.log, end)
        try:
            self.entries = [json.loads(line) for line in data[:end].splitlines()]
        except json.JSONDecodeError as e:
            raise AutosaveError(f"{self.log} is corrupt ({e}); it cannot be reopened") from e
        return self.entries

    def begin(self, entry: dict, parts: list[_Part] | None) -> None:
        seq = entry["seq"]
        for suffix in ("npz", "json"):  # a leftover of an operation that failed
            _remove(self._op(seq, suffix))
        if parts is None:
            _write_file(self._op(seq, "json"), _line(entry))
        else:
            _write_file(self._op(seq, "npz"), _dump_parts(parts))

    def append(self, entry: dict) -> None:
        size = self.log.stat().st_size
        try:
            _append_line(self.log, _line(entry))
        except OSError as e:
            try:
                _truncate(self.log, size)
            except OSError:
                raise _LogUncertain(e.errno, f"{e}; truncating {self.log} failed too") from e
            raise
        self.entries.append(entry)

    def abort(self, seq: int) -> None:
        for suffix in ("npz", "json"):
            try:
                _remove(self._op(seq, suffix))
            except OSError:
                pass  # harmless: removed before the next operation, rolled back on reopen

    def parts(self, seq: int) -> list[_Part]:
        with np.load(self._op(seq, "npz")) as z:
            values = z["values"]
            return [
                _Part(tuple(int(v) for v in z[f"bbox_{i}"]), z[f"changed_{i}"], z[f"before_{i}"], values[i].item())
                for i in range(len(values))
            ]

    def intent(self) -> tuple[list[_Part], bool] | None:
        """The parts and direction that undo an operation begun but not logged, if any."""
        seq = len(self.entries)
        if self._op(seq, "npz").exists():
            return self.parts(seq), False
        if self._op(seq, "json").exists():
            entry = json.loads(self._op(seq, "json").read_bytes())
            return self.parts(entry["target"]), entry["op"] == "undo"
        return None


def _line(entry: dict) -> bytes:
    return (json.dumps(entry, separators=(",", ":")) + "\n").encode()


def _dump_parts(parts: list[_Part]) -> bytes:
    arrays = {"values": np.array([p.value for p in parts], dtype=parts[0].before.dtype)}
    for i, p in enumerate(parts):
        arrays.update({f"bbox_{i}": np.array(p.bbox), f"changed_{i}": p.changed, f"before_{i}": p.before})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.generic, Path)):
        return value.item() if isinstance(value, np.generic) else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _union(a: Box | None, b: Box | None) -> Box | None:
    if a is None or b is None:
        return a or b
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _boxes(values: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> dict[int, Box]:
    """Bounding box of each nonzero value among pixels (ys, xs)."""
    keep = values != 0
    values, ys, xs = values[keep], ys[keep], xs[keep]
    if values.size == 0:
        return {}
    order = np.argsort(values, kind="stable")
    values, ys, xs = values[order], ys[order], xs[order]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    lows = [np.minimum.reduceat(a, starts) for a in (ys, xs)]
    highs = [np.maximum.reduceat(a, starts) + 1 for a in (ys, xs)]
    return {
        values[s].item(): (int(y0), int(x0), int(y1), int(x1))
        for s, y0, x0, y1, x1 in zip(starts, *lows, *highs)
    }


def _chunk_boxes(box: Box, chunks: tuple[int, int]):
    """The pieces of ``box`` that fall in each chunk, as boxes."""
    y0, x0, y1, x1 = box
    cy, cx = chunks
    for ty in range(y0 // cy * cy, y1, cy):
        for tx in range(x0 // cx * cx, x1, cx):
            yield max(ty, y0), max(tx, x0), min(ty + cy, y1), min(tx + cx, x1)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _is_saved(path: Path) -> bool:
    return (path / "log.jsonl").is_file()


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
        zarr chunk shape of a new image (default (1024, 1024)). Only chunks that hold
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
        self._objects: dict[int, Box] = {}
        self._undo: list[int] = []
        self._redo: list[int] = []
        self._next = 1
        self._pending = None  # (seq, parts, forward): a rollback the disk still owes
        self._broken = None  # why the disk state is uncertain until reopened
        shape = _check_shape(shape)
        if path is not None and _is_saved(Path(path)):
            if initial is not None:
                raise InvalidImageError(f"{path} already holds a saved label image; reopen it without `initial`")
            self._reopen(Path(path), shape, dtype, chunks)
        else:
            dtype = np.dtype(np.uint32 if dtype is None else dtype)
            self._create(shape, path, dtype, tuple(chunks or DEFAULT_CHUNKS), initial)

    @classmethod
    def open(cls, path) -> LabelImage:
        """Reopen the label image saved under ``path``."""
        path = Path(path)
        if not _is_saved(path):
            raise AutosaveError(f"no saved label image at {path} (no log.jsonl)")
        with open(path / "log.jsonl", "rb") as f:
            return cls(json.loads(f.readline())["shape"], path=path)

    # -- creation and reopening --

    def _create(self, shape, path, dtype, chunks, initial) -> None:
        if not np.issubdtype(dtype, np.integer):
            raise InvalidImageError(f"label dtype must be an integer type, not {dtype}")
        if len(chunks) != 2 or min(chunks) < 1:
            raise InvalidImageError(f"chunks must be two positive ints, not {chunks}")
        root = None if path is None else Path(path)
        try:
            store = MemoryStore() if root is None else _DurableStore(_prepare(root) / "labels.zarr")
            journal = _MemoryJournal() if root is None else _DiskJournal(root)
            self._array = zarr.create_array(
                store, shape=shape, chunks=chunks, dtype=dtype, fill_value=0,
                attributes={"samkit": {"kind": "labels", "format": FORMAT}},
            )
            if initial is not None:
                self._copy_in(initial)
            entry = {"seq": 0, "op": "create", "format": FORMAT, "shape": list(shape), "dtype": dtype.name,
                     "chunks": list(chunks), "time": _now(), "next_label": self._next,
                     "objects": {str(k): list(v) for k, v in self._objects.items()}}
            if root is None:
                journal.append(entry)
            else:
                journal.create(entry)
        except OSError as e:
            raise _autosave_error(e, f"cannot create a label image at {root}") from e
        self._journal = journal

    def _copy_in(self, initial) -> None:
        if tuple(initial.shape) != self.shape:
            raise InvalidImageError(f"initial labels have shape {tuple(initial.shape)}, expected {self.shape}")
        if not np.issubdtype(initial.dtype, np.integer):
            raise InvalidImageError(f"initial labels must be integers, not {initial.dtype}")
        limit = np.iinfo(self.dtype).max
        for box in _chunk_boxes((0, 0, *self.shape), self.chunks):
            block = np.asarray(initial[box[0] : box[2], box[1] : box[3]])
            if not block.any():
                continue
            if block.min() < 0 or block.max() > limit:
                raise InvalidImageError(f"initial labels must lie in 0..{limit} for {self.dtype}")
            self._array[box[0] : box[2], box[1] : box[3]] = block.astype(self.dtype)
            ys, xs = np.nonzero(block)
            for label, b in _boxes(block[ys, xs], ys + box[0], xs + box[1]).items():
                self._objects[label] = _union(self._objects.get(label), b)
        self._next = max(self._objects, default=0) + 1

    def _reopen(self, root: Path, shape, dtype, chunks) -> None:
        try:
            journal = _DiskJournal(root)
            entries = journal.load()
            self._array = zarr.open_array(_DurableStore(root / "labels.zarr"), mode="r+")
        except OSError as e:
            raise _autosave_error(e, f"cannot reopen the label image at {root}") from e
        wanted = {"shape": shape, "chunks": chunks and tuple(chunks)}
        wanted["dtype"] = None if dtype is None else np.dtype(dtype)
        for name, want in wanted.items():
            have = getattr(self, name)
            if want is not None and want != have:
                raise InvalidImageError(f"{root} holds a label image with {name} {have}, not {want}")
        self._journal = journal
        for entry in entries:
            self._account(entry)
        try:
            intent = journal.intent()  # an operation interrupted before its log line
            if intent is not None:
                self._apply(*intent)
            journal.abort(len(entries))
            for tmp in root.rglob(".*.tmp"):
                tmp.unlink()
        except OSError as e:
            raise _autosave_error(e, f"cannot finish recovering {root}") from e

    # -- reading --

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self._array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def chunks(self) -> tuple[int, int]:
        return tuple(self._array.chunks)

    @property
    def array(self) -> zarr.Array:
        """The zarr array behind the labels (read it, e.g. with napari or dask; don't write)."""
        return self._array

    @property
    def path(self) -> Path | None:
        """The autosave folder, or None in memory."""
        return self._journal.path

    @property
    def next_label(self) -> int:
        """The id the next commit gets by default: the largest id ever used + 1."""
        return self._next

    @property
    def objects(self) -> dict[int, Box]:
        """Each object id and its bounding box (y0, x0, y1, x1)."""
        with self._lock:
            return dict(self._objects)

    @property
    def log(self) -> list[dict]:
        """Every operation so far, as written to ``log.jsonl`` (prompts, scores, ids, bboxes)."""
        with self._lock:
            return json.loads(json.dumps(self._journal.entries))

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __getitem__(self, key) -> np.ndarray:
        with self._lock:
            return self._array[key]

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
        return f"LabelImage(shape={self.shape}, dtype={self.dtype}, {len(self._objects)} objects, {where})"

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
            prompt = json.loads(json.dumps(mask.prompt, default=_jsonable))
        except (TypeError, ValueError) as e:
            raise InvalidPromptError(f"the mask's prompt must be JSON-able to be logged: {e}") from e
        with self._lock:
            self._ready()
            label = self._check_label(self._next if label is None else label)
            current = self._array[y0:y1, x0:x1]
            changed = mask.crop & ((current != label) if overwrite else (current == 0))
            if not changed.any():
                hint = "" if overwrite else " (other objects cover it; overwrite=True replaces them)"
                raise InvalidLabelError(f"the mask leaves no pixel to write{hint}")
            part = _tight_part((y0, x0, y1, x1), changed, current, label)
            entry = {"op": "commit", "id": label, "overwrite": bool(overwrite),
                     "score": float(mask.score), "prompt": prompt}
            box = self._run(entry, [part], forward=True, record=True)
        self._notify(box)
        return label

    def erase(self, label: int) -> None:
        """Remove object ``label`` (reads and writes only its bounding box)."""
        with self._lock:
            self._ready()
            y0, x0, y1, x1 = box = self._box_of(label)
            current = self._array[y0:y1, x0:x1]
            part = _tight_part(box, current == label, current, 0)
            box = self._run({"op": "erase", "id": int(label)}, [part], forward=True, record=True)
        self._notify(box)

    def clear(self) -> None:
        """Remove every object, as one undoable step."""
        with self._lock:
            self._ready()
            if not self._objects:
                return
            parts = []
            for label, (y0, x0, y1, x1) in sorted(self._objects.items()):
                current = self._array[y0:y1, x0:x1]
                parts.append(_tight_part((y0, x0, y1, x1), current == label, current, 0))
            box = self._run({"op": "clear", "ids": sorted(self._objects)}, parts, forward=True, record=True)
        self._notify(box)

    def undo(self) -> bool:
        """Undo the last commit, erase or clear; False when there is nothing to undo."""
        return self._step("undo")

    def redo(self) -> bool:
        """Redo the last undone step; False when there is nothing to redo."""
        return self._step("redo")

    def _step(self, op: str) -> bool:
        with self._lock:
            stack = self._undo if op == "undo" else self._redo
            if not stack:
                return False
            self._ready()
            target = stack[-1]
            try:
                parts = self._journal.parts(target)
            except OSError as e:
                raise _autosave_error(e, f"cannot read the record of operation {target} in {self.path}") from e
            box = self._run({"op": op, "target": target}, parts, forward=op == "redo", record=False)
        self._notify(box)
        return True

    def save(self, path) -> None:
        """Copy the label image and its history to the new folder ``path`` and autosave there from now on."""
        root = Path(path)
        with self._lock:
            self._ready()
            try:
                journal = _DiskJournal(_prepare(root))
                array = zarr.create_array(
                    _DurableStore(root / "labels.zarr"), shape=self.shape, chunks=self.chunks,
                    dtype=self.dtype, fill_value=0, attributes=self._array.attrs.asdict(),
                )
                (cy, cx), (h, w) = self.chunks, self.shape
                cells = {(i, j) for y0, x0, y1, x1 in self._objects.values()  # the chunks under objects
                         for i in range(y0 // cy, (y1 - 1) // cy + 1) for j in range(x0 // cx, (x1 - 1) // cx + 1)}
                for i, j in cells:
                    cell = slice(i * cy, min(h, i * cy + cy)), slice(j * cx, min(w, j * cx + cx))
                    array[cell] = self._array[cell]
                for entry in self._journal.entries:
                    if entry["op"] in ("commit", "erase", "clear"):
                        journal.begin(entry, self._journal.parts(entry["seq"]))
                _makedirs(journal.ops)
                _write_file(journal.log, b"".join(_line(e) for e in self._journal.entries))
            except OSError as e:
                raise _autosave_error(e, f"cannot save the label image to {root}") from e
            journal.entries = list(self._journal.entries)
            self._array, self._journal = array, journal

    def to_tiff(self, path) -> None:
        """Write the whole label image to a (compressed) TIFF file; it must fit in memory."""
        import tifffile

        tifffile.imwrite(path, np.asarray(self), compression="zlib")

    # -- the one path every change takes --

    def _run(self, entry: dict, parts: list[_Part], *, forward: bool, record: bool) -> Box:
        self._ready()
        seq = len(self._journal.entries)
        box = None
        for p in parts:
            box = _union(box, p.bbox)
        entry = {"seq": seq, **entry, "bbox": list(box), "area": int(sum(p.before.size for p in parts)), "time": _now()}
        what = f"the {entry['op']} (operation {seq})"
        try:
            self._journal.begin(entry, parts if record else None)
        except OSError as e:
            raise _autosave_error(e, f"could not save {what} to {self.path}; nothing changed") from e
        try:
            self._apply(parts, forward)
        except OSError as e:
            self._roll_back(seq, parts, not forward)
            raise _autosave_error(e, f"could not save {what} to {self.path}; {self._rolled_back()}") from e
        objects = self._new_boxes(parts, forward)
        entry["next_label"] = max(self._next, entry["id"] + 1) if entry["op"] == "commit" else self._next
        entry["objects"] = {str(k): v and list(v) for k, v in objects.items()}
        try:
            self._journal.append(entry)
        except _LogUncertain as e:
            self._broken = f"{self.path}: {e}; reopen it with LabelImage.open to see what was saved"
            raise _autosave_error(e, self._broken) from e
        except OSError as e:
            self._roll_back(seq, parts, not forward)
            raise _autosave_error(e, f"could not save {what} to {self.path}; {self._rolled_back()}") from e
        self._account(entry)
        return box

    def _apply(self, parts: list[_Part], forward: bool) -> None:
        for p in parts if forward else parts[::-1]:
            y0, x0, y1, x1 = p.bbox
            current = self._array[y0:y1, x0:x1]
            new = current.copy()
            new[p.changed] = p.value if forward else p.before
            for cy0, cx0, cy1, cx1 in _chunk_boxes(p.bbox, self.chunks):  # one atomic write per chunk
                local = slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)
                if not np.array_equal(new[local], current[local]):
                    self._array[cy0:cy1, cx0:cx1] = new[local]

    def _roll_back(self, seq: int, parts: list[_Part], forward: bool) -> None:
        try:
            self._apply(parts, forward)
        except OSError:
            self._pending = (seq, parts, forward)
            return
        self._journal.abort(seq)

    def _rolled_back(self) -> str:
        if self._pending is None:
            return "nothing changed"
        return "undoing its partial write failed too: it is retried before the next change and on reopen"

    def _ready(self) -> None:
        """Refuse changes while the disk state is uncertain; pay a rollback still owed."""
        if self._broken:
            raise AutosaveError(self._broken)
        if self._pending is not None:
            seq, parts, forward = self._pending
            try:
                self._apply(parts, forward)
            except OSError as e:
                raise _autosave_error(e, f"{self.path} still cannot be written; free space and retry") from e
            self._pending = None
            self._journal.abort(seq)

    def _new_boxes(self, parts: list[_Part], forward: bool) -> dict[int, Box | None]:
        """The bounding box, after ``parts``, of every object they touched (None: gone)."""
        gained: dict[int, Box] = {}
        lost: set[int] = set()
        for p in parts:
            ys, xs = np.nonzero(p.changed)
            written = np.full_like(p.before, p.value)
            old, new = (p.before, written) if forward else (written, p.before)
            lost.update(v.item() for v in np.unique(old) if v)
            for label, b in _boxes(new, ys + p.bbox[0], xs + p.bbox[1]).items():
                gained[label] = _union(gained.get(label), b)
        out = {}
        for label in gained.keys() | lost:
            box = _union(self._objects.get(label), gained.get(label))
            if label in lost and box is not None:
                y0, x0, y1, x1 = box
                inside = self._array[y0:y1, x0:x1] == label
                box = Mask.from_array(inside, offset=(y0, x0)).bbox if inside.any() else None
            out[label] = box
        return out

    def _account(self, entry: dict) -> None:
        """Update ids, bboxes and undo/redo stacks for a logged operation."""
        op = entry["op"]
        if op == "undo":
            self._redo.append(self._undo.pop())
        elif op == "redo":
            self._undo.append(self._redo.pop())
        elif op != "create":
            self._undo.append(entry["seq"])
            self._redo.clear()
        for label, box in entry["objects"].items():
            if box is None:
                self._objects.pop(int(label), None)
            else:
                self._objects[int(label)] = tuple(box)
        self._next = entry["next_label"]

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
        if label not in self._objects:
            raise InvalidLabelError(f"there is no object {label}; ids present: {sorted(self._objects)[:20]}")
        return self._objects[label]

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


def _tight_part(bbox: Box, changed: np.ndarray, current: np.ndarray, value: int) -> _Part:
    """The part that writes ``value`` at ``changed``, cropped to the changed pixels."""
    tight = Mask.from_array(changed, offset=bbox[:2]).bbox
    local = slice(tight[0] - bbox[0], tight[2] - bbox[0]), slice(tight[1] - bbox[1], tight[3] - bbox[1])
    changed = np.ascontiguousarray(changed[local])
    return _Part(tight, changed, current[local][changed], value)


def _prepare(root: Path) -> Path:
    """Make ``root`` an empty folder for a new label image (clearing an unfinished creation)."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()):
        names = {p.name for p in root.iterdir() if not p.name.endswith(".tmp")}
        if _is_saved(root) or not names <= {"labels.zarr", "ops"}:
            raise FileExistsError(f"{root} is not empty; choose a new folder for the label image")
        for name in names:
            _remove(root / name)
    _makedirs(root)
    return root


def _autosave_error(e: OSError, message: str) -> AutosaveError:
    message = f"{message} ({e.strerror or e})"
    return AutosaveError(message) if e.errno is None else AutosaveError(e.errno, message)
