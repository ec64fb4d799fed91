"""Pixel edits (set_pixels, brush, eraser, fill) and object attributes of a LabelImage, on real DSB2018 nuclei:
one journaled step each, undo/redo, autosave and reopening, crashes, measure and export columns."""

import numpy as np
import pytest
from scipy import ndimage

import samkit
from samkit.engine import editing
from samkit.engine.mask import Mask
from samkit.errors import InvalidLabelError, InvalidPromptError
from samkit.labels import LabelImage

from test_labels import Crash, assert_consistent, fail_at, gt, where  # noqa: F401 (gt, where: fixtures)


def committed(gt, ids, path=None, chunks=(64, 64)):
    labels = LabelImage(gt.shape, path=path, chunks=chunks)
    for i in ids:
        labels.commit(Mask.from_array(gt == i, score=0.9))
    return labels


def test_set_pixels_is_one_undoable_step_with_one_notification(gt, where):
    labels = committed(gt, [12, 13], where)  # two touching nuclei, over several (64, 64) chunks
    before = np.asarray(labels)
    seen = []
    labels.on_change(seen.append)
    ys, xs = np.nonzero(gt == 12)
    half = ys < np.median(ys)  # erase the top half of object 1, give object 2 the bottom rows
    values = np.where(half, 0, 2)
    box = labels.set_pixels(ys, xs, values)
    expected = before.copy()
    expected[ys, xs] = values
    np.testing.assert_array_equal(np.asarray(labels), expected)
    assert seen == [box] and box == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    assert 1 not in labels.objects and labels.log[-1]["op"] == "paint" and labels.log[-1]["ids"] == [0, 2]
    assert_consistent(labels)
    assert labels.set_pixels(ys, xs, values) is None and len(seen) == 1  # nothing changes: no step
    assert labels.undo()
    np.testing.assert_array_equal(np.asarray(labels), before)
    assert labels.redo()
    np.testing.assert_array_equal(np.asarray(labels), expected)
    if where is not None:
        again = LabelImage.open(where)
        np.testing.assert_array_equal(np.asarray(again), expected)
        assert again.undo()
        np.testing.assert_array_equal(np.asarray(again), before)
        assert_consistent(again)


def test_a_pixel_given_twice_gets_its_last_value_and_new_ids_advance_next_label(gt):
    labels = committed(gt, [5])
    labels.set_pixels([3, 3, 4], [7, 7, 7], [9, 40, 40])
    assert int(labels[3, 7]) == 40 and int(labels[4, 7]) == 40 and labels.next_label == 41


def test_bad_pixels_raise_typed_errors_and_change_nothing(gt):
    labels = committed(gt, [5])
    before, log = np.asarray(labels), labels.log
    h, w = gt.shape
    for ys, xs, values, error, match in [
        ([0, h], [0, 0], 1, InvalidPromptError, "outside the image"),
        ([0, -1], [0, 0], 1, InvalidPromptError, "outside the image"),
        ([0.5], [0], 1, InvalidPromptError, "integer pixel coordinates"),
        ([[0]], [[0]], 1, InvalidPromptError, "1-D"),
        ([0, 1], [0], 1, InvalidPromptError, "one"),
        ([0], [0], 1.5, InvalidLabelError, "integer label"),
        ([0], [0], True, InvalidLabelError, "integer label"),
        ([0, 1], [0, 1], [1, 2, 3], InvalidLabelError, "integer label"),
        ([0], [0], -1, InvalidLabelError, "0..4294967295"),
    ]:
        with pytest.raises(error, match=match):
            labels.set_pixels(ys, xs, values)
    np.testing.assert_array_equal(np.asarray(labels), before)
    assert labels.log == log


def test_brush_covers_the_disc_along_the_stroke_and_stays_in_the_image():
    ys, xs = editing.brush((50, 60), [[10.2, 10.7]], 3)
    yy, xx = np.mgrid[:50, :60]
    disc = np.hypot(yy - 10, xx - 10) <= 3
    assert set(zip(ys, xs)) == set(zip(*np.nonzero(disc)))
    ys, xs = editing.brush((50, 60), [[-10, 5], [45, 5], [45, 70]], 1)  # leaves and re-enters the image
    assert ys.min() == 0 and xs.max() == 59 and len(set(zip(ys, xs))) == len(ys)
    assert {(y, 5) for y in range(0, 46)} <= set(zip(ys, xs))
    for bad in ([[np.nan, 1]], []):
        with pytest.raises(InvalidPromptError, match="stroke"):
            editing.brush((50, 60), bad, 1)
    with pytest.raises(InvalidPromptError, match="radius"):
        editing.brush((50, 60), [[1, 1]], -1)


