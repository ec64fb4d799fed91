"""EmbeddingStore: memory LRU, zarr layout on disk, reuse by signature, atomic tiles, processes.

Embeddings here are deterministic synthetic arrays (the store is a storage layer): tile
(iy, ix) holds ``expected_tile(iy, ix, shape)``. Child processes import this module to get
the same arrays.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from samkit.engine import store_disk
from samkit.engine.store import EmbeddingStore
from samkit.errors import CacheError, SamkitError

SAM = (256, 64, 64)
SMALL = (4, 8, 8)
REPO = Path(__file__).resolve().parents[1]
SIG = {"model": "vit_b", "checkpoint": "sha256:01ab", "precision": "fp16", "tile": [1024, 64], "image": "xxh:42"}


def expected_tile(iy: int, ix: int, shape=SMALL, dtype="float16") -> np.ndarray:
    """The synthetic embedding of tile (iy, ix), as the store keeps it."""
    return np.random.default_rng(iy * 1000 + ix).standard_normal(shape).astype(dtype)


def fill(store: EmbeddingStore, order=None) -> None:
    for iy, ix in order or store.missing():
        store.put((iy, ix), expected_tile(iy, ix, store.embedding_shape))


def assert_complete(store: EmbeddingStore) -> None:
    assert store.present().all() and store.missing() == []
    for iy in range(store.grid_shape[0]):
        for ix in range(store.grid_shape[1]):
            np.testing.assert_array_equal(store.get((iy, ix)), expected_tile(iy, ix, store.embedding_shape))


def chunk_files(location: Path) -> list[str]:
    return sorted(p.name for p in location.iterdir() if p.name.startswith("c."))


def run_child(code: str, *args: str, **popen) -> subprocess.Popen:
    """Start ``python -c code args`` with this test module importable as ``test_store``."""
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, **popen)


# ---------------------------------------------------------------------- memory and disk


def test_memory_only_round_trip_casts_and_protects():
    store = EmbeddingStore(SIG, (2, 3), SMALL)
    assert store.path is None and store.get((1, 2)) is None and (1, 2) not in store
    values = np.random.default_rng(0).standard_normal(SMALL)  # float64 in, float16 stored
    stored = store.put((1, 2), values)
    assert stored.dtype == np.float16 and not stored.flags.writeable
    np.testing.assert_array_equal(store.get((1, 2)), values.astype(np.float16))
    values[:] = 0  # the caller's array is copied
    assert store.get((1, 2)).any()
    assert (1, 2) in store and store.missing() == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    store.clear_memory()
    assert store.get((1, 2)) is None


def test_disk_round_trip_is_a_zarr_array(tmp_path):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "emb.zarr"
    store = EmbeddingStore(SIG, (2, 3), SAM, path=path)
    assert store.path == path and EmbeddingStore.location(SIG, path) == path
    for index in [(0, 0), (1, 2)]:
        store.put(index, expected_tile(*index, SAM).astype(np.float32))  # fp32 in, fp16 stored
    store.clear_memory()
    np.testing.assert_array_equal(store.get((1, 2)), expected_tile(1, 2, SAM))
    assert chunk_files(path) == ["c.0.0.0.0.0", "c.1.2.0.0.0"]
    assert (path / "c.0.0.0.0.0").stat().st_size == 256 * 64 * 64 * 2  # raw fp16, no compressor

    array = zarr.open_array(path, mode="r")
    assert array.shape == (2, 3, *SAM) and array.chunks == (1, 1, *SAM) and array.dtype == np.float16
    assert array.attrs["samkit"]["signature"] == SIG
    np.testing.assert_array_equal(array[1, 2], expected_tile(1, 2, SAM))
    assert np.isnan(array[0, 1]).all()  # a missing tile reads as the fill value


@pytest.mark.parametrize("dtype", ["float32", "int16", "bool"])
def test_other_dtypes_and_shapes(tmp_path, dtype):
    shape = (3, 5)
    store = EmbeddingStore(SIG, (1, 2), shape, dtype, path=tmp_path / "e.zarr")
    value = (np.arange(15).reshape(shape) % 2).astype(dtype)
    store.put((0, 1), value)
    reopened = EmbeddingStore(SIG, (1, 2), shape, dtype, path=tmp_path / "e.zarr")
    got = reopened.get((0, 1))
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, value)


def test_reopen_reuses_tiles(tmp_path):
    store = EmbeddingStore(SIG, (2, 2), SMALL, path=tmp_path)
    fill(store, [(0, 1), (1, 0)])
    again = EmbeddingStore(dict(reversed(SIG.items())), (2, 2), SMALL, path=tmp_path)  # key order is irrelevant
    assert again.path == store.path
    assert again.present().tolist() == [[False, True], [True, False]]
    assert again.missing() == [(0, 0), (1, 1)]
    np.testing.assert_array_equal(again.get((1, 0)), expected_tile(1, 0))
    fill(again)
    assert_complete(EmbeddingStore(SIG, (2, 2), SMALL, path=tmp_path))


def test_cache_folder_names_stores_by_signature(tmp_path):
    other = {**SIG, "image": "xxh:43"}
    a = EmbeddingStore(SIG, (1, 1), SMALL, path=tmp_path / "cache")
    b = EmbeddingStore(other, (1, 1), SMALL, path=tmp_path / "cache")
    assert a.path.parent == b.path.parent == tmp_path / "cache"
    assert a.path != b.path and a.path.suffix == ".zarr" and len(a.path.stem) == 16
    assert a.path == EmbeddingStore.location(dict(sorted(SIG.items())), str(tmp_path / "cache"))
    a.put((0, 0), expected_tile(0, 0))
    assert b.get((0, 0)) is None and (0, 0) not in b
    assert EmbeddingStore.location(SIG, None) is None


@pytest.mark.parametrize(
    "change", [{"signature": {**SIG, "image": "xxh:99"}}, {"embedding_shape": (4, 8, 9)}, {"dtype": "float32"}]
)
def test_mismatch_is_never_reused(tmp_path, change):
    path = tmp_path / "emb.zarr"
    fill(EmbeddingStore(SIG, (2, 2), SMALL, path=path))
    kwargs = {"signature": SIG, "grid_shape": (2, 2), "embedding_shape": SMALL, "dtype": "float16", **change}
    with pytest.warns(UserWarning, match="made for another"):
        store = EmbeddingStore(path=path, **kwargs)
    assert store.missing() == [(0, 0), (0, 1), (1, 0), (1, 1)] and store.get((0, 0)) is None
    assert chunk_files(path) == [] and [p.name for p in tmp_path.iterdir()] == ["emb.zarr"]
    assert json.loads((path / "zarr.json").read_text())["attributes"]["samkit"]["signature"] == kwargs["signature"]


def test_foreign_folder_is_left_untouched(tmp_path):
    path = tmp_path / "labels.zarr"
    path.mkdir()
    (path / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    with pytest.raises(CacheError, match="not a samkit embedding store"):
        EmbeddingStore(SIG, (1, 1), SMALL, path=path)
    assert (path / "zarr.json").exists()


def test_store_created_by_another_process_between_two_looks_is_used(tmp_path, monkeypatch):
    """The store appears after this process found no zarr.json but before it checked the folder."""
    path = tmp_path / "store.zarr"
    fill(EmbeddingStore(SIG, (1, 2), SMALL, path=path))
    read = store_disk._read_metadata
    looks = []

    def first_look_misses(location):
        looks.append(location)
        return None if len(looks) == 1 else read(location)

    monkeypatch.setattr(store_disk, "_read_metadata", first_look_misses)
    assert_complete(EmbeddingStore(SIG, (1, 2), SMALL, path=path))


def test_lru_evicts_least_recently_used():
    one = expected_tile(0, 0).nbytes
    store = EmbeddingStore(SIG, (1, 4), SMALL, memory_bytes=3 * one)
    fill(store, [(0, 0), (0, 1), (0, 2)])
    store.get((0, 0))  # (0, 1) is now the least recently used
    store.put((0, 3), expected_tile(0, 3))
    assert store.present().tolist() == [[True, False, True, True]]
    assert store.get((0, 1)) is None
    assert EmbeddingStore(SIG, (1, 1), SMALL, memory_bytes=one - 1).put((0, 0), expected_tile(0, 0)) is not None


def test_lru_tiles_evicted_from_memory_come_back_from_disk(tmp_path):
    store = EmbeddingStore(SIG, (2, 2), SMALL, path=tmp_path, memory_bytes=expected_tile(0, 0).nbytes)
    fill(store)
    assert_complete(store)


def test_bad_input_is_refused_clearly(tmp_path):
    store = EmbeddingStore(SIG, (2, 2), SMALL)
    with pytest.raises(ValueError, match=r"shape \(4, 8\); this store holds \(4, 8, 8\)"):
        store.put((0, 0), np.zeros((4, 8)))
    with pytest.raises(TypeError, match="does not cast safely"):
        EmbeddingStore(SIG, (1, 1), (2,), "int8").put((0, 0), np.zeros(2))
    with pytest.raises(IndexError, match="outside the 2 x 2 tile grid"):
        store.put((2, 0), expected_tile(2, 0))
    with pytest.raises(TypeError, match="pair of ints"):
        store.get((0.5, 1))
    assert (5, 5) not in store
    with pytest.raises(TypeError, match="JSON-able"):
        EmbeddingStore({"image": object()}, (1, 1), SMALL)
    with pytest.raises(TypeError, match="bool, int, uint or float"):
        EmbeddingStore(SIG, (1, 1), SMALL, "complex64")
    with pytest.raises(ValueError, match="grid_shape"):
        EmbeddingStore(SIG, (0, 2), SMALL)


# ---------------------------------------------------------------------- atomicity


def test_half_written_tile_is_never_read(tmp_path):
    """Leftovers of a killed writer (a partial file) and foreign short chunks count as missing."""
    path = tmp_path / "emb.zarr"
    store = EmbeddingStore(SIG, (1, 2), SMALL, path=path)
    store.put((0, 0), expected_tile(0, 0))
    (path / ".c.0.1.0.0.0.0123abcd.partial").write_bytes(expected_tile(0, 1).tobytes()[:100])
    assert EmbeddingStore(SIG, (1, 2), SMALL, path=path).missing() == [(0, 1)]
    (path / "c.0.1.0.0.0").write_bytes(b"short")
    reopened = EmbeddingStore(SIG, (1, 2), SMALL, path=path)
    with pytest.warns(UserWarning, match="wrong size"):
        assert reopened.get((0, 1)) is None
    assert reopened.missing() == [(0, 1)]


def test_pixel_digest_is_kept_with_the_tile(tmp_path):
    path = tmp_path / "emb.zarr"
    store = EmbeddingStore(SIG, (1, 2), SAM, path=path)
    store.put((0, 0), expected_tile(0, 0, SAM), digest=b"pixels of window 0")
    store.put((0, 1), expected_tile(0, 1, SAM))
    for opened in (store, EmbeddingStore(SIG, (1, 2), SAM, path=path)):  # memory, then disk
        tile, digest = opened.get_with_digest((0, 0))
        np.testing.assert_array_equal(tile, expected_tile(0, 0, SAM))
        assert digest == b"pixels of window 0" and opened.get_with_digest((0, 1))[1] == b""
    assert sorted(p.name for p in path.iterdir()) == ["c.0.0.0.0.0", "c.0.1.0.0.0", "s.0.0", "s.0.1", "zarr.json"]
    with pytest.raises(ValueError, match="at most 64"):
        store.put((0, 0), expected_tile(0, 0, SAM), digest=bytes(65))


def test_a_damaged_tile_is_missing_and_warned_once(tmp_path):
    path = tmp_path / "emb.zarr"
    fill(EmbeddingStore(SIG, (1, 3), SAM, path=path))
    for ix in (0, 1):
        data = bytearray((path / f"c.0.{ix}.0.0.0").read_bytes())
        data[12345] ^= 0x10  # one bit of one fp16 value
        (path / f"c.0.{ix}.0.0.0").write_bytes(bytes(data))
    (path / "s.0.2").unlink()  # a chunk whose writer died before its check: not a tile
    store = EmbeddingStore(SIG, (1, 3), SAM, path=path)
    assert store.missing() == [(0, 2)]
    with pytest.warns(UserWarning, match=r"tile \(0, 0\) of .* does not match its checksum") as caught:
        assert store.get((0, 0)) is None and store.get((0, 1)) is None and store.get((0, 2)) is None
    assert len(caught) == 1
    fill(store, [(0, 0), (0, 1), (0, 2)])  # recomputed tiles replace the damaged ones
    assert_complete(EmbeddingStore(SIG, (1, 3), SAM, path=path, memory_bytes=0))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_killed_between_write_and_rename_leaves_no_tile(tmp_path):
    path = tmp_path / "emb.zarr"
    EmbeddingStore(SIG, (1, 2), SMALL, path=path).put((0, 0), expected_tile(0, 0))
    child = run_child(
        """
        import os, signal, sys
        from samkit.engine.store import EmbeddingStore
        from test_store import SIG, SMALL, expected_tile
        store = EmbeddingStore(SIG, (1, 2), SMALL, path=sys.argv[1])
        os.replace = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # die after the data is written
        store.put((0, 1), expected_tile(0, 1))
        """,
        str(path),
    )
    assert child.wait(timeout=60) == -signal.SIGKILL
    partial = [p for p in path.iterdir() if p.name.endswith(".partial")]
    assert len(partial) == 1 and partial[0].stat().st_size == expected_tile(0, 1).nbytes
    store = EmbeddingStore(SIG, (1, 2), SMALL, path=path)
    assert (0, 1) not in store and store.get((0, 1)) is None and store.missing() == [(0, 1)]
    fill(store)
    assert_complete(EmbeddingStore(SIG, (1, 2), SMALL, path=path))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_interrupted_fill_resumes(tmp_path):
    path, grid = tmp_path / "emb.zarr", (4, 4)
    child = run_child(
        """
        import sys
        from samkit.engine.store import EmbeddingStore
        from test_store import SAM, SIG, expected_tile
        store = EmbeddingStore(SIG, (4, 4), SAM, path=sys.argv[1])
        for iy, ix in store.missing():
            store.put((iy, ix), expected_tile(iy, ix, SAM).astype("float32"))
            print(iy, ix, flush=True)
        """,
        str(path),
        stdout=subprocess.PIPE,
        text=True,
    )
    for _ in range(4):
        assert child.stdout.readline()
    child.send_signal(signal.SIGKILL)  # most likely in the middle of the fifth tile
    child.wait(timeout=60)
    child.stdout.close()

    store = EmbeddingStore(SIG, grid, SAM, path=path)
    present = store.present()
    assert 4 <= present.sum() < 16
    assert store.missing() == [(int(y), int(x)) for y, x in zip(*np.nonzero(~present))]
    for iy, ix in zip(*np.nonzero(present)):
        np.testing.assert_array_equal(store.get((iy, ix)), expected_tile(iy, ix, SAM))
    fill(store)
    assert_complete(EmbeddingStore(SIG, grid, SAM, path=path, memory_bytes=0))


def test_two_processes_fill_one_store(tmp_path):
    path, shape = tmp_path / "cache", (64, 32, 32)
    go = tmp_path / "go"
    code = """
        import sys, time
        from pathlib import Path
        from samkit.engine.store import EmbeddingStore
        from test_store import SIG, expected_tile
        path, go, reverse = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
        while not go.exists():
            time.sleep(0.005)
        store = EmbeddingStore(SIG, (6, 6), (64, 32, 32), path=path)
        order = [(iy, ix) for iy in range(6) for ix in range(6)]
        for iy, ix in reversed(order) if reverse else order:
            store.put((iy, ix), expected_tile(iy, ix, (64, 32, 32)))
        """
    children = [run_child(code, str(path), str(go), flag) for flag in "01"]
    time.sleep(0.5)
    go.touch()  # both create or open the store at the same moment
    assert [c.wait(timeout=120) for c in children] == [0, 0]
    store = EmbeddingStore(SIG, (6, 6), shape, path=path, memory_bytes=0)
    assert_complete(store)
    assert sorted(p.name for p in path.iterdir()) == [store.path.name]  # no leftover folders
    assert not [p for p in store.path.iterdir() if p.name.startswith(".")]  # nor partial files

    single = EmbeddingStore(SIG, (6, 6), shape, path=tmp_path / "single")
    fill(single)
    files = sorted(p.name for p in single.path.iterdir())
    assert files == sorted(p.name for p in store.path.iterdir())
    for name in files:
        assert (single.path / name).read_bytes() == (store.path / name).read_bytes(), name


@pytest.mark.skipif(not store_disk._DIR_FD, reason="needs dir_fd (stores are then used through a descriptor)")
def test_store_replaced_under_an_open_one_is_never_mixed(tmp_path):
    """Two sessions on different images, one explicit path: the last opener wins, cleanly."""
    path = tmp_path / "emb.zarr"
    first = EmbeddingStore(SIG, (1, 2), SMALL, path=path)
    first.put((0, 0), expected_tile(0, 0))
    with pytest.warns(UserWarning, match="made for another signature"):
        second = EmbeddingStore({**SIG, "image": "other"}, (1, 2), SMALL, path=path)
    with pytest.warns(UserWarning, match="memory only"):
        first.put((0, 1), expected_tile(0, 1))  # its folder is gone: the tile stays in memory
    assert_complete(first)
    assert second.missing() == [(0, 0), (0, 1)] and chunk_files(path) == []


def test_threads_share_a_store(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    store = EmbeddingStore(SIG, (4, 4), SMALL, path=tmp_path, memory_bytes=3 * expected_tile(0, 0).nbytes)
    indices = [(iy, ix) for iy in range(4) for ix in range(4)]

    def work(index):
        store.put(index, expected_tile(*index))
        return store.get(index)

    with ThreadPoolExecutor(4) as pool:
        for index, got in zip(indices * 2, pool.map(work, indices * 2)):
            np.testing.assert_array_equal(got, expected_tile(*index))
    assert_complete(store)


# ---------------------------------------------------------------------- errors


def test_unusable_location_raises_cache_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for path in [blocker / "cache", blocker / "emb.zarr", blocker]:
        with pytest.raises(CacheError) as info:
            EmbeddingStore(SIG, (1, 1), SMALL, path=path)
        assert isinstance(info.value, (SamkitError, OSError)) and str(blocker) in str(info.value)


@pytest.mark.parametrize("existing", [False, True])
def test_read_only_location_raises_at_construction(tmp_path, monkeypatch, existing):
    path = tmp_path / "emb.zarr"
    if existing:
        EmbeddingStore(SIG, (1, 1), SMALL, path=path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(CacheError, match="Read-only file system") as info:
        EmbeddingStore(SIG, (1, 1), SMALL, path=path)
    assert info.value.errno == errno.EROFS and str(path) in str(info.value) and "path=None" in str(info.value)


def test_full_disk_keeps_the_tile_in_memory(tmp_path, monkeypatch):
    path = tmp_path / "emb.zarr"
    store = EmbeddingStore(SIG, (1, 3), SMALL, path=path)
    store.put((0, 0), expected_tile(0, 0))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.warns(UserWarning, match="No space left on device.*memory only"):
        store.put((0, 1), expected_tile(0, 1))
    assert isinstance(store.disk_error, CacheError) and store.disk_error.errno == errno.ENOSPC
    store.put((0, 2), expected_tile(0, 2))  # no second warning, no second try
    monkeypatch.undo()
    assert_complete(store)
    assert EmbeddingStore(SIG, (1, 3), SMALL, path=path).missing() == [(0, 1), (0, 2)]
    assert not [p for p in path.iterdir() if p.name.endswith(".partial")]
