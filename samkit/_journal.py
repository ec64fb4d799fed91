"""How a :class:`~samkit.labels.LabelImage` records its changes: journals and undo records (what they add up to: :mod:`samkit._history`).

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

from . import _durable
from .engine.mask import Box
from .errors import AutosaveError

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
