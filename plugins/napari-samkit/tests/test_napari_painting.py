"""napari's own labels tools on the samkit labels layer, driven by real mouse and key events, journaled by samkit.

The oracle for what a tool paints is napari itself: every gesture is made
twice, on a plain numpy labels layer and on the samkit labels layer, and the
two must agree pixel for pixel, while each gesture is one step of samkit's
journal (undo, redo, autosave).
"""

import numpy as np
import samkit
from samkit.interaction import KEYS
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, shown_widget  # noqa: F401 (fixtures)
from napari_helpers import commit_clicked, innermost, largest, no_traceback, start
from napari_qt_input import click, drag, key

IMAGE_ID = "0ed3555a4bd4"  # 256 x 256, 21 nuclei


def test_paint_erase_fill_are_napari_s_and_journaled(shown_widget, qtbot, dsb, notes, tmp_path):
    viewer, widget = shown_widget
    image, truth = dsb(IMAGE_ID)
    viewer.add_image(image, rgb=True)
    widget.form.autosave.setText(str(tmp_path / "objects"))
    annotator = start(widget, qtbot, OracleModel(truth))
    first, second = largest(truth, 2)
    commit_clicked(qtbot, annotator, truth, (first, second))
    layer = annotator.labels_layer
    reference = viewer.add_labels(np.asarray(layer.data).copy(), name="napari's own")
    viewer.layers.move(viewer.layers.index(reference), 0)  # drawn below, never picked
    committed = np.asarray(layer.data).copy()
    viewer.reset_view()
    qtbot.wait(50)

    (y1, x1), (y2, x2) = innermost(truth, first), innermost(truth, second)
    gestures = [  # (napari's tool, samkit's name of it, label, what the mouse does)
        ("paint", "brush", 1, lambda: drag(viewer, (y1, x1), (y2, x2))),  # object 1 grows a bridge to object 2
        ("erase", "eraser", 0, lambda: drag(viewer, (y2 - 6, x2), (y2 + 6, x2))),  # a cut through object 2
        ("fill", "fill", 7, lambda: click(viewer, (y1, x1))),  # object 1 (and its bridge) becomes object 7
    ]
    steps = len(annotator.labels.log)
    for tool, name, label, gesture in gestures:
        viewer.layers.selection.active = reference
        reference.mode, reference.selected_label, reference.brush_size = tool, label, 5
        gesture()
        viewer.layers.selection.active = layer  # the samkit layer: napari's own keys pick the tool
        layer.selected_label, layer.brush_size = label, 5
        key(viewer, KEYS[name])
        assert layer.mode == tool
        gesture()
        np.testing.assert_array_equal(np.asarray(layer.data), reference.data, err_msg=tool)
        steps += 1
        assert len(annotator.labels.log) == steps and annotator.labels.log[-1]["op"] == "paint", tool
        assert not layer.data.writing  # nothing held back: the label image itself has the edit
    assert sorted(annotator.labels.objects) == [2, 7]
    edited = np.asarray(layer.data).copy()
    assert (edited != committed).sum() > 100  # the gestures changed something visible

    reopened = samkit.LabelImage.open(tmp_path / "objects")  # autosaved, through the same journal
    np.testing.assert_array_equal(np.asarray(reopened), edited)
    key(viewer, "Control-Z")  # napari's undo key on the labels layer: samkit's journal, one gesture
    qtbot.waitUntil(lambda: not np.array_equal(np.asarray(layer.data), edited))
    assert sorted(annotator.labels.objects) == [1, 2]
    key(viewer, KEYS["undo"])
    key(viewer, KEYS["undo"])
    np.testing.assert_array_equal(np.asarray(layer.data), committed)
    key(viewer, KEYS["redo"])
    key(viewer, KEYS["redo"])
    key(viewer, "Control-Shift-Z")
    np.testing.assert_array_equal(np.asarray(layer.data), edited)
    no_traceback(notes)


def test_paintable_labels_reads_and_writes_like_numpy_and_never_writes_the_label_image():
    """What napari may do to a labels layer's data (basic slices with steps, ints, one integer array per axis,
    Ellipsis) gives what a numpy array would, over chunk borders; the label image is written only by samkit."""
    from napari_samkit._painting import PaintableLabels

    rng = np.random.default_rng(0)
    initial = rng.integers(0, 5, (300, 520)).astype(np.uint32)
    labels = samkit.LabelImage(initial.shape, chunks=(64, 64), initial=initial)
    data, expected = PaintableLabels(labels), initial.copy()
    keys = [(slice(10, 200), slice(30, 400)), (5, slice(None)), (slice(None), 7), (slice(0, 300, 3), slice(1, 500, 7)),
            (np.array([1, 100, 299]), np.array([0, 519, 200])), Ellipsis, (3, 4)]  # fmt: skip
    for written in keys:
        values = rng.integers(0, 9, np.shape(expected[written])).astype(np.uint32)
        data[written], expected[written] = values, values
        for read in keys:
            np.testing.assert_array_equal(data[read], expected[read], err_msg=f"{written} then {read}")
            assert np.shape(data[read]) == np.shape(expected[read])
    data[50:60, 50:60] = 7  # a scalar over a region
    expected[50:60, 50:60] = 7
    np.testing.assert_array_equal(np.asarray(data), expected)
    np.testing.assert_array_equal(np.asarray(labels), initial)  # never written behind the journal
    assert data.writing
    data.take_writes()
    np.testing.assert_array_equal(np.asarray(data), initial)


def test_a_refused_edit_leaves_the_labels_as_they_were(shown_widget, qtbot, dsb, notes, monkeypatch):
    """The label image refuses the stroke (as when its autosave folder cannot be written): a short notification,
    and the layer shows the labels as they were, not the stroke."""
    from samkit.errors import AutosaveError

    from napari_helpers import messages

    viewer, widget = shown_widget
    image, truth = dsb(IMAGE_ID)
    viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, OracleModel(truth))
    viewer.reset_view()
    commit_clicked(qtbot, annotator, truth, largest(truth, 1))
    before = np.asarray(annotator.labels).copy()

    def refuse(*args, **kwargs):
        raise AutosaveError("cannot write the autosave folder: disk full")

    monkeypatch.setattr(annotator.labels, "set_pixels", refuse)
    layer = annotator.labels_layer
    viewer.layers.selection.active = layer
    layer.selected_label, layer.brush_size = 1, 5
    key(viewer, KEYS["brush"])
    drag(viewer, (20, 20), (200, 200))
    assert any("disk full" in m for m in messages(notes, "error"))
    assert not layer.data.writing
    np.testing.assert_array_equal(np.asarray(layer.data), before)
    no_traceback(notes)
