"""``EmbeddingStore``: one embedding per tile, in memory (LRU) and optionally on disk.

Layout
------
On disk a store is a zarr v3 array folder that ``zarr.open_array`` reads like any other::

    <name>.zarr/
        zarr.json           shape (ny, nx, *embedding_shape), chunks (1, 1, *embedding_shape),
                            raw little-endian bytes (no compressor), fill value NaN (0 for
                            integers), attributes["samkit"] = {kind, format_version, signature}
        c.<iy>.<ix>.0.0.0   one file per computed tile (chunk keys use the "." separator,
                            so all tiles lie in one flat folder and listing them is one call)

samkit reads and writes those files itself with numpy and ``os`` (zarr is not needed at run
time). ``path`` names the store itself when it ends in ``.zarr``; any other folder is a cache
folder holding ``<first 16 hex of sha256(canonical signature)>.zarr``.

Atomicity
---------
A tile is written to a hidden ``.<key>.<uuid>.partial`` file in the store folder, fsynced, and
renamed onto its key with ``os.replace`` (atomic on POSIX and Windows). A tile is present iff
its key exists, so a killed writer leaves at most a hidden partial file (removed on a later
open once an hour old), never a short chunk; a chunk of the wrong size is treated as missing.
A new store is built complete, ``zarr.json`` included, in a hidden sibling folder and renamed
into place, so no reader sees a store without metadata or with another signature's tiles.

Concurrency
-----------
Threads: one lock guards the memory LRU; disk reads and writes run outside it, so reads of
different tiles proceed while another thread writes. Processes sharing a store of the same
signature need no coordination: every chunk is replaced atomically, two writers of one tile
write identical bytes, and of two processes creating the store at once one rename wins and
the other opens that store. A store with another signature (or format version, shape or
dtype) is never reused: it is renamed aside, deleted and created anew, with a warning (the
last opener wins). Where the OS supports ``dir_fd`` (Linux, macOS) a store is used through
an open descriptor of its folder, so a process whose store was replaced under it goes on
writing into the old, deleted folder: its tiles are lost, never mixed into the new store.
Windows addresses files by path: do not point two sessions on *different* images at one
explicit ``.zarr`` path at the same time there.

Errors
------
A location that cannot be created or written (probed with a small file) raises
:class:`~samkit.errors.CacheError` at construction. A failing tile write (full disk, disk
gone read-only) does not raise: the tile stays in memory, one ``UserWarning`` carries the
``CacheError`` (also in :attr:`EmbeddingStore.disk_error`) and later puts stay in memory.
"""

from __future__ import annotations

import errno
import hashlib
import json
import operator
import os
import shutil
import threading
import time
import uuid
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import CacheError

FORMAT_VERSION = 1
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

Index = tuple[int, int]  # (iy, ix) in the tile grid


