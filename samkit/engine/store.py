"""``EmbeddingStore``: one embedding per tile, in memory (LRU) and optionally on disk.

On disk a store is a zarr v3 array folder, ``<name>.zarr``, that ``zarr.open_array`` reads;
its layout, atomic writes and sharing between processes are described in
:mod:`samkit.engine.store_disk`. ``path`` names the store itself when it ends in ``.zarr``;
any other folder is a cache folder holding ``<first 16 hex of sha256(canonical signature)>.zarr``.

Integrity
---------
Each tile is stored with a *digest* of the pixels it was embedded from (given by the caller,
see :meth:`EmbeddingStore.put`) and a checksum of its bytes. :meth:`EmbeddingStore.get_with_digest`
returns both, so a caller reuses a tile only for the same pixels; a tile whose bytes no longer
match their checksum (a flipped bit on disk) is treated as missing, with one warning per store.

Concurrency
-----------
Threads: one lock guards the memory LRU; disk reads and writes run outside it, so reads of
different tiles proceed while another thread writes. Processes: see
:mod:`samkit.engine.store_disk`.

Errors
------
A location that cannot be created or written (probed with a small file) raises
:class:`~samkit.errors.CacheError` at construction. A failing tile write (full disk, disk
gone read-only) does not raise: the tile stays in memory, one ``UserWarning`` carries the
``CacheError`` (also in :attr:`EmbeddingStore.disk_error`) and later puts stay in memory.
"""

from __future__ import annotations

import hashlib
import json
import operator
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import xxhash

from .. import _durable
from ..errors import CacheError
from .store_disk import FORMAT_VERSION, Folder, metadata, open_store, sweep_leftovers

__all__ = ["FORMAT_VERSION", "EmbeddingStore"]

Index = tuple[int, int]  # (iy, ix) in the tile grid
_MAX_DIGEST = 64  # bytes of a pixel digest kept with a tile


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
        self._memory: OrderedDict[Index, tuple[np.ndarray, bytes]] = OrderedDict()  # (tile, pixel digest)
        self._memory_used = 0
        self._disk_error: CacheError | None = None
        self._warned_corrupt = False
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
        returned array is read-only and shared with the cache. Use :meth:`get_with_digest`
        to reuse a tile only for the pixels it was made from.
        """
        entry = self.get_with_digest(index)
        return None if entry is None else entry[0]

    def get_with_digest(self, index: Index) -> tuple[np.ndarray, bytes] | None:
        """``(embedding, digest)`` of tile ``index``, ``digest`` as given to :meth:`put`; or ``None``.

        A tile on disk whose bytes do not match their checksum, or that has no checksum,
        is ``None`` (missing): it is recomputed and written again.
        """
        key = self._check_index(index)
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                self._memory.move_to_end(key)
                return entry
        if self._folder is None:
            return None
        entry = self._read(key)
        if entry is not None:
            self._remember(key, entry)
        return entry

    def put(self, index: Index, array, *, digest: bytes = b"") -> np.ndarray:
        """Store the embedding of tile ``index = (iy, ix)`` in memory and on disk.

        Parameters
        ----------
        index : (iy, ix)
        array : ndarray of shape ``embedding_shape``
            Cast to the store's dtype (same kind or safer: float to int is refused).
        digest : bytes
            Identity of the pixels the tile was embedded from (e.g.
            :func:`samkit.io.identity.pixel_digest` of the window), returned by
            :meth:`get_with_digest`; at most 64 bytes.

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
        digest = bytes(digest)
        if len(digest) > _MAX_DIGEST:
            raise ValueError(f"digest has {len(digest)} bytes; a pixel digest has at most {_MAX_DIGEST}")
        self._remember(key, (value, digest))
        if self._folder is not None and self._disk_error is None:
            data = memoryview(np.ascontiguousarray(value, dtype=self._disk_dtype)).cast("B")
            try:  # the chunk, then its check: a chunk is used only once both are there and agree
                self._folder.write(self._chunk_name(key), data)
                self._folder.write(self._check_name(key), xxhash.xxh3_64(data).digest() + digest)
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
        folder = self._folder
        return folder is not None and folder.exists(self._chunk_name(key)) and folder.exists(self._check_name(key))

    def present(self) -> np.ndarray:
        """(ny, nx) bool array: tiles in memory or on disk (lists chunk and check files, reads none)."""
        grid = np.zeros(self._grid_shape, bool)
        if self._folder is not None:
            try:
                names = set(self._folder.names())
            except OSError as err:
                raise _cache_error(f"cannot list the embedding store {self._path}", err) from err
            for name in names:
                key = self._parse_chunk_name(name)
                if key is not None and self._check_name(key) in names:
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

    def _remember(self, key: Index, entry: tuple[np.ndarray, bytes]) -> None:
        size = entry[0].nbytes
        if size > self._memory_bytes:
            return
        with self._lock:
            old = self._memory.pop(key, None)
            if old is not None:
                self._memory_used -= old[0].nbytes
            while self._memory and self._memory_used + size > self._memory_bytes:
                _, evicted = self._memory.popitem(last=False)
                self._memory_used -= evicted[0].nbytes
            self._memory[key] = entry
            self._memory_used += size

    def _chunk_name(self, key: Index) -> str:
        return f"c.{key[0]}.{key[1]}{self._key_suffix}"

    @staticmethod
    def _check_name(key: Index) -> str:
        return f"s.{key[0]}.{key[1]}"

    def _parse_chunk_name(self, name: str) -> Index | None:
        if not (name.startswith("c.") and name.endswith(self._key_suffix)):
            return None
        parts = name[2 : len(name) - len(self._key_suffix)].split(".")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            return None
        iy, ix = int(parts[0]), int(parts[1])
        ny, nx = self._grid_shape
        return (iy, ix) if iy < ny and ix < nx else None

    def _read(self, key: Index) -> tuple[np.ndarray, bytes] | None:
        name = self._chunk_name(key)
        out = np.empty(self._embedding_shape, self._disk_dtype)
        try:
            complete = self._folder.read_into(name, out)
            check = self._folder.read_small(self._check_name(key), 8 + _MAX_DIGEST) if complete else None
        except OSError as err:
            problem = f"could not be read ({err})"
        else:
            if complete is None or (complete and check is None):
                return None  # not written yet, or its writer was killed before the check
            if complete and xxhash.xxh3_64(memoryview(out).cast("B")).digest() == check[:8]:
                value = out.astype(self._dtype, copy=False)
                value.flags.writeable = False
                return value, check[8:]
            if complete:  # a flipped bit, or the chunk of one writer and the check of another
                with self._lock:
                    first, self._warned_corrupt = not self._warned_corrupt, True
                if first:
                    warnings.warn(
                        f"tile {key} of {self._path} does not match its checksum (a damaged disk or file?); "
                        "it is recomputed, and so is any other such tile of this store (warned once)",
                        UserWarning, stacklevel=3,
                    )  # fmt: skip
                return None
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

    def _open_disk(self) -> Folder:
        location = self._path
        shape = (*self._grid_shape, *self._embedding_shape)
        wanted = metadata(json.loads(self._signature_json), shape, self._embedding_shape, self._dtype)
        try:
            _durable.makedirs(location.parent)
            sweep_leftovers(location)
            folder = open_store(location, wanted)
            folder.sweep_partials()
        except CacheError:
            raise
        except OSError as err:
            raise _cache_error(f"cannot use {location} as an embedding cache", err) from err
        return folder



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
