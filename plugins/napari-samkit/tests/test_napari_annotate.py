"""The annotator dock widget with the oracle model on real DSB2018 images: click, preview, commit, undo, measure."""

import numpy as np
import pandas as pd
import pytest
import samkit
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, widget  # noqa: F401 (fixtures)
from napari_helpers import (
    SCALE, TRANSLATE, assert_table, click, innermost, largest, messages, no_traceback, press, start, wait_for_preview, wait_idle,
)  # fmt: skip

IMAGE_ID = "472b1c5ff988"  # 512 x 680, 91 nuclei: one default window


@pytest.fixture
def annotating(widget, qtbot, dsb):
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, name="dsb", rgb=True, scale=SCALE, translate=TRANSLATE)
    annotator = start(widget, qtbot, OracleModel(truth))
    assert annotator is not None
    return widget, annotator, image, truth


def test_points_preview_commit_undo_measure(annotating, qtbot, tmp_path, notes):
    widget, annotator, image, truth = annotating
    viewer = widget.viewer
    chosen = largest(truth, 3)
    expected = np.zeros(truth.shape, np.uint32)
    for new_id, gt_id in enumerate(chosen, start=1):
        click(annotator, *innermost(truth, gt_id))
        wait_for_preview(qtbot, annotator, truth == gt_id)  # the preview is exactly the object
        # one way per object: button, key on the points layer, key with the labels layer active
        if new_id == 1:
            widget.annotate.buttons["commit"].click()
        elif new_id == 2:
            viewer.layers.selection.active = annotator.points
            press(viewer, "C")
        else:
            viewer.layers.selection.active = annotator.labels_layer
            press(viewer, "C")
        wait_idle(qtbot, annotator)
        expected[truth == gt_id] = new_id
        assert len(annotator.points.data) == 0 and not annotator.preview_array().any()  # prompts cleared
    # the labels layer shows the engine's label image, which matches the ground truth objects
    assert annotator.labels_layer.data.labels is annotator.labels  # the engine's label image, not a copy
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data), expected)
    np.testing.assert_allclose(annotator.labels_layer.scale, SCALE)
    np.testing.assert_allclose(annotator.labels_layer.translate, TRANSLATE)

    press(viewer, "U")  # no prompts pending: undoes the last commit
    expected[expected == 3] = 0
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data), expected)

    widget.measure.measure_button.click()
    qtbot.waitUntil(lambda: annotator.table is not None, timeout=20_000)
    reference = samkit.measure(expected, samkit.open_image(image, spacing=SCALE[0]))
    assert_table(annotator.table, reference, annotator.labels)
    assert list(annotator.table["label"]) == [1, 2]
    features = annotator.labels_layer.features  # the table, plus napari's ``index`` column (= label id)
    np.testing.assert_array_equal(features["index"], [1, 2])
    assert_table(features.drop(columns="index"), reference, annotator.labels)
    assert widget.measure.table_view.rowCount() == 2 and widget.measure.table_view.cell_text(1, 0) == "2"

    written = widget.measure.export_csv(tmp_path / "objects.csv")
    pd.testing.assert_frame_equal(samkit.read_table(written), annotator.table, check_dtype=False)
    no_traceback(notes)