class EmbeddingStore:
    """The embeddings of one image's tile grid, computed once and reused safely.

    Parameters
    ----------
    signature : dict
        JSON-able description of everything the embeddings depend on (model, checkpoint
        hash, precision, tile grid, intensity policy, image identity). A store on disk is
        reused only when its signature is equal (compared as canonical JSON).
    grid_shape : (ny, nx)
        Number of tiles along y and x.
    embedding_shape : tuple of int
        Shape of one tile's embedding, e.g. ``(256, 64, 64)`` for SAM.
    dtype : str or numpy dtype, optional
        Stored dtype (bool, int, uint or float); values are cast on :meth:`put`.
    path : str or Path, optional
        ``None`` keeps embeddings in memory only. A folder ending in ``.zarr`` is the store
        itself; any other folder is a cache folder, see :meth:`location`.
    memory_bytes : int, optional
        Bound of the in-memory LRU cache in bytes (least recently used tiles go first).

    Raises
    ------
    CacheError
        The location cannot be created or written, or is a folder that is not a samkit
        embedding store.
    """

    def __init__(
        self,
        signature: dict,
        grid_shape: tuple[int, int],
        embedding_shape: tuple[int, ...],
        dtype="float16",
        *,
        path=None,
        memory_bytes: int = 512 * 2**20,
    ) -> None:
        self._signature_json = _canonical(signature)
        self._grid_shape = _shape(grid_shape, "grid_shape", ndim=2)
        self._embedding_shape = _shape(embedding_shape, "embedding_shape")
        self._dtype = _check_dtype(dtype)
        if int(memory_bytes) < 0:
            raise ValueError(f"memory_bytes must be >= 0, got {memory_bytes}")
        self._memory_bytes = int(memory_bytes)
        self._disk_dtype = self._dtype.newbyteorder("<")
        self._key_suffix = ".0" * len(self._embedding_shape)
        self._lock = threading.Lock()
        self._memory: OrderedDict[Index, np.ndarray] = OrderedDict()
        self._memory_used = 0
        self._disk_error: CacheError | None = None
        self._path = self.location(signature, path)
        self._folder = None if self._path is None else self._open_disk()

    @staticmethod
    def location(signature: dict, path) -> Path | None:
        """Where the store for ``signature`` lives under ``path`` (``None`` for memory only).

        A ``path`` ending in ``.zarr`` is returned as is; any other folder gets
        ``<path>/<first 16 hex of sha256(canonical signature)>.zarr``, so different images
        and models never share a store.
        """
        if path is None:
            return None
        path = Path(path).expanduser().absolute()
        if path.suffix.lower() == ".zarr":
            return path
        digest = hashlib.sha256(_canonical(signature).encode()).hexdigest()
        return path / f"{digest[:16]}.zarr"

    # ------------------------------------------------------------------ properties

    @property
    def signature(self) -> dict:
        """A copy of the signature, as stored (JSON round trip: tuples become lists)."""
        return json.loads(self._signature_json)

    @property
    def path(self) -> Path | None:
        """The store folder (``<...>.zarr``), or ``None`` for a memory-only store."""
        return self._path

    @property
    def grid_shape(self) -> tuple[int, int]:
        return self._grid_shape

    @property
    def embedding_shape(self) -> tuple[int, ...]:
        return self._embedding_shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def disk_error(self) -> CacheError | None:
        """Why tiles are no longer written to disk, or ``None`` while writes succeed."""
        return self._disk_error

    def __repr__(self) -> str:
        where = "memory only" if self._path is None else str(self._path)
        return f"EmbeddingStore(grid {self._grid_shape}, tile {self._embedding_shape} {self._dtype}, {where})"

    # ------------------------------------------------------------------ tiles

    def get(self, index: Index) -> np.ndarray | None:
        """The embedding of tile ``index = (iy, ix)``, or ``None`` when not computed yet.

        Looks in memory, then on disk (a tile read from disk is then kept in memory). The
        returned array is read-only and shared with the cache.
        """
        key = self._check_index(index)
        with self._lock:
            value = self._memory.get(key)
            if value is not None:
                self._memory.move_to_end(key)
                return value
        if self._folder is None:
            return None
        value = self._read(key)
        if value is not None:
            self._remember(key, value)
        return value

    def put(self, index: Index, array) -> np.ndarray:
        """Store the embedding of tile ``index = (iy, ix)`` in memory and on disk.

        Parameters
        ----------
        index : (iy, ix)
        array : ndarray of shape ``embedding_shape``
            Cast to the store's dtype (same kind or safer: float to int is refused).

        Returns
        -------
        ndarray
            The stored, read-only array (in the store's dtype): what :meth:`get` returns
            later, in this session or the next, so use it rather than ``array``.

        Notes
        -----
        A failing disk write keeps the tile in memory, warns once and turns the store to
        memory-only writes (see :attr:`disk_error`): a full disk never loses a click.
        """
        key = self._check_index(index)
        value = self._check_value(key, array)
        self._remember(key, value)
        if self._folder is not None and self._disk_error is None:
            data = np.ascontiguousarray(value, dtype=self._disk_dtype)
            try:
                self._folder.write(self._chunk_name(key), memoryview(data).cast("B"))
            except OSError as err:
                self._fail_disk(err)
        return value

    def __contains__(self, index) -> bool:
        try:
            key = self._check_index(index)
        except IndexError:
            return False
        with self._lock:
            if key in self._memory:
                return True
        return self._folder is not None and self._folder.exists(self._chunk_name(key))

    def present(self) -> np.ndarray:
        """(ny, nx) bool array: tiles in memory or on disk (lists chunk files, reads none)."""
        grid = np.zeros(self._grid_shape, bool)
        if self._folder is not None:
            try:
                names = self._folder.names()
            except OSError as err:
                raise _cache_error(f"cannot list the embedding store {self._path}", err) from err
            for name in names:
                key = self._parse_chunk_name(name)
                if key is not None:
                    grid[key] = True
        with self._lock:
            for key in self._memory:
                grid[key] = True
        return grid

    def missing(self) -> list[Index]:
        """Indices ``(iy, ix)`` of the tiles not computed yet, in row-major order."""
        return [(int(iy), int(ix)) for iy, ix in zip(*np.nonzero(~self.present()))]

    def clear_memory(self) -> None:
        """Drop every tile from memory (tiles on disk stay)."""
        with self._lock:
            self._memory.clear()
            self._memory_used = 0

    # ------------------------------------------------------------------ helpers

    def _check_index(self, index) -> Index:
        try:
            iy, ix = (operator.index(i) for i in index)
        except (TypeError, ValueError):
            raise TypeError(f"a tile index is a pair of ints (iy, ix), got {index!r}") from None
        ny, nx = self._grid_shape
        if not (0 <= iy < ny and 0 <= ix < nx):
            raise IndexError(f"tile {(iy, ix)} is outside the {ny} x {nx} tile grid")
        return iy, ix

    def _check_value(self, key: Index, array) -> np.ndarray:
        array = np.asarray(array)
        if array.shape != self._embedding_shape:
            raise ValueError(
                f"the embedding of tile {key} has shape {array.shape}; this store holds {self._embedding_shape}"
            )
        if not np.can_cast(array.dtype, self._dtype, casting="same_kind"):
            raise TypeError(
                f"the embedding of tile {key} is {array.dtype}, which does not cast safely to the store's "
                f"{self._dtype}; pass a {self._dtype.kind}-kind array or make the store with another dtype"
            )
        value = np.array(array, dtype=self._dtype, order="C", copy=True)
        value.flags.writeable = False
        return value

    def _remember(self, key: Index, value: np.ndarray) -> None:
        if value.nbytes > self._memory_bytes:
            return
        with self._lock:
            old = self._memory.pop(key, None)
            if old is not None:
                self._memory_used -= old.nbytes
            while self._memory and self._memory_used + value.nbytes > self._memory_bytes:
                _, evicted = self._memory.popitem(last=False)
                self._memory_used -= evicted.nbytes
            self._memory[key] = value
            self._memory_used += value.nbytes

    def _chunk_name(self, key: Index) -> str:
        return f"c.{key[0]}.{key[1]}{self._key_suffix}"

    def _parse_chunk_name(self, name: str) -> Index | None:
        if not (name.startswith("c.") and name.endswith(self._key_suffix)):
            return None
        parts = name[2 : len(name) - len(self._key_suffix)].split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            return None
        iy, ix = int(parts[0]), int(parts[1])
        ny, nx = self._grid_shape
        return (iy, ix) if iy < ny and ix < nx else None

    def _read(self, key: Index) -> np.ndarray | None:
        name = self._chunk_name(key)
        out = np.empty(self._embedding_shape, self._disk_dtype)
        try:
            complete = self._folder.read_into(name, out)
        except OSError as err:
            problem = f"could not be read ({err})"
        else:
            if complete is None:
                return None
            if complete:
                value = out.astype(self._dtype, copy=False)
                value.flags.writeable = False
                return value
            problem = "has the wrong size; it is deleted and"  # not written by samkit: never reuse it
            self._folder.unlink(name)
        warnings.warn(f"tile {key} of {self._path} {problem} will be recomputed", UserWarning, stacklevel=3)
        return None

    def _fail_disk(self, err: OSError) -> None:
        error = _cache_error(f"cannot write embeddings to {self._path}", err)
        with self._lock:
            first = self._disk_error is None
            if first:
                self._disk_error = error
        if first:
            warnings.warn(f"{error}; embeddings are kept in memory only from now on", UserWarning, stacklevel=3)

    def _open_disk(self) -> _Folder:
        location = self._path
        shape = (*self._grid_shape, *self._embedding_shape)
        wanted = _metadata(json.loads(self._signature_json), shape, self._embedding_shape, self._dtype)
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
            _sweep_leftovers(location)
            folder = _open_store(location, wanted)
            folder.sweep_partials()
        except CacheError:
            raise
        except OSError as err:
            raise _cache_error(f"cannot use {location} as an embedding cache", err) from err
        return folder


