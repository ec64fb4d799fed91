"""LabelImage on real ground truth: commit, undo/redo, overwrite policy, huge images,
reopening, crashes at every write and SIGKILL at any moment, full disks."""

import errno
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import samkit.data
import samkit._durable as durable
from samkit.engine.mask import Mask
from samkit.errors import AutosaveError, InvalidImageError, InvalidLabelError, InvalidPromptError
from samkit.labels import LabelImage

from conftest import load_dsb

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gt():
    """Real ground truth: DSB2018 nuclei (520, 696), 30 objects, shipped with samkit."""
    return samkit.data.nuclei()[1]


@pytest.fixture(params=["memory", "disk"])
def where(request, tmp_path):
    return None if request.param == "memory" else tmp_path / "labels"


def relabelled(gt, order):
    """GT with object order[k] renamed k + 1 (the ids commits give)."""
    out = np.zeros(gt.shape, np.uint32)
    for k, i in enumerate(order):
        out[gt == i] = k + 1
    return out


def boxes(array):
    """Each id's bbox (y0, x0, y1, x1), computed from scratch."""
    return {i + 1: (s[0].start, s[1].start, s[0].stop, s[1].stop)
            for i, s in enumerate(ndimage.find_objects(np.asarray(array))) if s is not None}


def assert_consistent(labels):
    """The id index matches the pixels and no id is reused."""
    array = np.asarray(labels)
    assert labels.objects == boxes(array)
    assert labels.next_label > array.max()


def commit_all(labels, gt, order):
    return [labels.commit(Mask.from_array(gt == i, prompt={"object": int(i)})) for i in order]


# -- building, undo, policy --


def test_committing_every_object_reproduces_ground_truth(gt, where):
    order = np.random.default_rng(0).permutation(np.unique(gt)[1:])
    labels = LabelImage(gt.shape, path=where, chunks=(128, 128))
    assert commit_all(labels, gt, order) == list(range(1, len(order) + 1))
    expected = relabelled(gt, order)
    np.testing.assert_array_equal(np.asarray(labels), expected)
    np.testing.assert_array_equal(labels[100:200, 300:], expected[100:200, 300:])
    np.testing.assert_array_equal(labels.read((10, 20, 30, 40)), expected[10:30, 20:40])
    assert labels.objects == boxes(expected) and labels.next_label == len(order) + 1
    assert [e["prompt"]["object"] for e in labels.log[1:]] == order.tolist()
    assert labels.labels_in((0, 0, *gt.shape)) == list(range(1, len(order) + 1))
    np.testing.assert_array_equal(labels.mask(5).to_array(gt.shape), expected == 5)


def test_dense_touching_objects_from_shared_data(real_data):
    _, gt = load_dsb(real_data, "1d9eacb3161f")  # 115 touching nuclei
    order = np.unique(gt)[1:][::-1]
    labels = LabelImage(gt.shape, chunks=(256, 256))
    commit_all(labels, gt, order)
    np.testing.assert_array_equal(np.asarray(labels), relabelled(gt, order))
    assert_consistent(labels)


def test_undo_redo_erase_clear_sequence(gt, where):
    order = np.unique(gt)[1:]
    labels = LabelImage(gt.shape, path=where, chunks=(256, 256))
    assert not labels.can_undo and not labels.undo() and not labels.redo()
    commit_all(labels, gt, order[:5])
    full = relabelled(gt, order[:5])
    states = [full]
    labels.erase(2)
    states.append(np.where(full == 2, 0, full))
    labels.clear()
    states.append(np.zeros_like(full))
    for state in states[::-1][1:]:
        assert labels.undo()
        np.testing.assert_array_equal(np.asarray(labels), state)
        assert_consistent(labels)
    assert labels.undo()  # the 5th commit
    np.testing.assert_array_equal(np.asarray(labels), np.where(full == 5, 0, full))
    for state in [full, *states[1:]]:
        assert labels.redo()
        np.testing.assert_array_equal(np.asarray(labels), state)
    assert not labels.can_redo and not labels.redo()
    labels.undo()
    labels.undo()  # back to `full` minus erase: `states[0]`
    assert labels.can_redo
    labels.commit(Mask.from_array(gt == order[6]))  # a new commit forgets the redo stack
    assert not labels.can_redo
    assert labels.next_label == 7  # ids are never reused
    np.testing.assert_array_equal(np.asarray(labels) == 6, gt == order[6])
    assert_consistent(labels)


