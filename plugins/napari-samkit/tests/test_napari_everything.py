"""Segment everything from the dock (whole image, current view, cancel) with the SAM-like model: the objects
found join the labels as one undoable step, around the user's own, with their scores."""

import numpy as np
import samkit
from qtpy.QtCore import Qt
from samkit.interaction import KEYS
from samkit.testing import SamLikeModel

from napari_helpers import dsb, notes, shown_widget, widget  # noqa: F401 (fixtures)
from napari_helpers import commit_clicked, largest, no_traceback, start
from napari_qt_input import key

IMAGE_ID = "0ed3555a4bd4"  # 256 x 256, 21 nuclei: one window
LEFT = Qt.MouseButton.LeftButton


def test_segment_everything_adds_objects_around_the_user_s_in_one_step(shown_widget, qtbot, dsb, notes):
    viewer, widget = shown_widget
    image, truth = dsb(IMAGE_ID)
    viewer.add_image(image, rgb=True)
    model = SamLikeModel(truth)
    annotator = start(widget, qtbot, model)
    viewer.reset_view()
    commit_clicked(qtbot, annotator, truth, largest(truth, 1))
    by_hand = np.asarray(annotator.labels).copy()

    panel = widget.everything
    widget.tabs.setCurrentWidget(panel)
    qtbot.mouseClick(panel.start_button, LEFT)  # the whole image (the default choice)
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    found = samkit.segment_all(image, model)  # what the engine finds on its own, with the same windows
    now = np.asarray(annotator.labels)
    np.testing.assert_array_equal(now[by_hand > 0], by_hand[by_hand > 0])  # the user's object is untouched
    expected = {label for label in found.objects if ((np.asarray(found) == label) & (by_hand == 0)).any()}
    assert len(annotator.labels.objects) == 1 + len(expected) and len(expected) > 10
    assert panel.bar.value() == panel.bar.maximum() == 1 and f"added {len(expected)}" in panel.message.text()
    attributes = annotator.labels.attributes
    assert all("score" in attributes[label] for label in annotator.labels.objects)
    assert widget.objects.model.rowCount() == len(annotator.labels.objects)  # listed, editable like any commit
    key(viewer, KEYS["undo"])  # one step takes them all back
    np.testing.assert_array_equal(np.asarray(annotator.labels), by_hand)

    # the current view: only the windows covering it; objects touching it are kept whole
    viewer.camera.center, viewer.camera.zoom = (64, 64), viewer.camera.zoom * 3
    region = annotator.embedder.visible_region()
    assert region[2] < 200 and region[3] < 200
    panel.where.setCurrentText("current view")
    qtbot.mouseClick(panel.start_button, LEFT)
    qtbot.waitUntil(lambda: not panel.running, timeout=120_000)
    in_view = samkit.segment_all(image, model, region=region)
    added = np.asarray(annotator.labels) * (by_hand == 0)
    np.testing.assert_array_equal(added > 0, (np.asarray(in_view) > 0) & (by_hand == 0))
    no_traceback(notes)


def test_cancel_stops_segment_everything_and_adds_nothing(widget, qtbot, dsb, notes):
    """128 px windows with 0.3 s embeddings, so that the run is long enough to cancel."""
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, SamLikeModel(truth, delay=0.3), tile_size=128, halo=16)
    panel = widget.everything
    panel.start()
    qtbot.waitUntil(lambda: panel.bar.value() >= 1, timeout=60_000)
    qtbot.mouseClick(panel.cancel_button, LEFT)
    qtbot.waitUntil(lambda: not panel.running, timeout=60_000)
    assert panel.bar.value() < panel.bar.maximum() and panel.message.text().startswith("cancelled")
    assert not annotator.labels.objects and not annotator.labels.can_undo
    no_traceback(notes)