def test_paint_erase_and_fill_edit_real_objects(gt, tmp_path):
    labels = committed(gt, [12, 13], tmp_path / "labels")
    one, two = (ndimage.center_of_mass(gt == i) for i in (12, 13))
    stroke = [one, two]  # across the border between the two nuclei
    covered = set(zip(*editing.brush(gt.shape, stroke, 4)))
    before = np.asarray(labels)

    editing.paint(labels, stroke, 4, 1, preserve=True)  # only background becomes object 1
    after = np.asarray(labels)
    changed = set(zip(*np.nonzero(after != before)))
    assert changed == {p for p in covered if before[p] == 0} and (after[before == 2] == 2).all()
    editing.paint(labels, stroke, 4, 1)  # over object 2 too
    assert {p for p in covered if labels[p] != 1} == set()
    editing.erase_pixels(labels, stroke, 2, label=2)  # nothing of object 2 is left under the stroke
    assert all(labels[p] != 2 for p in covered)
    editing.erase_pixels(labels, [one], 2)
    assert all(labels[p] == 0 for p in zip(*editing.brush(gt.shape, [one], 2)))

    y, x = np.argwhere(np.asarray(labels) == 2)[0]
    area = int((np.asarray(labels) == 2).sum())
    box = editing.fill(labels, y, x, 7)  # the connected part of object 2 becomes object 7
    assert int((np.asarray(labels) == 7).sum()) > 0 and box is not None
    assert int((np.asarray(labels) == 7).sum()) + int((np.asarray(labels) == 2).sum()) == area
    assert editing.fill(labels, y, x, 7) is None  # nothing to change
    ys, xs = editing.fill_pixels(labels, 0, 0, region=(0, 0, 30, 40))
    assert len(ys) == 30 * 40 - int((np.asarray(labels)[:30, :40] != 0).sum()) and ys.max() < 30 and xs.max() < 40
    assert_consistent(labels)
    steps = len(labels.log) - 3
    for _ in range(steps):
        labels.undo()
    np.testing.assert_array_equal(np.asarray(labels), before)
    np.testing.assert_array_equal(np.asarray(LabelImage.open(tmp_path / "labels")), before)
    with pytest.raises(InvalidLabelError, match="positive"):
        editing.paint(labels, stroke, 4, 0)
    with pytest.raises(InvalidPromptError, match="outside the image"):
        editing.fill(labels, -1, 0, 3)


def test_a_crash_at_every_write_of_a_paint_leaves_all_or_nothing(gt, tmp_path, monkeypatch):
    import shutil

    start = tmp_path / "start"
    committed(gt, [12, 13, 19, 29], start)
    before, log = np.asarray(LabelImage.open(start)), LabelImage.open(start).log
    stroke = [ndimage.center_of_mass(gt == i) for i in (12, 13, 19, 29)]

    def op(labels):
        editing.paint(labels, stroke, 6, 3)

    probe = LabelImage.open(shutil.copytree(start, tmp_path / "probe"))
    with monkeypatch.context() as m:
        calls = fail_at(m, 0, Crash)
        op(probe)
    after, writes = np.asarray(probe), calls["n"]
    assert writes >= 4
    for k in range(1, writes + 1):
        path = shutil.copytree(start, tmp_path / f"crash{k}")
        labels = LabelImage.open(path)
        with monkeypatch.context() as m:
            fail_at(m, k, Crash)
            with pytest.raises(Crash):
                op(labels)
        reopened = LabelImage.open(path)
        np.testing.assert_array_equal(np.asarray(reopened), before, err_msg=f"crash at write {k}")
        assert reopened.log == log
        op(reopened)
        np.testing.assert_array_equal(np.asarray(reopened), after)


# -- attributes --


def test_attributes_are_journaled_undoable_and_reopened(gt, where):
    labels = committed(gt, [3, 4, 5, 6], where)
    assert labels.attributes == {k: {"score": 0.9} for k in (1, 2, 3, 4)}  # a commit records its score
    heard = []
    labels.on_attributes(heard.append)
    labels.set_attributes({1: {"class_name": "nucleus", "score": None}, 2: {"class_name": "mitosis", "stability": 0.97}})
    assert labels.attributes[1] == {"class_name": "nucleus"} and labels.attributes[2]["stability"] == 0.97
    assert heard == [{1, 2}]
    labels.set_attributes({1: {"class_name": "nucleus"}})  # no change: no step
    assert len(heard) == 1 and labels.log[-1]["op"] == "attributes"
    labels.erase(2)  # erasing an object drops its attributes
    assert 2 not in labels.attributes and heard[-1] == {2}
    labels.undo()
    assert labels.attributes[2] == {"score": 0.9, "class_name": "mitosis", "stability": 0.97}
    labels.undo()  # the attribute edit
    assert labels.attributes[1] == {"score": 0.9} and "class_name" not in labels.attributes[2]
    labels.redo()
    wanted = labels.attributes
    assert wanted[1] == {"class_name": "nucleus"}
    if where is not None:
        again = LabelImage(gt.shape, path=where)
        assert again.attributes == wanted and again.can_redo
        again.redo()
        assert 2 not in again.attributes
        again.undo(), again.undo()
        assert again.attributes[1] == {"score": 0.9}


