"""What the logged operations of a :class:`~samkit.labels.LabelImage` add up to: :class:`History`.

The label array and its journal (:mod:`samkit._journal`), with the object boxes, ids,
attributes and undo/redo stacks the log implies. Every change goes through
:meth:`History.run`, which does it in the journal's three durable steps and rolls back
a step that failed.
"""

from __future__ import annotations

import numpy as np
import zarr

from . import _attributes
from ._journal import LogUncertain, Part, autosave_error, now
from .engine.mask import Box, Mask
from .errors import AutosaveError, InvalidImageError


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
