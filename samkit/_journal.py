"""How a :class:`~samkit.labels.LabelImage` records its changes: journal, history, undo records.

On-disk layout of a label image folder::

    labels.zarr/      zarr v3 array (H, W), crc32c-checksummed chunks, which exist only where objects are
    log.jsonl         one JSON line per operation, in order; line 0 describes the image; each line
                      holds the checksums of the files it wrote (checked on reopen: :mod:`samkit._labelstore`)
    ops/000017.npz    what operation 17 changed: bbox, changed mask, previous values
    ops/000018.json   an undo/redo: which operation it undoes or redoes

An operation that changes no pixel (``set_attributes``, the undo of one) has no ``ops/``
file and ``"bbox": null``: its log line is all of it.

Each operation ``n`` is done in three durable steps (see :mod:`samkit._durable`): (1) its
intent ``ops/n.*``, which holds the previous values of every pixel it changes; (2) the
chunks it changes, each replaced whole; (3) its line appended to ``log.jsonl``. The
operation exists once its line is in the log. On reopen a torn last line is dropped and an
intent newer than the log is rolled back from the previous values it holds, so a process
killed at any moment leaves each operation either whole or absent.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple

import numpy as np
import zarr

from . import _attributes, _durable
from .engine.mask import Box, Mask
from .errors import AutosaveError, InvalidImageError

FORMAT = 1
PIXEL_OPS = ("commit", "erase", "clear", "paint")  # the operations whose record (ops/n.npz) undoes them


class Part(NamedTuple):
    """One rectangle an operation changes: after it, ``changed`` pixels hold ``value``."""

    bbox: Box  # (y0, x0, y1, x1) in image coordinates
    changed: np.ndarray  # (y1 - y0, x1 - x0) bool
    before: np.ndarray  # (changed.sum(),) previous values, in C order of the changed pixels
    value: int


def _write(path: Path, data: bytes) -> None:
    _durable.makedirs(path.parent)
    _durable.write_file(path, data)


# -- journals: where operations are recorded (memory, or disk with the layout above) --


class MemoryJournal:
    path = None

    def __init__(self):
        self.entries: list[dict] = []
        self._records: dict[int, list[Part]] = {}

    def begin(self, entry: dict, parts: list[Part] | None) -> None:
        if parts is not None:
            self._records[entry["seq"]] = parts

    def append(self, entry: dict) -> None:
        self.entries.append(entry)

    def abort(self, seq: int) -> None:
        self._records.pop(seq, None)

    def parts(self, seq: int) -> list[Part]:
        return self._records[seq]


class LogUncertain(OSError):
    """A log line may or may not be on disk: only reopening can tell."""


class DiskJournal:
    def __init__(self, path: Path):
        self.path, self.log, self.ops = path, path / "log.jsonl", path / "ops"
        self.entries: list[dict] = []

    def _op(self, seq: int, suffix: str) -> Path:
        return self.ops / f"{seq:06d}.{suffix}"

    def create(self, entry: dict) -> None:
        _durable.makedirs(self.ops)
        _write(self.log, _line(entry))  # the label image exists from here on
        self.entries = [entry]

    def copy(self, entries: list[dict], parts) -> None:
        """Write the records (``parts(seq)``) and log of ``entries`` to this new folder."""
        for entry in entries:
            if has_pixel_record(entry):
                self.begin(entry, parts(entry["seq"]))
        self.write_log(entries)

    def write_log(self, entries: list[dict]) -> None:
        """Write the whole log of this new folder."""
        _durable.makedirs(self.ops)
        _write(self.log, b"".join(_line(e) for e in entries))
        self.entries = list(entries)

    def load(self) -> list[dict]:
        data = self.log.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn last line: its operation never finished
            _durable.truncate(self.log, end)
        try:
            self.entries = [json.loads(line) for line in data[:end].splitlines()]
        except json.JSONDecodeError as e:
            raise AutosaveError(f"{self.log} is corrupt ({e}); it cannot be reopened") from e
        return self.entries

    def begin(self, entry: dict, parts: list[Part] | None) -> None:
        seq = entry["seq"]
        for suffix in ("npz", "json"):  # a leftover of an operation that failed
            _durable.remove(self._op(seq, suffix))
        if parts is None:
            _write(self._op(seq, "json"), _line(entry))
        else:
            _write(self._op(seq, "npz"), _dump_parts(parts))

    def append(self, entry: dict) -> None:
        size = self.log.stat().st_size
        try:
            _durable.append_line(self.log, _line(entry))
        except OSError as e:
            try:
                _durable.truncate(self.log, size)
            except OSError:
                raise LogUncertain(e.errno, f"{e}; truncating {self.log} failed too") from e
            raise
        self.entries.append(entry)

    def abort(self, seq: int) -> None:
        for suffix in ("npz", "json"):
            try:
                _durable.remove(self._op(seq, suffix))
            except OSError:
                pass  # harmless: removed before the next operation, rolled back on reopen

    def parts(self, seq: int) -> list[Part]:
        """The record of operation ``seq``; AutosaveError naming the file when it is damaged."""
        path = self._op(seq, "npz")
        try:
            with np.load(path) as z:
                values = z["values"]
                return [
                    Part(tuple(int(v) for v in z[f"bbox_{i}"]), z[f"changed_{i}"], z[f"before_{i}"], values[i].item())
                    for i in range(len(values))
                ]
        except FileNotFoundError as e:
            raise AutosaveError(e.errno, f"{path} is missing") from e
        except (OSError, zipfile.BadZipFile, zlib.error, ValueError, KeyError, EOFError, NotImplementedError) as e:
            raise AutosaveError(f"{path} is damaged ({type(e).__name__}: {e})") from e

    def intent(self) -> tuple[list[Part], bool] | None:
        """The parts and direction that undo an operation begun but not logged, if any."""
        seq = len(self.entries)
        if self._op(seq, "npz").exists():
            return self.parts(seq), False
        if self._op(seq, "json").exists():
            try:
                entry = json.loads(self._op(seq, "json").read_bytes())
                target, undo = entry["target"], entry["op"] == "undo"
            except (ValueError, KeyError, TypeError) as e:
                raise AutosaveError(f"{self._op(seq, 'json')} is damaged ({e})") from e
            return self.parts(target), undo
        return None


def _line(entry: dict) -> bytes:
    return (json.dumps(entry, separators=(",", ":")) + "\n").encode()


def _dump_parts(parts: list[Part]) -> bytes:
    arrays = {"values": np.array([p.value for p in parts], dtype=parts[0].before.dtype)}
    for i, p in enumerate(parts):
        arrays.update({f"bbox_{i}": np.array(p.bbox), f"changed_{i}": p.changed, f"before_{i}": p.before})
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def has_pixel_record(entry: dict) -> bool:
    """Whether a logged operation changed pixels and so has a record ``ops/n.npz``."""
    return entry["op"] in PIXEL_OPS and entry.get("bbox") is not None


def is_saved(path: Path) -> bool:
    return (path / "log.jsonl").is_file()


def prepare(root: Path) -> Path:
    """Make ``root`` an empty folder for a new label image (clearing an unfinished creation)."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root} is a file, not a folder")
    if root.is_dir() and any(root.iterdir()):
        names = {p.name for p in root.iterdir() if not p.name.endswith(".tmp")}
        if is_saved(root) or not names <= {"labels.zarr", "ops"}:
            raise FileExistsError(f"{root} is not empty; choose a new folder for the label image")
        for name in names:
            _durable.remove(root / name)
    _durable.makedirs(root)
    return root


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def autosave_error(e: OSError, message: str) -> AutosaveError:
    message = f"{message} ({e.strerror or e})"
    return AutosaveError(message) if e.errno is None else AutosaveError(e.errno, message)