def test_bad_attributes_raise_and_change_nothing(gt):
    labels = committed(gt, [3])
    log = labels.log
    for changes, match in [({9: {"class_name": "x"}}, "no object 9"), ({1: {"": 1}}, "names"),
                           ({1: {3: 1}}, "names"), ({1: {"a": [1, 2]}}, "expected a str"),
                           ({1: {"a": float("nan")}}, "finite"), ({"1": {"a": 1}}, "ints"), ({1: "cell"}, "dict"),
                           ([1], "dict")]:  # fmt: skip
        with pytest.raises(InvalidLabelError, match=match):
            labels.set_attributes(changes)
    assert labels.log == log


def test_bulk_attributes_for_thousands_of_objects_are_one_step(gt, tmp_path):
    tiles = 12  # a 6240 x 8352 mosaic of the nuclei: 30 x 144 = 4320 objects
    mosaic = np.zeros((gt.shape[0] * tiles, gt.shape[1] * tiles), np.uint32)
    for k in range(tiles * tiles):
        i, j = divmod(k, tiles)
        block = mosaic[i * gt.shape[0] : (i + 1) * gt.shape[0], j * gt.shape[1] : (j + 1) * gt.shape[1]]
        block[...] = np.where(gt > 0, gt + k * 30, 0)
    labels = LabelImage(mosaic.shape, path=tmp_path / "mosaic", initial=mosaic, chunks=(512, 512))
    scores = {k: {"score": round(0.5 + (k % 50) / 100, 2), "mode": "grid"} for k in labels.objects}
    labels.set_attributes(scores)
    assert len(labels.log) == 2 and labels.attributes == scores
    again = LabelImage.open(tmp_path / "mosaic")
    assert again.attributes == scores
    again.undo()
    assert again.attributes == {}


def test_a_torn_attributes_line_leaves_them_as_before(gt, tmp_path, monkeypatch):
    labels = committed(gt, [3, 4], tmp_path / "labels")
    with monkeypatch.context() as m:
        fail_at(m, 1, Crash)  # the log line is the attribute edit's only write
        with pytest.raises(Crash):
            labels.set_attributes({1: {"class_name": "nucleus"}})
    again = LabelImage.open(tmp_path / "labels")
    assert again.attributes == {1: {"score": 0.9}, 2: {"score": 0.9}} and len(again.log) == 3
    again.set_attributes({1: {"class_name": "nucleus"}})
    assert LabelImage.open(tmp_path / "labels").attributes[1]["class_name"] == "nucleus"


def test_measure_and_exports_take_the_attributes(gt, tmp_path):
    labels = committed(gt, [3, 4, 5])
    labels.set_attributes({1: {"class_name": "nucleus"}, 3: {"class_name": "mitosis", "score": 0.4}})
    table = samkit.measure(labels)
    assert list(table["class_name"].fillna("")) == ["nucleus", "", "mitosis"]
    assert list(table["score"]) == [0.9, 0.9, 0.4] and table["score"].dtype == float
    from samkit.export import gather

    objects = gather(labels)
    assert objects.classes == {1: "nucleus", 3: "mitosis"} and objects.scores == {1: 0.9, 2: 0.9, 3: 0.4}
    labels.undo()
    assert "class_name" not in samkit.measure(labels).columns


def test_add_objects_pastes_found_objects_with_their_scores_in_one_step(gt, tmp_path):
    labels = committed(gt, [5], tmp_path / "labels")  # a user's object, which the found ones must not overwrite
    found = LabelImage(gt.shape, initial=gt)
    found.set_attributes({k: {"score": 0.5 + k / 100} for k in found.objects})
    steps = len(labels.log)
    new = editing.add_objects(labels, found)
    assert len(labels.log) == steps + 1 and 5 not in new and len(new) == len(np.unique(gt)) - 2
    array = np.asarray(labels)
    for old, label in new.items():
        np.testing.assert_array_equal(array == label, gt == old)
        assert labels.attributes[label] == {"mode": "grid", "score": 0.5 + old / 100}
    np.testing.assert_array_equal(array == 1, gt == 5)
    again = LabelImage.open(tmp_path / "labels")
    assert again.attributes == labels.attributes
    again.undo()
    np.testing.assert_array_equal(np.asarray(again), np.where(gt == 5, 1, 0))
    assert set(again.attributes) == {1}
    assert editing.add_objects(labels, np.where(gt == 5, 9, 0)) == {}  # all under existing objects: nothing