def test_overwrite_replaces_and_keep_preserves(gt):
    a, b = 13, 12  # a blob over object `a` that also covers part of its neighbour `b`
    blob = ndimage.binary_dilation(gt == a, iterations=6)
    labels = LabelImage(gt.shape, initial=np.where(gt == b, 1, 0))
    assert (blob & (gt == b)).any()
    assert labels.objects.keys() == {1} and labels.next_label == 2
    before = np.asarray(labels)
    kept = labels.commit(Mask.from_array(blob))
    np.testing.assert_array_equal(np.asarray(labels), np.where(blob & (before == 0), kept, before))
    with pytest.raises(InvalidLabelError, match="overwrite=True"):
        labels.commit(Mask.from_array(blob & (before == 1)))  # nothing left to write
    labels.undo()
    over = labels.commit(Mask.from_array(blob), overwrite=True)
    np.testing.assert_array_equal(np.asarray(labels), np.where(blob, over, before))
    assert_consistent(labels)  # object 1's box shrank or it vanished
    labels.undo()
    np.testing.assert_array_equal(np.asarray(labels), before)
    assert_consistent(labels)


def test_commit_to_an_existing_label_grows_it(gt):
    labels = LabelImage(gt.shape)
    k = labels.commit(Mask.from_array(gt == 1))
    assert labels.commit(Mask.from_array(gt == 2), label=k) == k
    np.testing.assert_array_equal(np.asarray(labels), np.where((gt == 1) | (gt == 2), k, 0))
    assert labels.commit(Mask.from_array(gt == 3), label=40) == 40 and labels.next_label == 41
    assert_consistent(labels)


def test_bad_arguments_raise_and_change_nothing(gt):
    labels = LabelImage(gt.shape, dtype=np.uint8)
    labels.commit(Mask.from_array(gt == 1))
    log = labels.log
    with pytest.raises(InvalidLabelError, match="empty"):
        labels.commit(Mask.from_array(np.zeros(gt.shape, bool)))
    with pytest.raises(InvalidLabelError, match="1..255"):
        labels.commit(Mask.from_array(gt == 2), label=256)
    with pytest.raises(InvalidPromptError, match="outside the image"):
        labels.commit(Mask((500, 690, 530, 700), np.ones((30, 10), bool)))
    with pytest.raises(InvalidPromptError, match="JSON"):
        labels.commit(Mask.from_array(gt == 2, prompt={"f": object()}))
    with pytest.raises(InvalidLabelError, match="no object 7"):
        labels.erase(7)
    with pytest.raises(TypeError, match="Mask"):
        labels.commit(gt == 2)
    with pytest.raises(InvalidImageError, match="2D"):
        LabelImage((10, 10, 3))
    with pytest.raises(InvalidImageError, match="shape"):
        LabelImage((10, 10), initial=np.zeros((10, 11), int))
    assert labels.log == log and labels.objects.keys() == {1}


def test_change_callbacks_get_the_bbox_and_cannot_break_a_commit(gt, caplog):
    labels = LabelImage(gt.shape)
    seen = []
    labels.on_change(seen.append)

    @labels.on_change
    def broken(bbox):
        raise RuntimeError("front end bug")

    with caplog.at_level(logging.ERROR, logger="samkit.labels"):
        k = labels.commit(Mask.from_array(gt == 3))
    assert "front end bug" in caplog.text
    labels.undo()
    labels.off_change(seen.append)
    labels.redo()
    assert seen == [Mask.from_array(gt == 3).bbox] * 2 and labels.objects.keys() == {k}