# -- history: the array, its journal, and what the logged operations add up to --


class History:
    """The label array and journal, with the object boxes, ids and undo/redo stacks of the log.

    Every change takes :meth:`run`; a failed step is rolled back at once, or before the
    next change (and on reopen) when the disk refuses even that.
    """

    def __init__(self, array: zarr.Array, journal) -> None:
        self.array, self.journal = array, journal
        self.objects: dict[int, Box] = {}
        self.attributes: dict[int, dict] = {}  # label -> {name: value}
        self.last_attributes: set[int] = set()
        self.undo: list[int] = []
        self.redo: list[int] = []
        self.next = 1
        self.pending = None  # (seq, parts, forward): a rollback the disk still owes
        self.broken = None  # why the disk state is uncertain until reopened

    def run(self, entry: dict, parts: list[Part], *, forward: bool, record: bool, attributes=None) -> Box | None:
        """Log operation ``entry``, which writes ``parts`` (``forward=False``: undoes them), after :meth:`ready`.

        ``attributes`` ({label: {name: value or None}}, checked): what a recorded operation sets;
        it also drops the attributes of the objects it erases. Returns the changed box (None: no pixel).
        """
        seq = len(self.journal.entries)
        box = None
        for p in parts:
            box = _union(box, p.bbox)
        entry = {"seq": seq, **entry, "bbox": box and list(box), "area": int(sum(p.before.size for p in parts)),
                 "time": now()}  # fmt: skip
        what = f"the {entry['op']} (operation {seq})"
        if parts:  # an operation without pixels is all in its log line
            try:
                self.journal.begin(entry, parts if record else None)
            except OSError as e:
                raise autosave_error(e, f"could not save {what} to {self.journal.path}; nothing changed") from e
            try:
                self.apply(parts, forward)
            except OSError as e:
                undone = self._roll_back(seq, parts, not forward)
                raise autosave_error(e, f"could not save {what} to {self.journal.path}; {undone}") from e
        objects = self._new_boxes(parts, forward)
        if record:
            written = max((p.value for p in parts), default=0)
            entry["next_label"] = max(self.next, written + 1)
            gone = [label for label, b in objects.items() if b is None]
            changes = _attributes.merged(_attributes.diff(self.attributes, attributes or {}),
                                         _attributes.dropped(self.attributes, gone))  # fmt: skip
            if changes:
                entry["attributes"] = _attributes.encode(changes)
        else:
            entry["next_label"] = self.next
        entry["objects"] = {str(k): v and list(v) for k, v in objects.items()}
        take = getattr(self.array.store, "take", None)  # a DurableStore: the checksums of the files written
        if take is not None:
            entry["checksums"] = take()
        try:
            self.journal.append(entry)
        except LogUncertain as e:
            self.broken = f"{self.journal.path}: {e}; reopen it with LabelImage.open to see what was saved"
            raise autosave_error(e, self.broken) from e
        except OSError as e:
            undone = self._roll_back(seq, parts, not forward)
            raise autosave_error(e, f"could not save {what} to {self.journal.path}; {undone}") from e
        self.account(entry)
        return box

    def apply(self, parts: list[Part], forward: bool) -> None:
        for p in parts if forward else parts[::-1]:
            y0, x0, y1, x1 = p.bbox
            current = self.array[y0:y1, x0:x1]
            new = current.copy()
            new[p.changed] = p.value if forward else p.before
            for cy0, cx0, cy1, cx1 in _chunk_boxes(p.bbox, self.array.chunks):  # one atomic write per chunk
                local = slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)
                if not np.array_equal(new[local], current[local]):
                    self.array[cy0:cy1, cx0:cx1] = new[local]

    def fill(self, initial) -> None:
        """Copy the labels ``initial`` (H, W) in chunk by chunk and find their objects."""
        limit = np.iinfo(self.array.dtype).max
        for box in _chunk_boxes((0, 0, *self.array.shape), self.array.chunks):
            block = np.asarray(initial[box[0] : box[2], box[1] : box[3]])
            if not block.any():
                continue
            if block.min() < 0 or block.max() > limit:
                raise InvalidImageError(f"initial labels must lie in 0..{limit} for {self.array.dtype}")
            self.array[box[0] : box[2], box[1] : box[3]] = block.astype(self.array.dtype)
            ys, xs = np.nonzero(block)
            for label, b in _boxes(block[ys, xs], ys + box[0], xs + box[1]).items():
                self.objects[label] = _union(self.objects.get(label), b)
        self.next = max(self.objects, default=0) + 1

    def recover(self) -> None:
        """On reopen: roll back an operation interrupted before its log line, drop temporary files."""
        intent = self.journal.intent()
        if intent is not None:
            self.apply(*intent)
        self.journal.abort(len(self.journal.entries))
        for tmp in self.journal.path.rglob(".*.tmp"):
            tmp.unlink()

    def _roll_back(self, seq: int, parts: list[Part], forward: bool) -> str:
        """Undo the partial write of operation ``seq`` (now, or later if that fails too); say which."""
        try:
            self.apply(parts, forward)
        except OSError:
            self.pending = (seq, parts, forward)
            return "undoing its partial write failed too: it is retried before the next change and on reopen"
        self.journal.abort(seq)
        return "nothing changed"

    def ready(self) -> None:
        """Refuse changes while the disk state is uncertain; pay a rollback still owed."""
        if self.broken:
            raise AutosaveError(self.broken)
        if self.pending is not None:
            seq, parts, forward = self.pending
            try:
                self.apply(parts, forward)
            except OSError as e:
                raise autosave_error(e, f"{self.journal.path} still cannot be written; free space and retry") from e
            self.pending = None
            self.journal.abort(seq)

    def _new_boxes(self, parts: list[Part], forward: bool) -> dict[int, Box | None]:
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
            box = _union(self.objects.get(label), gained.get(label))
            if label in lost and box is not None:
                y0, x0, y1, x1 = box
                inside = self.array[y0:y1, x0:x1] == label
                box = Mask.from_array(inside, offset=(y0, x0)).bbox if inside.any() else None
            out[label] = box
        return out

    def account(self, entry: dict) -> None:
        """Update ids, bboxes and undo/redo stacks for a logged operation."""
        op = entry["op"]
        if op == "undo":
            self.redo.append(self.undo.pop())
        elif op == "redo":
            self.undo.append(self.redo.pop())
        elif op != "create":
            self.undo.append(entry["seq"])
            self.redo.clear()
        source = self.journal.entries[entry["target"]] if op in ("undo", "redo") else entry
        changes = _attributes.decode(source)
        _attributes.apply(self.attributes, changes, forward=op != "undo")
        self.last_attributes = set(changes)  # the objects whose attributes it changed
        for label, box in entry["objects"].items():
            if box is None:
                self.objects.pop(int(label), None)
            else:
                self.objects[int(label)] = tuple(box)
        self.next = entry["next_label"]


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
