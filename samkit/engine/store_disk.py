"""The disk layer of :class:`~samkit.engine.store.EmbeddingStore`: a zarr v3 folder of tiles.

Layout
------
A store is a zarr v3 array folder that ``zarr.open_array`` reads like any other::

    <name>.zarr/
        zarr.json           shape (ny, nx, *embedding_shape), chunks (1, 1, *embedding_shape),
                            raw little-endian bytes (no compressor), fill value NaN (0 for
                            integers), attributes["samkit"] = {kind, format_version, signature}
        c.<iy>.<ix>.0.0.0   one file per computed tile (chunk keys use the "." separator,
                            so all tiles lie in one flat folder and listing them is one call)
        s.<iy>.<ix>         the tile's check (zarr ignores it): 8 bytes, the xxh3-64 of the
                            chunk file (little-endian), then the digest of the pixels the tile
                            was embedded from (opaque bytes given by the caller)

samkit reads and writes those files itself with numpy and ``os`` (zarr is not needed at run
time). A tile is used only with its check file, when the chunk's bytes hash to the stored
xxh3-64: a flipped bit, a chunk without its check, or a chunk and a check of two different
writers count as missing, and the tile is recomputed.

Atomicity
---------
A tile is written by :func:`samkit._durable.write_file`: to a hidden ``.<key>.<uuid>.partial``
file in the store folder, flushed to disk and renamed onto its key (atomic on POSIX and
Windows), then its check file the same way. A tile is present iff its key and its check file
exist, so a killed writer leaves at most a hidden partial file (removed on a later open once
an hour old) or a chunk without a check, never a short chunk that is used; a chunk of the
wrong size is treated as missing. A new store is built complete, ``zarr.json`` included, in a
hidden sibling folder and renamed into place, so no reader sees a store without metadata or
with another signature's tiles.

Concurrency
-----------
Processes sharing a store of the same signature need no coordination: every chunk is replaced
atomically, two writers of one tile write identical bytes (or, for pixels that changed under
the same image identity, a chunk and check that do not match: the tile is recomputed), and of two processes creating the
store at once one rename wins and the other opens that store. A store with another signature
(or format version, shape or dtype) is never reused: it is renamed aside, deleted and created
anew, with a warning (the last opener wins). Where the OS supports ``dir_fd`` (Linux, macOS) a
store is used through an open descriptor of its folder, so a process whose store was replaced
under it goes on writing into the old, deleted folder: its tiles are lost, never mixed into the
new store. Windows addresses files by path: do not point two sessions on *different* images at
one explicit ``.zarr`` path at the same time there.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
import uuid
import warnings
import weakref
from pathlib import Path

import numpy as np

from .. import _durable
from ..errors import CacheError

FORMAT_VERSION = 2  # 2: check files (tile checksum + pixel digest) beside the chunks
_KIND = "samkit-embedding-store"
# zarr.json entries that must match for a store to be reused (besides attributes["samkit"])
_CHECKED_KEYS = (
    "zarr_format",
    "node_type",
    "shape",
    "data_type",
    "chunk_grid",
    "chunk_key_encoding",
    "fill_value",
    "codecs",
)
_OLD_S = 3600  # hidden partial files / folders older than this are leftovers of killed processes
_OPEN_ATTEMPTS = 8
_BINARY = getattr(os, "O_BINARY", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FD = {os.open, os.stat, os.unlink, os.rename} <= os.supports_dir_fd and os.listdir in os.supports_fd


class Folder:
    """A folder whose files are reached through an open descriptor where the OS allows it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | _DIRECTORY) if _DIR_FD else None
        if self.fd is not None:
            self.close = weakref.finalize(self, os.close, self.fd)

    def close(self) -> None:  # replaced by the finalizer when a descriptor is held
        pass

    def _at(self, name: str) -> tuple[str, int | None]:
        return (name, self.fd) if self.fd is not None else (os.path.join(self.path, name), None)

    def names(self) -> list[str]:
        if self.fd is None:
            return os.listdir(self.path)
        fd = os.open(".", os.O_RDONLY | _DIRECTORY, dir_fd=self.fd)  # own offset: thread-safe listing
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        path, dir_fd = self._at(name)
        try:
            os.stat(path, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def read_into(self, name: str, out: np.ndarray) -> bool | None:
        """Fill ``out`` from the file: None if absent, False if its size is not ``out.nbytes``."""
        f = self._open(name)
        if f is None:
            return None
        with f:
            count = f.readinto(memoryview(out).cast("B"))
            return count == out.nbytes and not f.read(1)

    def read_small(self, name: str, limit: int = 4096) -> bytes | None:
        """The bytes of a small file (at most ``limit`` are read), None if absent."""
        f = self._open(name)
        if f is None:
            return None
        with f:
            return f.read(limit)

    def _open(self, name: str):
        """The file opened for reading, or None if absent."""
        path, dir_fd = self._at(name)
        try:
            fd = os.open(path, os.O_RDONLY | _BINARY, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        return os.fdopen(fd, "rb")

    def read_json(self, name: str):
        path, dir_fd = self._at(name)
        fd = os.open(path, os.O_RDONLY | _BINARY, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as f:
            return _loads(f.read())

    def write(self, name: str, data) -> None:
        """Replace the file ``name`` by ``data`` atomically; all writers of a name write the same bytes."""
        path, dir_fd = self._at(name)
        _durable.write_file(path, data, dir_fd=dir_fd, suffix=".partial", keep_existing=True)

    def unlink(self, name: str) -> None:
        path, dir_fd = self._at(name)
        try:
            os.unlink(path, dir_fd=dir_fd)
        except OSError:
            pass

    def sweep_partials(self) -> None:
        """Remove partial files that killed writers left behind (an hour old or more)."""
        for name in self.names():
            if name.startswith(".") and name.endswith(".partial"):
                path, dir_fd = self._at(name)
                try:
                    if os.stat(path, dir_fd=dir_fd).st_mtime < time.time() - _OLD_S:
                        os.unlink(path, dir_fd=dir_fd)
                except OSError:
                    pass


def open_store(location: Path, wanted: dict) -> Folder:
    """Reuse, create or replace the store at ``location`` until it holds ``wanted``."""
    for _ in range(_OPEN_ATTEMPTS):
        try:
            found = _read_metadata(location)
            if found is None and location.exists():  # another process may have just moved its new store in
                found = _read_metadata(location)
            if found is None and not location.exists():
                _create(location, wanted)
            elif found is not None and _same_store(found, wanted):
                folder = Folder(location)
                try:
                    if _same_store(folder.read_json("zarr.json"), wanted):  # not replaced meanwhile
                        probe = f".probe.{uuid.uuid4().hex}"
                        folder.write(probe, b"samkit")  # the folder is writable (and not deleted)
                        folder.unlink(probe)
                        return folder
                except FileNotFoundError:
                    pass
                folder.close()
            else:
                _replace(location, found, wanted)
        except FileNotFoundError:  # another process moved it between two steps: look again
            continue
    raise CacheError(f"the embedding store {location} kept changing while opening it: another process replaces it")


def _create(location: Path, wanted: dict) -> None:
    """Build the store in a hidden sibling folder and rename it into place (if still free)."""
    building = location.with_name(f".{location.name}.{uuid.uuid4().hex}.tmp")
    building.mkdir()
    try:
        Folder(building).write("zarr.json", json.dumps(wanted, indent=2).encode())
        os.rename(building, location)
    except OSError as err:
        shutil.rmtree(building, ignore_errors=True)
        if err.errno not in (errno.EEXIST, errno.ENOTEMPTY) and not location.exists():
            raise  # a real failure, not another process creating it first


def _replace(location: Path, found, wanted: dict) -> None:
    """Move a samkit store of another signature (or an empty folder) aside and delete it."""
    if not _is_samkit_store(found):
        if location.is_file() or any(location.iterdir()):
            raise CacheError(
                f"{location} exists and is not a samkit embedding store; it is left untouched. "
                "Pass another path, or a folder (not ending in .zarr) to use as a cache folder."
            )
    else:
        warnings.warn(
            f"the embedding store {location} was made for another {_difference(found, wanted)}; "
            "it is deleted and the embeddings will be recomputed",
            UserWarning,
            stacklevel=5,
        )
    aside = location.with_name(f".{location.name}.{uuid.uuid4().hex}.stale")
    os.rename(location, aside)
    shutil.rmtree(aside, ignore_errors=True)


def sweep_leftovers(location: Path) -> None:
    """Delete stores renamed aside (and hour-old unfinished ones) that killed processes left."""
    prefix = f".{location.name}."
    try:
        entries = list(os.scandir(location.parent))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        try:
            if entry.name.endswith(".stale") or (
                entry.name.endswith(".tmp") and entry.stat().st_mtime < time.time() - _OLD_S
            ):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            pass


def metadata(signature: dict, shape: tuple, embedding_shape: tuple, dtype: np.dtype) -> dict:
    codec = {"name": "bytes"}
    if dtype.itemsize > 1:
        codec["configuration"] = {"endian": "little"}
    fill = "NaN" if dtype.kind == "f" else (False if dtype.kind == "b" else 0)
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1, *embedding_shape]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "."}},
        "fill_value": fill,
        "codecs": [codec],
        "attributes": {"samkit": {"kind": _KIND, "format_version": FORMAT_VERSION, "signature": signature}},
        "dimension_names": ["tile_y", "tile_x", *[None] * len(embedding_shape)],
        "storage_transformers": [],
    }


def _read_metadata(location: Path):
    """The parsed ``zarr.json`` of ``location``; None if absent, {} if unreadable."""
    try:
        return _loads((location / "zarr.json").read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None


def _loads(data: bytes):
    try:
        meta = json.loads(data)
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _is_samkit_store(meta) -> bool:
    attributes = meta.get("attributes") if isinstance(meta, dict) else None
    own = attributes.get("samkit") if isinstance(attributes, dict) else None
    return isinstance(own, dict) and own.get("kind") == _KIND


def _same_store(found: dict, wanted: dict) -> bool:
    same = all(found.get(k) == wanted[k] for k in _CHECKED_KEYS)
    return same and _is_samkit_store(found) and found["attributes"]["samkit"] == wanted["attributes"]["samkit"]


def _difference(found: dict, wanted: dict) -> str:
    old, new = found["attributes"]["samkit"], wanted["attributes"]["samkit"]
    if old.get("format_version") != new["format_version"]:
        return f"format version ({old.get('format_version')}, now {new['format_version']})"
    a, b = old.get("signature"), new["signature"]
    if a != b:
        keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)) if isinstance(a, dict) else []
        return f"signature (differing: {', '.join(keys) or 'all'})"
    return "tile grid, embedding shape or dtype"