def test_commits_from_many_threads(gt):
    labels = LabelImage(gt.shape, chunks=(128, 128))
    ids = {}

    def work(objects):
        for i in objects:
            ids[i] = labels.commit(Mask.from_array(gt == i))

    threads = [threading.Thread(target=work, args=(np.unique(gt)[1 + t :: 4],)) for t in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(ids.values()) == list(range(1, 31))
    np.testing.assert_array_equal(np.asarray(labels), np.vectorize(lambda v: ids.get(v, 0))(gt))


# -- huge images --


def test_huge_label_image_touches_only_chunks_under_objects(gt, tmp_path):
    tracemalloc.start()
    labels = LabelImage((20000, 20000), path=tmp_path / "huge", chunks=(1024, 1024))
    places = [(5000, 7000), (1000, 1024 - 10), (19960, 19950)]  # the second crosses chunk borders
    crops = [Mask.from_array(gt == i).crop for i in (1, 2, 3)]
    for (y, x), crop in zip(places, crops):
        labels.commit(Mask.from_array(crop, offset=(y, x)))
    under = [{(y // 1024, x // 1024) for y, x in np.argwhere(crop) + place} for place, crop in zip(places, crops)]
    folder = tmp_path / "huge" / "labels.zarr" / "c"
    assert len([p for p in folder.rglob("*") if p.is_file()]) == len(set.union(*under)) >= 4
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100e6  # the whole image would be 1.6 GB
    (y, x), (h, w) = places[1], crops[1].shape
    np.testing.assert_array_equal(labels[y : y + h, x : x + w], crops[1] * 2)
    labels.erase(2)
    assert len([p for p in folder.rglob("*") if p.is_file()]) == len(under[0] | under[2])  # emptied chunks go


def test_huge_label_image_in_memory_costs_little(gt):
    tracemalloc.start()
    labels = LabelImage((20000, 20000))
    labels.commit(Mask.from_array(gt == 4, offset=(12000, 3000)))
    labels.undo()
    labels.redo()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100e6 and len(labels.objects) == 1


# -- saving and reopening --


def test_reopen_continues_ids_and_history(gt, tmp_path):
    path = tmp_path / "labels"
    labels = LabelImage(gt.shape, path=path, chunks=(200, 200))
    commit_all(labels, gt, [1, 2, 3])
    labels.erase(1)
    labels.undo()
    expected = np.asarray(labels)
    again = LabelImage(gt.shape, path=path)
    np.testing.assert_array_equal(np.asarray(again), expected)
    assert again.objects == labels.objects and again.next_label == 4 and again.chunks == (200, 200)
    assert again.can_redo and again.redo() and 1 not in again.objects
    again.undo()
    assert again.commit(Mask.from_array(gt == 4)) == 4
    assert not again.can_redo
    reopened = LabelImage.open(path)
    for _ in range(4):
        reopened.undo()
    assert not reopened.can_undo and not np.asarray(reopened).any() and reopened.next_label == 5
    with pytest.raises(InvalidImageError, match="shape"):
        LabelImage((100, 100), path=path)
    with pytest.raises(InvalidImageError, match="dtype"):
        LabelImage(gt.shape, path=path, dtype=np.uint16)
    assert LabelImage(gt.shape, path=path, dtype=np.dtype("uint32"), chunks=(200, 200)).next_label == 5
    with pytest.raises(InvalidImageError, match="without `initial`"):
        LabelImage(gt.shape, path=path, initial=gt)


def test_log_records_prompts_per_object(gt, tmp_path):
    labels = LabelImage(gt.shape, path=tmp_path / "l")
    points = np.array([[60, 350]])
    k = labels.commit(Mask.from_array(gt == 5, score=0.9, prompt={"points": points, "labels": [1]}))
    lines = [json.loads(line) for line in (tmp_path / "l" / "log.jsonl").read_text().splitlines()]
    assert lines[0]["op"] == "create" and lines[0]["shape"] == list(gt.shape)
    assert lines[1]["op"] == "commit" and lines[1]["id"] == k and lines[1]["score"] == 0.9
    assert lines[1]["prompt"] == {"points": [[60, 350]], "labels": [1]}
    assert lines[1]["objects"] == {str(k): list(Mask.from_array(gt == 5).bbox)}
    assert (tmp_path / "l" / "ops" / "000001.npz").is_file()


def test_save_writes_a_copy_and_moves_autosave_only_when_asked(gt, tmp_path):
    labels = LabelImage(gt.shape, chunks=(100, 100))
    commit_all(labels, gt, [7, 8, 9])
    labels.undo()
    labels.save(tmp_path / "copy")
    assert labels.path is None  # a copy: the label image itself stays where it was
    labels.commit(Mask.from_array(gt == 10))
    copy = LabelImage.open(tmp_path / "copy")
    np.testing.assert_array_equal(np.asarray(copy), relabelled(gt, [7, 8]))
    assert copy.can_redo and plain(copy.log) == plain(labels.log[:-1])
    with pytest.raises(AutosaveError, match="not empty"):
        labels.save(tmp_path / "copy")  # never over an earlier copy unless asked
    labels.save(tmp_path / "copy", overwrite=True)
    assert plain(LabelImage.open(tmp_path / "copy").log) == plain(labels.log)
    assert not list(tmp_path.glob("copy.*"))  # no temporary folder left beside it

    labels.save(tmp_path / "saved", autosave=True)
    assert labels.path == tmp_path / "saved"
    labels.undo()  # autosaved there from now on
    again = LabelImage.open(tmp_path / "saved")
    np.testing.assert_array_equal(np.asarray(again), relabelled(gt, [7, 8]))
    assert again.log == labels.log and again.can_undo and again.can_redo
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    for folder in ("saved", "mine"):  # its own autosave folder, a folder samkit did not write
        with pytest.raises(AutosaveError, match="choose a new folder"):
            labels.save(tmp_path / folder, overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "x"
    assert LabelImage.open(tmp_path / "saved").log == labels.log
    labels.to_tiff(tmp_path / "labels.tif")
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tmp_path / "labels.tif"), np.asarray(again))


def test_unusable_locations_fail_at_construction(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    with pytest.raises(AutosaveError, match="cannot create"):
        LabelImage((10, 10), path=tmp_path / "file" / "labels")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(AutosaveError, match="not empty"):
        LabelImage((10, 10), path=tmp_path / "mine")

    def read_only(path, data):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(durable, "write_file", read_only)
    with pytest.raises(AutosaveError, match="Read-only") as info:
        LabelImage((10, 10), path=tmp_path / "ro")
    assert info.value.errno == errno.EROFS and str(tmp_path / "ro") in str(info.value)
    with pytest.raises(AutosaveError, match="no saved label image"):
        LabelImage.open(tmp_path / "nothing")


# -- failures and crashes --


class Crash(Exception):
    """Stands for the process dying: the code under test does not catch it."""


def fail_at(monkeypatch, k, error, *, after=False):
    """Make the k-th durable write (intent, chunk or log line) raise `error` (and every later one if `after`)."""
    calls = {"n": 0}
    real = {"write_file": durable.write_file, "append_line": durable.append_line}

    def wrap(name):
        def write(path, data):
            calls["n"] += 1
            if calls["n"] == k or (after and calls["n"] > k):
                if name == "append_line" and error is Crash:  # a torn line, as a power cut could leave
                    real[name](path, data[: len(data) // 2])
                raise error() if error is Crash else error
            return real[name](path, data)
        return write

    for name in real:
        monkeypatch.setattr(durable, name, wrap(name))
    return calls


def blob(gt, i):
    """Object i of the ground truth grown over its neighbours."""
    return Mask.from_array(ndimage.binary_dilation(gt == i, iterations=8))


OPS = {  # each changes several (64, 64) chunks
    "commit": lambda labels, gt: labels.commit(blob(gt, 13), overwrite=True),
    "erase": lambda labels, gt: labels.erase(1),
    "undo": lambda labels, gt: labels.undo(),  # of the blob over object 19
}


def _start(gt, path):
    labels = LabelImage(gt.shape, path=path, chunks=(64, 64))
    commit_all(labels, gt, [12, 13, 19, 29])  # two pairs of neighbours
    labels.commit(blob(gt, 19), overwrite=True)
    return labels


@pytest.mark.parametrize("op", OPS)
def test_a_crash_at_every_write_leaves_all_or_nothing(gt, tmp_path, monkeypatch, op):
    start = tmp_path / "start"
    before, log = np.asarray(_start(gt, start)), LabelImage.open(start).log
    shutil.copytree(start, tmp_path / "probe")
    probe = LabelImage.open(tmp_path / "probe")
    with monkeypatch.context() as m:
        calls = fail_at(m, 0, Crash)
        OPS[op](probe, gt)
    after, writes = np.asarray(probe), calls["n"]
    assert writes >= 4  # intent, >= 2 chunks, log line
    for k in range(1, writes + 1):  # the process dies before its k-th write (the last: a torn log line)
        path = shutil.copytree(start, tmp_path / f"crash{k}")
        labels = LabelImage.open(path)
        with monkeypatch.context() as m:
            fail_at(m, k, Crash)
            with pytest.raises(Crash):
                OPS[op](labels, gt)
        reopened = LabelImage.open(path)
        np.testing.assert_array_equal(np.asarray(reopened), before, err_msg=f"crash at write {k}")
        assert reopened.log == log
        assert_consistent(reopened)
        assert not list(path.rglob(".*.tmp"))
        OPS[op](reopened, gt)  # and it carries on
        np.testing.assert_array_equal(np.asarray(reopened), after)


FAILURES = {"intent": (1, False), "first-chunk": (2, False), "all-later-writes": (3, True), "log-line": ("log", False)}


@pytest.mark.parametrize("op, failure", [*(("commit", f) for f in FAILURES), ("erase", "first-chunk"),
                                         ("undo", "all-later-writes"), ("undo", "log-line")])
def test_full_disk_raises_autosave_error_and_changes_nothing(gt, tmp_path, monkeypatch, op, failure):
    k, after = FAILURES[failure]
    path = tmp_path / "labels"
    labels = _start(gt, path)
    before, objects, log, next_label = np.asarray(labels), labels.objects, labels.log, labels.next_label
    if k == "log":  # the last write of the operation
        probe = _start(gt, tmp_path / "probe")
        with monkeypatch.context() as m:
            calls = fail_at(m, 0, Crash)
            OPS[op](probe, gt)
        k = calls["n"]
    with monkeypatch.context() as m:
        fail_at(m, k, OSError(errno.ENOSPC, "No space left on device", str(path)), after=after)
        with pytest.raises(AutosaveError, match="No space left") as info:
            OPS[op](labels, gt)
        assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
        assert labels.objects == objects and labels.log == log and labels.next_label == next_label
        if after:  # undoing the partial write failed too: a restart cannot recover yet
            with pytest.raises(AutosaveError, match="recovering"):
                LabelImage.open(path)
        else:  # the partial write was undone at once
            np.testing.assert_array_equal(np.asarray(labels), before)
    on_disk = LabelImage.open(path)  # what a restart sees
    np.testing.assert_array_equal(np.asarray(on_disk), before)
    assert on_disk.objects == objects and on_disk.log == log
    OPS[op](labels, gt)  # space is back: the same operation now works
    assert len(labels.log) == len(log) + 1
    np.testing.assert_array_equal(np.asarray(LabelImage.open(path)), np.asarray(labels))
    assert_consistent(labels)


PROGRAM = textwrap.dedent("""
    def program(labels, gt, order):
        \"\"\"An endless mix of commits, undos, redos and erases (run by the child and by the oracle).\"\"\"
        while True:
            for i in order[:12]:
                yield labels.commit(Mask.from_array(gt == i))
            for _ in range(4):
                yield labels.undo()
            for _ in range(2):
                yield labels.redo()
            for k in sorted(labels.objects):
                yield labels.erase(k)
""")
exec(PROGRAM)

def test_a_log_line_of_unknown_fate_refuses_changes_until_reopened(gt, tmp_path, monkeypatch):
    path = tmp_path / "labels"
    labels = _start(gt, path)
    real = durable.append_line

    def written_but_fsync_fails(path, line):
        real(path, line)
        raise OSError(errno.EIO, "Input/output error")

    def cannot_truncate(path, size):
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(durable, "append_line", written_but_fsync_fails)
        m.setattr(durable, "truncate", cannot_truncate)
        with pytest.raises(AutosaveError, match="reopen"):
            labels.erase(1)
    with pytest.raises(AutosaveError, match="reopen"):
        labels.erase(2)
    reopened = LabelImage.open(path)  # the line made it: so did the erase, whole
    assert 1 not in reopened.objects and len(reopened.log) == len(labels.log) + 1
    assert_consistent(reopened)


def test_an_interrupted_creation_starts_again(gt, tmp_path, monkeypatch):
    path = tmp_path / "labels"
    with monkeypatch.context() as m:
        fail_at(m, 3, Crash)  # while copying `initial` in
        with pytest.raises(Crash):
            LabelImage(gt.shape, path=path, initial=gt, chunks=(128, 128))
    assert not (path / "log.jsonl").exists()
    labels = LabelImage(gt.shape, path=path, initial=gt, chunks=(128, 128))
    np.testing.assert_array_equal(np.asarray(LabelImage.open(path)), gt)
    assert labels.next_label == gt.max() + 1 and labels.objects == boxes(gt)


CHILD = PROGRAM + textwrap.dedent("""
    import sys
    import numpy as np
    import samkit.data
    from samkit.engine.mask import Mask
    from samkit.labels import LabelImage

    gt = samkit.data.nuclei()[1]
    order = np.random.default_rng(1).permutation(np.unique(gt)[1:])
    labels = LabelImage(gt.shape, path=sys.argv[1], chunks=(64, 64))
    print("ready", flush=True)
    if sys.argv[2] == "commits":
        for i in order:
            print(labels.commit(Mask.from_array(gt == i)), flush=True)
    else:
        for n, _ in enumerate(program(labels, gt, order), 1):
            print(n, flush=True)
""")


def run_child(path, mode, *, lines=None, delay=None):
    """Run CHILD, SIGKILL it after `lines` printed lines or `delay` seconds; return what it printed."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path), mode], cwd=REPO, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout.readline() == "ready\n"
    printed = []
    if delay is not None:
        threading.Timer(delay, child.send_signal, (signal.SIGKILL,)).start()
    while line := child.stdout.readline():
        printed.append(int(line))
        if len(printed) == lines:
            child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the child finished before it was killed"
    return printed


def test_sigkill_mid_sequence_loses_no_returned_commit(gt, tmp_path):
    printed = run_child(tmp_path / "labels", "commits", lines=10)
    labels = LabelImage.open(tmp_path / "labels")
    n = len(labels.objects)
    assert printed == list(range(1, len(printed) + 1)) and n >= len(printed)
    order = np.random.default_rng(1).permutation(np.unique(gt)[1:])
    np.testing.assert_array_equal(np.asarray(labels), relabelled(gt, order[:n]))  # nothing half-written
    assert labels.next_label == n + 1
    commit_all(labels, gt, order[n:])
    np.testing.assert_array_equal(np.asarray(labels), relabelled(gt, order))


def test_sigkill_at_a_random_moment(gt, tmp_path):
    delay = random.uniform(0.05, 1.0)
    printed = run_child(tmp_path / "labels", "program", delay=delay)
    labels = LabelImage.open(tmp_path / "labels")
    done = len(labels.log) - 1
    assert done in (len(printed), len(printed) + 1), (delay, done, len(printed))
    oracle = LabelImage(gt.shape)
    steps = program(oracle, gt, np.random.default_rng(1).permutation(np.unique(gt)[1:]))
    for _ in range(done):
        next(steps)
    np.testing.assert_array_equal(np.asarray(labels), np.asarray(oracle), err_msg=f"killed after {delay:.3f} s")
    assert labels.objects == oracle.objects and labels.next_label == oracle.next_label
    assert (labels.can_undo, labels.can_redo) == (oracle.can_undo, oracle.can_redo)
    assert labels.commit(Mask.from_array(gt == 1)) == oracle.next_label


# -- damaged files: found on reopen, named, rebuilt from the log --


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


CHUNK = 32  # a dozen chunk files


def plain(log):
    """The log without the checksums of stored files (a rebuilt array has its own)."""
    return [{k: v for k, v in e.items() if k != "checksums"} for e in log]


@pytest.fixture(scope="module")
def saved(real_data, tmp_path_factory):
    """A label image saved with commits, an erase, an undo and an overwrite of real DSB2018 nuclei (21 objects)."""
    _, gt = load_dsb(real_data, "0ed3555a4bd4")
    path = tmp_path_factory.mktemp("saved") / "labels"
    labels = LabelImage(gt.shape, path=path, chunks=(CHUNK, CHUNK))
    commit_all(labels, gt, np.unique(gt)[1:])
    labels.erase(4)
    labels.undo()
    labels.commit(blob(gt, 9), overwrite=True)
    labels.erase(15)
    labels.set_attributes({1: {"class_name": "nucleus"}, 2: {"class_name": "mitosis"}})  # ops without pixels
    labels.set_attributes({3: {"class_name": "debris"}})
    labels.undo()
    ys, xs = np.nonzero(gt == 12)
    labels.set_pixels(ys[::2], xs[::2], 0)  # a pixel edit across the object
    return path, np.asarray(labels), labels.objects, labels.log, labels.attributes


def damaged_copy(saved, tmp_path, name="labels"):
    return shutil.copytree(saved[0], tmp_path / name)


def assert_repaired(path, saved, damaged_files):
    """repair=True restores what was committed and keeps the damaged folder, byte for byte, beside it."""
    repaired = LabelImage.open(path, repair=True)
    np.testing.assert_array_equal(np.asarray(repaired), saved[1])
    assert repaired.objects == saved[2] and plain(repaired.log) == plain(saved[3]) and repaired.attributes == saved[4]
    kept = [p for p in path.parent.iterdir() if p.name.startswith(f"{path.name}.damaged-")]
    assert len(kept) == 1 and _files(kept[0]) == damaged_files
    again = LabelImage.open(path)  # whole again: reopens without repair, and carries on
    assert again.can_undo and again.undo()
    return again


def test_every_flipped_byte_in_a_chunk_is_found_and_repaired(saved, tmp_path):
    chunks = sorted(p.relative_to(saved[0]).as_posix() for p in (saved[0] / "labels.zarr" / "c").rglob("*")
                    if p.is_file())  # fmt: skip
    assert len(chunks) >= 10
    rng = np.random.default_rng(0)
    for k, name in enumerate(chunks):
        size = (saved[0] / name).stat().st_size
        for position in (0, int(rng.integers(1, size - 4)), size - 1):  # header, compressed data, checksum
            path = damaged_copy(saved, tmp_path, f"flip{k}-{position}")
            data = bytearray((path / name).read_bytes())
            data[position] ^= 1 << int(rng.integers(8))
            (path / name).write_bytes(bytes(data))
            for reopen in (lambda: LabelImage.open(path), lambda: LabelImage(saved[1].shape, path=path)):
                with pytest.raises(AutosaveError, match=rf"{name}.*checksum.*repair=True"):
                    reopen()
            if position == size - 1 or k % 3 == 0:
                assert_repaired(path, saved, _files(path))


def test_a_deleted_or_stale_chunk_is_found_and_repaired(saved, tmp_path, real_data):
    files = [p for p in (saved[0] / "labels.zarr" / "c").rglob("*") if p.is_file()]
    name = max(files, key=lambda p: p.stat().st_size)
    name = name.relative_to(saved[0]).as_posix()
    path = damaged_copy(saved, tmp_path)
    (path / name).unlink()
    with pytest.raises(AutosaveError, match=rf"{name} is missing, but the log says it holds labels.*repair=True"):
        LabelImage.open(path)
    assert_repaired(path, saved, _files(path))

    # a chunk put back from an older copy: intact, but not what the log says it holds
    _, gt = load_dsb(real_data, "0ed3555a4bd4")
    old = LabelImage(gt.shape, path=tmp_path / "old", chunks=(CHUNK, CHUNK))
    commit_all(old, gt, np.unique(gt)[1:])
    older = _files(tmp_path / "old")
    name = next(n for n, data in _files(saved[0]).items() if "/c/" in n and older.get(n, data) != data)
    stale = damaged_copy(saved, tmp_path, "stale")
    (stale / name).write_bytes(older[name])
    with pytest.raises(AutosaveError, match=rf"{name} fails its checksum"):
        LabelImage.open(stale)
    assert_repaired(stale, saved, _files(stale))


@pytest.mark.parametrize("damage", ["flip", "truncate", "shape"])
def test_a_damaged_zarr_json_is_named_and_repaired(saved, tmp_path, damage):
    path = damaged_copy(saved, tmp_path)
    meta = path / "labels.zarr" / "zarr.json"
    text = meta.read_bytes()
    meta.write_bytes({"flip": text[:3] + bytes([text[3] ^ 4]) + text[4:], "truncate": text[: len(text) // 2],
                      "shape": text.replace(b"256", b"257", 1)}[damage])  # fmt: skip
    with pytest.raises(AutosaveError, match=r"zarr\.json.*repair=True"):
        LabelImage.open(path)
    assert_repaired(path, saved, _files(path))


def test_a_damaged_operation_record_is_named_and_repair_restores_what_it_can(saved, tmp_path):
    path = damaged_copy(saved, tmp_path)
    record = path / "ops" / "000005.npz"
    data = bytearray(record.read_bytes())
    data[len(data) // 2] ^= 0x20
    record.write_bytes(bytes(data))
    labels = LabelImage.open(path)  # the labels themselves are whole
    np.testing.assert_array_equal(np.asarray(labels), saved[1])
    with pytest.raises(AutosaveError, match=r"cannot undo: the record of operation 5 .*000005\.npz is damaged"):
        while labels.undo():
            pass
    np.testing.assert_array_equal(np.asarray(labels), np.where(saved[1] > 5, 0, saved[1]))  # undone down to 5

    # a chunk under object 5 damaged too: the log rebuilds everything but object 5's pixels there
    path = damaged_copy(saved, tmp_path, "both")
    (path / "ops" / "000005.npz").write_bytes(bytes(data))
    (cy0, cx0, cy1, cx1) = saved[2][5]
    name = f"labels.zarr/c/{cy0 // CHUNK}/{cx0 // CHUNK}"
    (path / name).write_bytes(b"garbage")
    with pytest.raises(AutosaveError, match=name):
        LabelImage.open(path)
    with pytest.warns(RuntimeWarning, match=r"c/\d+/\d+ may lack labels.*000005\.npz are damaged"):
        repaired = LabelImage.open(path, repair=True)
    cell = tuple(slice(c // CHUNK * CHUNK, c // CHUNK * CHUNK + CHUNK) for c in (cy0, cx0))
    have, want = np.asarray(repaired), saved[1].copy()
    np.testing.assert_array_equal(np.where(have == want, 0, 1)[cell].sum(), np.sum(want[cell] == 5))
    have[cell], want[cell] = 0, 0
    np.testing.assert_array_equal(have, want)  # everywhere else: exactly what was committed


def test_every_flipped_byte_in_a_record_raises_autosave_error_or_changes_nothing(saved, tmp_path):
    from samkit._journal import DiskJournal

    path = damaged_copy(saved, tmp_path)
    journal, record = DiskJournal(path), path / "ops" / "000005.npz"
    good, data = journal.parts(5), record.read_bytes()
    outcomes = set()
    for position in range(len(data)):
        record.write_bytes(data[:position] + bytes([data[position] ^ 4]) + data[position + 1 :])
        try:
            parts = journal.parts(5)
        except AutosaveError as e:
            assert "000005.npz is damaged" in str(e)
            outcomes.add("error")
            continue
        assert len(parts) == len(good) and all(  # a flip in zip metadata that no reader uses
            a.bbox == b.bbox and a.value == b.value and np.array_equal(a.changed, b.changed)
            and np.array_equal(a.before, b.before) for a, b in zip(parts, good)
        )  # fmt: skip
        outcomes.add("same")
    assert outcomes == {"error", "same"}


@pytest.mark.parametrize("damage", ["its record", "another chunk"])
def test_damage_next_to_an_unfinished_operation(gt, tmp_path, monkeypatch, damage):
    """A crash left an operation half written (intent + first chunk); repair rolls it back, damage or not."""
    path = tmp_path / "labels"
    before = np.asarray(_start(gt, path))
    labels = LabelImage.open(path)
    with monkeypatch.context() as m:
        fail_at(m, 3, Crash)
        with pytest.raises(Crash):
            labels.commit(blob(gt, 13), overwrite=True)
    intent = path / "ops" / f"{len(labels.log):06d}.npz"
    if damage == "its record":
        intent.write_bytes(intent.read_bytes()[:-40])
        match = rf"unfinished last operation.*{intent.name} is damaged.*repair=True"
    else:
        y0, x0, y1, x1 = blob(gt, 13).bbox
        name = next(f"c/{i}/{j}" for i in range(9) for j in range(11) if (path / f"labels.zarr/c/{i}/{j}").is_file()
                    and not (y0 // 64 <= i <= (y1 - 1) // 64 and x0 // 64 <= j <= (x1 - 1) // 64))  # away from the blob
        (path / "labels.zarr" / name).write_bytes(b"garbage")
        match = rf"{name} fails its checksum"
    with pytest.raises(AutosaveError, match=match):
        LabelImage.open(path)
    repaired = LabelImage.open(path, repair=True)
    np.testing.assert_array_equal(np.asarray(repaired), before)
    assert_consistent(repaired)


def test_a_repair_stopped_between_its_two_moves_is_finished(saved, tmp_path):
    path = tmp_path / "labels"
    damaged_copy(saved, tmp_path, "labels.rebuilding")  # the rebuilt folder, not yet moved into place
    with pytest.raises(AutosaveError, match="no saved label image"):
        LabelImage.open(path)
    np.testing.assert_array_equal(np.asarray(LabelImage.open(path, repair=True)), saved[1])
    assert not (tmp_path / "labels.rebuilding").exists()


def test_label_images_saved_before_checksums_still_open(saved, tmp_path):
    """A folder written without crc32c codec nor checksums in its log: opens, works, is checked by decoding."""
    import zarr

    path = damaged_copy(saved, tmp_path)
    lines = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
    (path / "log.jsonl").write_text("".join(json.dumps({k: v for k, v in e.items() if k != "checksums"}) + "\n"
                                            for e in lines))  # fmt: skip
    shutil.rmtree(path / "labels.zarr")
    old = zarr.create_array(str(path / "labels.zarr"), shape=saved[1].shape, chunks=(CHUNK, CHUNK),  # default codecs
                            dtype=np.uint32, fill_value=0, attributes={"samkit": {"kind": "labels", "format": 1}})
    old[:] = saved[1]
    labels = LabelImage.open(path)
    np.testing.assert_array_equal(np.asarray(labels), saved[1])
    assert labels.undo() and labels.redo()
    assert LabelImage.open(path, repair=True).objects == saved[2]  # nothing to repair
    (path / "labels.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(AutosaveError, match=r"zarr\.json is damaged \(.*repair=True"):
        LabelImage.open(path)
