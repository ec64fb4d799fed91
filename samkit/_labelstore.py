"""The array of a saved label image: durable and checksummed, checked against its log, rebuilt from it.

Chunks are encoded with a crc32c checksum (zarr's ``crc32c`` codec), so a damaged chunk
fails to decode instead of reading as wrong labels. :class:`DurableStore` also records a
checksum (xxh3-64) of every file it writes (chunks and ``zarr.json``; ``None`` for a
removed chunk), and each operation logs those of its writes under ``"checksums"`` (line 0:
those of the new array). The last value logged for a file is what the file must hold.

On reopen :func:`check` reads each stored file once and compares its checksum with the log:
a flipped byte, a deleted chunk, a chunk restored from an older copy and a damaged
``zarr.json`` are all found without decoding a pixel (the cost is one read of the
compressed files: 0.3-0.5 s for 2304 chunks of (256, 256), where decoding them takes 6.6 s). Label images saved before these checksums (no ``"checksums"`` in line
0) are checked by decoding every chunk instead.

:func:`rebuild` writes a new folder beside the damaged one from the log: chunks that check
out are copied, the others are replayed from the records of the operations that touched
them; the damaged folder is kept, renamed. Pixels that no record holds (labels given as
``initial``, or operations whose record is damaged too) cannot be rebuilt: a warning names
those chunks.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

import google_crc32c
import xxhash
import zarr
from zarr.codecs import Crc32cCodec, ZstdCodec
from zarr.storage import LocalStore, MemoryStore

from . import _durable
from ._history import History, _chunk_boxes, _union
from ._journal import DiskJournal, MemoryJournal, autosave_error, is_saved, prepare
from .errors import AutosaveError

log = logging.getLogger(__name__)

COMPRESSORS = (ZstdCodec(level=0), Crc32cCodec())  # zarr's default compression, then a checksum of it


def digest(data: bytes) -> int:
    """The checksum the log keeps of a file (not crc32c: that of data followed by its own crc32c is a constant)."""
    return xxhash.xxh3_64_intdigest(data)


class DurableStore(LocalStore):
    """A zarr ``LocalStore`` whose writes are atomic and durable, and that records their checksums."""

    def __init__(self, root, *, read_only: bool = False) -> None:
        super().__init__(root, read_only=read_only)
        self.written: dict[str, int | None] = {}

    async def _set(self, key, value, exclusive: bool = False) -> None:
        if not self._is_open:
            await self._open()
        self.set_sync(key, value, exclusive=exclusive)

    def set_sync(self, key, value, exclusive: bool = False) -> None:
        self._ensure_open_sync()
        self._check_writable()
        if not (exclusive and (self.root / key).exists()):
            data = value.to_bytes()
            _durable.makedirs((self.root / key).parent)
            _durable.write_file(self.root / key, data)
            self.written[key] = digest(data)

    async def delete(self, key) -> None:
        self.delete_sync(key)

    def delete_sync(self, key) -> None:
        self._check_writable()
        _durable.remove(self.root / key)
        self.written[key] = None

    def take(self) -> dict[str, int | None]:
        """The checksums of the files written since the last call (``None``: removed)."""
        taken, self.written = self.written, {}
        return taken


# -- checking a stored array against its log --


def rebased(entries: list[dict], checksums: dict) -> list[dict]:
    """``entries`` for a new copy of the array: line 0 holds its ``checksums``, the others none."""
    first = {**entries[0], "checksums": checksums}
    return [first, *({k: v for k, v in e.items() if k != "checksums"} for e in entries[1:])]


def expected(entries: list[dict]) -> dict[str, int | None]:
    """What the log says each stored file holds: key -> checksum (``None``: no file)."""
    out: dict[str, int | None] = {}
    for entry in entries:
        out.update(entry.get("checksums") or {})
    return out


def check(root: Path, entries: list[dict], exempt: set[str] = frozenset()) -> list[tuple[str, str]]:
    """The stored files of ``root/labels.zarr`` that disagree with the log, as (key, why).

    ``exempt``: chunks an unfinished operation may have written (checked for damage only).
    """
    folder = root / "labels.zarr"
    want = expected(entries)
    tracked = "checksums" in entries[0]
    stored = _stored(folder)
    problems = []
    for key in sorted(want.keys() | stored if tracked else want.keys()):
        have = digest((folder / key).read_bytes()) if key in stored else None
        if key not in exempt and have != want.get(key):
            problems.append((key, _why(have, want.get(key))))
        elif key in exempt and tracked and have is not None and not _intact(folder / key):
            problems.append((key, "fails its checksum"))
    if not tracked:
        problems += _decode_unlogged(root, entries, sorted(stored - want.keys()))
    return problems


def _stored(folder: Path) -> set[str]:
    """The keys of the files in the zarr folder (hidden temporary files left out)."""
    out = set()
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                out.add(Path(top, name).relative_to(folder).as_posix())
    return out


def _intact(path: Path) -> bool:
    """Whether a chunk ends with the crc32c of the rest (as the crc32c codec writes it)."""
    data = path.read_bytes()
    return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")


def _why(have, want) -> str:
    if have is None:
        return "is missing, but the log says it holds labels"
    if want is None:
        return "is not in the log (left over from an older copy?)"
    return "fails its checksum (damaged, or another version than the log's)"


def _decode_unlogged(root: Path, entries, keys) -> list[tuple[str, str]]:
    """Label images saved before checksums: each chunk must decode, zarr.json must match line 0."""
    try:
        array = open_array(root, entries[0], mode="r")
    except AutosaveError as e:
        return [("zarr.json", str(e))]
    problems = []
    for key in keys:
        cell = _cell(key, array)
        if cell is None:
            continue
        try:
            array[cell]
        except Exception as e:  # any decoding failure means damage
            problems.append((key, f"cannot be decoded ({type(e).__name__}: {e})"))
    return problems


def _cell(key: str, array) -> tuple[slice, slice] | None:
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != "c" or not all(p.isdigit() for p in parts[1:]):
        return None
    (i, j), (cy, cx) = (int(p) for p in parts[1:]), array.chunks
    return slice(i * cy, (i + 1) * cy), slice(j * cx, (j + 1) * cx)


def saved_shape(root: Path) -> list[int]:
    """The shape in line 0 of the log of the label image saved at ``root``."""
    if not is_saved(root):
        raise AutosaveError(f"no saved label image at {root} (no log.jsonl)")
    try:
        with open(root / "log.jsonl", "rb") as f:
            return json.loads(f.readline())["shape"]
    except (ValueError, KeyError, TypeError) as e:
        raise AutosaveError(f"{root / 'log.jsonl'} is damaged in its first line ({e}); it cannot be reopened") from e


def open_checked(root: Path, journal: DiskJournal, entries: list[dict]) -> zarr.Array:
    """The array of ``root`` for writing, once its files agree with the log (else AutosaveError naming them)."""
    problems = check(root, entries, exempt_keys(root, journal, entries))
    if problems:
        raise damage_error(root, problems)
    return open_array(root, entries[0])


def open_array(root: Path, first: dict, mode: str = "r+") -> zarr.Array:
    """The array of ``root``; AutosaveError naming zarr.json when it is unreadable or disagrees with log line 0."""
    path = root / "labels.zarr" / "zarr.json"
    try:
        array = zarr.open_array(DurableStore(root / "labels.zarr", read_only=mode == "r"), mode=mode)
    except OSError as e:
        raise autosave_error(e, f"cannot open {path}") from e
    except Exception as e:  # JSON and metadata errors: a damaged file
        raise AutosaveError(f"{path} is damaged ({type(e).__name__}: {e}); {hint(root)}") from e
    found = {"shape": list(array.shape), "dtype": array.dtype.name, "chunks": list(array.chunks)}
    for name, value in found.items():
        if value != first[name]:
            raise AutosaveError(f"{path} is damaged: {name} {value}, the log says {first[name]}; {hint(root)}")
    return array


def hint(root: Path) -> str:
    return (f"LabelImage.open({str(root)!r}, repair=True) rebuilds it from its log "
            f"(the damaged folder is kept beside it)")  # fmt: skip


def damage_error(root: Path, problems: list[tuple[str, str]]) -> AutosaveError:
    shown = "; ".join(f"{root / 'labels.zarr' / key} {why}" for key, why in problems[:5])
    more = f" (and {len(problems) - 5} more files)" if len(problems) > 5 else ""
    return AutosaveError(f"the label image at {root} is damaged: {shown}{more}; {hint(root)}")


# -- rebuilding from the log --


def rebuild(root: Path, entries: list[dict], problems: list[tuple[str, str]]) -> Path:
    """Write a repaired copy of ``root`` beside it and move it into place; return where the damaged one went."""
    first = entries[0]
    new = root.with_name(root.name + ".rebuilding")
    try:
        _durable.remove(new)  # an earlier rebuild that did not finish
        prepare(new)
        journal = DiskJournal(new)
        store = DurableStore(new / "labels.zarr")
        array = zarr.create_array(
            store, shape=first["shape"], chunks=first["chunks"], dtype=first["dtype"], fill_value=0,
            compressors=COMPRESSORS, attributes={"samkit": {"kind": "labels", "format": first["format"]}},
        )
        bad = {key for key, _ in problems}
        lost = _fill(root, new, entries, array, bad)
        skipped = _copy_records(root, new, entries)
        journal.write_log(rebased(entries, store.take()))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        damaged = root.with_name(f"{root.name}.damaged-{stamp}")
        while damaged.exists():
            damaged = damaged.with_name(damaged.name + "+")
        _durable.rename(root, damaged)
        _durable.rename(new, root)
    except OSError as e:
        raise autosave_error(e, f"cannot rebuild {root} (nothing of it was changed)") from e
    if lost or skipped:
        warnings.warn(_losses(root, lost, skipped, damaged), RuntimeWarning, stacklevel=3)
    return damaged


def _fill(root: Path, new: Path, entries: list[dict], array: zarr.Array, bad: set[str]) -> list[str]:
    """Write the cells of ``array``: good ones from the damaged store, bad ones replayed; return the lost ones."""
    old = _readable(root, entries, bad, new / "view.zarr")
    keys = {k for k, v in expected(entries).items() if v is not None} | _stored(root / "labels.zarr")
    cells = {k: c for k in keys if (c := _cell(k, array)) is not None}
    cells = {k: c for k, c in cells.items() if c[0].start < array.shape[0] and c[1].start < array.shape[1]}
    for key, cell in cells.items():
        if key not in bad:
            array[cell] = old[cell]
    _durable.remove(new / "view.zarr")
    redo = {k: c for k, c in cells.items() if k in bad}
    return _replay(root, entries, array, redo) if redo else []


def _readable(root: Path, entries, bad, view: Path) -> zarr.Array:
    """The damaged array, to read its good chunks; with a damaged zarr.json, a copy with one made from the log."""
    try:
        if "zarr.json" not in bad:
            return open_array(root, entries[0], mode="r")
    except AutosaveError:
        pass
    first = entries[0]
    _durable.remove(view)
    zarr.create_array(  # the codecs of this version, or the zarr defaults of label images saved before it
        LocalStore(view), shape=first["shape"], chunks=first["chunks"], dtype=first["dtype"], fill_value=0,
        compressors=COMPRESSORS if "checksums" in first else "auto",
    )
    for key in _stored(root / "labels.zarr") - bad - {"zarr.json"}:
        (view / key).parent.mkdir(parents=True, exist_ok=True)
        (view / key).write_bytes((root / "labels.zarr" / key).read_bytes())
    return zarr.open_array(LocalStore(view, read_only=True), mode="r")


def _replay(root: Path, entries: list[dict], array: zarr.Array, cells: dict) -> list[str]:
    """Replay the logged operations that touch ``cells`` in memory and write those cells; return the lost ones."""

    scratch = zarr.create_array(MemoryStore(), shape=array.shape, chunks=array.chunks, dtype=array.dtype, fill_value=0)
    history = History(scratch, MemoryJournal())
    journal = DiskJournal(root)
    boxes = {k: (c[0].start, c[1].start, c[0].stop, c[1].stop) for k, c in cells.items()}
    initial = [b for b in entries[0]["objects"].values() if b]  # labels given as `initial`: in no record
    lost = {k for k, b in boxes.items() if any(_overlap(b, o) for o in initial)}
    for entry in entries[1:]:
        if entry.get("bbox") is None:  # it changed no pixel
            continue
        touched = [k for k, b in boxes.items() if _overlap(b, entry["bbox"])]
        if not touched:
            continue
        target = entry.get("target", entry["seq"])
        try:
            parts = journal.parts(target)
        except OSError:
            lost.update(touched)
            continue
        history.apply(parts, entry["op"] != "undo")
    for key, cell in cells.items():
        array[cell] = scratch[cell]
    return sorted(lost)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _copy_records(root: Path, new: Path, entries: list[dict]) -> list[str]:
    """Copy the records of the logged operations that read back whole; return the names of the others."""
    old = DiskJournal(root)
    skipped = []
    _durable.makedirs(new / "ops")
    for entry in entries[1:]:
        if entry.get("bbox") is None:  # no pixel changed: no record
            continue
        seq = entry["seq"]
        suffix = "json" if entry["op"] in ("undo", "redo") else "npz"
        source = root / "ops" / f"{seq:06d}.{suffix}"
        try:
            if suffix == "npz":
                old.parts(seq)
            else:
                json.loads(source.read_bytes())
        except (OSError, ValueError):
            skipped.append(source.name)
            continue
        _durable.write_file(new / "ops" / source.name, source.read_bytes())
    return skipped


def _losses(root, lost, skipped, damaged) -> str:
    parts = []
    if lost:
        parts.append(f"chunks {', '.join(lost[:10])}{' ...' if len(lost) > 10 else ''} may lack labels that no "
                     "intact record holds (labels given as `initial`, or damaged records)")  # fmt: skip
    if skipped:
        parts.append(f"the records {', '.join(skipped[:10])} are damaged: undo stops at those operations")
    return f"rebuilt {root} from its log, but {'; '.join(parts)}; the damaged folder is {damaged}"


def repair(root: Path) -> Path | None:
    """Rebuild ``root`` if it disagrees with its log; return where the damaged folder went (None: it was fine)."""
    new = root.with_name(root.name + ".rebuilding")
    if not root.exists() and is_saved(new):  # a rebuild stopped between its two moves
        _durable.rename(new, root)
    if not is_saved(root):
        return None
    journal = DiskJournal(root)
    entries = journal.load()
    try:
        exempt = exempt_keys(root, journal, entries)
    except AutosaveError:  # the record of an unfinished operation is damaged: its chunks are replayed
        exempt = set()
    problems = check(root, entries, exempt)
    if not problems:
        return None  # (an unfinished operation is rolled back on opening)
    unfinished = [(key, "may hold part of an unfinished operation") for key in exempt]  # replayed without it
    damaged = rebuild(root, entries, problems + unfinished)
    log.warning("rebuilt the label image at %s from its log; the damaged one is now %s", root, damaged)
    return damaged


def exempt_keys(root: Path, journal: DiskJournal, entries: list[dict]) -> set[str]:
    """The chunks an operation begun but not logged may have written."""
    try:
        intent = journal.intent()
    except AutosaveError as e:
        raise AutosaveError(f"the label image at {root} is damaged: the record of its unfinished last operation "
                            f"cannot be read ({e}); {hint(root)}") from e  # fmt: skip
    if intent is None:
        return set()
    box = None
    for part in intent[0]:
        box = _union(box, part.bbox)
    first = entries[0]
    cy, cx = first["chunks"]
    return {f"c/{y0 // cy}/{x0 // cx}" for y0, x0, _, _ in _chunk_boxes(box, (cy, cx))}