def test_box_negative_points_erase_redo_next_label(annotating, qtbot, notes):
    widget, annotator, image, truth = annotating
    viewer = widget.viewer
    first, second = largest(truth, 2)
    ys, xs = np.nonzero(truth == first)
    corners = np.array([[ys.min() - 0.5, xs.min() - 0.5], [ys.max() + 0.5, xs.max() + 0.5]])  # napari pixel edges
    world = corners * SCALE + TRANSLATE
    annotator.box.add_rectangles(annotator.box.world_to_data(world))
    wait_for_preview(qtbot, annotator, truth == first)  # the box designates the object it frames
    assert annotator.annotation.box == (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)

    click(annotator, *innermost(truth, second), positive=False)  # a background point: still the same object
    qtbot.waitUntil(lambda: len(annotator.annotation.points) == 1)
    assert annotator.annotation.point_labels == [0]
    wait_for_preview(qtbot, annotator, truth == first)
    assert annotator.points.face_color[0].tolist() == [1, 0, 0, 1]  # red: background

    press(viewer, "U")  # removes the last prompt (the point), keeping the box
    assert len(annotator.points.data) == 0 and annotator.annotation.box is not None
    annotator.commit()
    wait_idle(qtbot, annotator)
    assert len(annotator.box.data) == 0
    assert annotator.labels.objects.keys() == {1}

    press(viewer, "G")  # back to object points
    assert annotator.positive
    press(viewer, "N")
    assert annotator.annotation.labels.next_label == 2
    click(annotator, *innermost(truth, second))
    wait_for_preview(qtbot, annotator, truth == second)
    widget.annotate.buttons["commit"].click()
    wait_idle(qtbot, annotator)

    y, x = innermost(truth, first)  # erase the first object with the key, under the mouse
    viewer.cursor.position = tuple(np.array([y, x]) * SCALE + TRANSLATE)
    press(viewer, "Shift-E")
    assert set(np.unique(np.asarray(annotator.labels_layer.data))) == {0, 2}
    press(viewer, "U")
    assert set(np.unique(np.asarray(annotator.labels_layer.data))) == {0, 1, 2}
    press(viewer, "U")
    press(viewer, "Shift-U")  # redo the undone commit of object 2
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data) == 2, truth == second)
    assert "nothing" not in " ".join(messages(notes))
    no_traceback(notes)


def test_moving_and_removing_points_decode_again(annotating, qtbot):
    widget, annotator, image, truth = annotating
    a, b = largest(truth, 2)
    click(annotator, *innermost(truth, a))
    wait_for_preview(qtbot, annotator, truth == a)
    layer = annotator.points
    moved = layer.data.copy()
    moved[0] = layer.world_to_data(np.array(innermost(truth, b)) * SCALE + TRANSLATE)
    layer.data = moved  # as dragging a point does
    wait_for_preview(qtbot, annotator, truth == b)
    assert annotator.annotation.points == [tuple(float(v) for v in innermost(truth, b))]
    click(annotator, *innermost(truth, a))
    wait_for_preview(qtbot, annotator, truth == b)  # the first positive point decides (oracle rule)
    layer.mode = "select"  # a user selects a point to flip it (in add mode G changes only new points)
    layer.selected_data = {0}
    press(widget.viewer, "G")  # flips the selected point to background: now the second point's object
    assert annotator.annotation.point_labels == [0, 1] and widget.annotate.negative.isChecked()
    wait_for_preview(qtbot, annotator, truth == a)
    layer.selected_data = {0}
    layer.remove_selected()
    assert annotator.annotation.points == [tuple(float(v) for v in innermost(truth, a))]
    wait_for_preview(qtbot, annotator, truth == a)
    layer.selected_data = {0}
    layer.remove_selected()
    wait_for_preview(qtbot, annotator, np.zeros(truth.shape, bool))
    assert annotator.annotation.points == []


def test_negative_point_reaches_the_model_as_negative(widget, qtbot, dsb, notes):
    """The SAM-like test model (edge noise 0, so the expected mask is exact): a negative point inside
    the clicked object cuts away the part of it nearer to that point (the exact oracle ignores
    negative points, so it cannot show a lost sign)."""
    from samkit.testing import SamLikeModel

    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, name="dsb", rgb=True, scale=SCALE, translate=TRANSLATE)
    model = SamLikeModel(truth, noise=0)
    annotator = start(widget, qtbot, model)
    label = largest(truth, 1)[0]
    inside = innermost(truth, label)
    rows, cols = np.nonzero(truth == label)
    far = int(np.argmax((rows - inside[0]) ** 2 + (cols - inside[1]) ** 2))
    near_edge = (int(rows[far]), int(cols[far]))
    click(annotator, *inside)
    wait_for_preview(qtbot, annotator, truth == label)
    click(annotator, *near_edge, positive=False)
    qtbot.waitUntil(lambda: annotator.annotation.point_labels == [1, 0])
    expected = samkit.Session(image, model).segment(points=annotator.annotation.points, labels=[1, 0])
    wait_for_preview(qtbot, annotator, expected.to_array(truth.shape))
    shown = annotator.preview_array()
    assert shown[inside] and not shown[near_edge] and shown.sum() < (truth == label).sum()
    no_traceback(notes)