class _Folder:
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
        path, dir_fd = self._at(name)
        try:
            fd = os.open(path, os.O_RDONLY | _BINARY, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        with os.fdopen(fd, "rb") as f:
            count = f.readinto(memoryview(out).cast("B"))
            return count == out.nbytes and not f.read(1)

    def read_json(self, name: str):
        path, dir_fd = self._at(name)
        fd = os.open(path, os.O_RDONLY | _BINARY, dir_fd=dir_fd)
        with os.fdopen(fd, "rb") as f:
            return _loads(f.read())

    def write(self, name: str, data) -> None:
        """Write ``data`` to a hidden partial file, fsync it, then rename it onto ``name``."""
        partial, dir_fd = self._at(f".{name}.{uuid.uuid4().hex}.partial")
        target, _ = self._at(name)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.replace(partial, target, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except OSError:
                if not self.exists(name):  # e.g. Windows: a reader holds the tile another writer stored
                    raise
                self.unlink(os.path.basename(partial))
        except BaseException:
            self.unlink(os.path.basename(partial))
            raise

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


def _open_store(location: Path, wanted: dict) -> _Folder:
    """Reuse, create or replace the store at ``location`` until it holds ``wanted``."""
    for _ in range(_OPEN_ATTEMPTS):
        try:
            found = _read_metadata(location)
            if found is None and not location.exists():
                _create(location, wanted)
            elif found is not None and _same_store(found, wanted):
                folder = _Folder(location)
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
        _Folder(building).write("zarr.json", json.dumps(wanted, indent=2).encode())
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


def _sweep_leftovers(location: Path) -> None:
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


def _metadata(signature: dict, shape: tuple, embedding_shape: tuple, dtype: np.dtype) -> dict:
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


def _canonical(signature) -> str:
    if not isinstance(signature, dict):
        raise TypeError(f"signature must be a dict, got {type(signature).__name__}")
    try:
        return json.dumps(signature, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"signature must be JSON-able (str keys, plain values): {err}") from None


def _shape(shape, name: str, ndim: int | None = None) -> tuple[int, ...]:
    try:
        shape = tuple(operator.index(n) for n in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}") from None
    if (ndim is not None and len(shape) != ndim) or not shape or min(shape) < 1:
        raise ValueError(f"{name} must be {ndim or 'one or more'} positive ints, got {shape}")
    return shape


def _check_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf" or dtype.itemsize > 8:
        raise TypeError(f"an embedding store holds bool, int, uint or float data (up to 64 bits), not {dtype}")
    return dtype.newbyteorder("=")


def _cache_error(what: str, err: OSError) -> CacheError:
    return CacheError(
        err.errno,
        f"{what}: {err.strerror or err}. Choose a writable folder with free space, "
        "or pass path=None to keep embeddings in memory only",
    )
