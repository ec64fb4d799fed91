"""A user's hand on napari's canvas: real Qt mouse and key events (not the layers' API), oracle model, real images.

The widget is opened through napari's own path (``add_plugin_dock_widget``,
which hands the plugin proxied viewers and layers) in a shown viewer.
"""

import numpy as np
import pytest
from qtpy.QtCore import Qt
from samkit.interaction import KEYS
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, shown_widget  # noqa: F401 (fixtures)
from napari_helpers import (
    SCALE, TRANSLATE, commit_clicked, innermost, largest, no_traceback, start, wait_for_preview, wait_idle,
)  # fmt: skip
from napari_qt_input import drag, key, move

IMAGE_ID = "472b1c5ff988"  # 512 x 680, 91 nuclei: one default window


@pytest.fixture
def session(shown_widget, qtbot, dsb):
    """(viewer, widget, annotator, truth) with the oracle on a layer with scale and translate, view reset."""
    viewer, widget = shown_widget
    image, truth = dsb(IMAGE_ID)
    viewer.add_image(image, name="dsb", rgb=True, scale=SCALE, translate=TRANSLATE)
    annotator = start(widget, qtbot, OracleModel(truth))
    viewer.reset_view()
    qtbot.wait(50)
    return viewer, widget, annotator, truth


def world(y, x):
    """Image pixel (y, x) -> world coordinates of the layer."""
    return np.array([y, x], float) * SCALE + TRANSLATE


def frame(truth, label):
    """The box (y0, x0, y1, x1, pixel edges) framing object ``label``, and its two corners in world coordinates."""
    ys, xs = np.nonzero(truth == label)
    box = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    return box, world(box[0] - 0.5, box[1] - 0.5), world(box[2] - 0.5, box[3] - 0.5)


def look_at(viewer, corner0, corner1):
    """Zoom the camera so that the box between the world corners fills about half the canvas."""
    viewer.camera.center = tuple((corner0 + corner1) / 2)
    viewer.camera.zoom = 0.5 * min(np.asarray(viewer.window._qt_viewer.canvas.size) / np.abs(corner1 - corner0))


def test_box_mode_from_the_plugin_draws_the_dragged_box_and_keeps_the_camera(session, qtbot, notes):
    """Three ways into box mode (a script activating the annotator's box layer, the key, the button):
    each real drag gives a box of the dragged size, the oracle's object, and the camera does not move."""
    viewer, widget, annotator, truth = session
    ways = {  # the script first: it activates the box layer while that is still in napari's pan-zoom mode
        "script": lambda: (setattr(viewer.layers.selection, "active", annotator.box),
                           setattr(annotator.box, "mode", "add_rectangle")),  # fmt: skip
        "key": lambda: key(viewer, KEYS["box_mode"]),
        "button": lambda: qtbot.mouseClick(widget.annotate.buttons["box_mode"], Qt.MouseButton.LeftButton),
    }
    for number, ((way, enter), label) in enumerate(zip(ways.items(), largest(truth, 3)), start=1):
        box, corner0, corner1 = frame(truth, label)
        look_at(viewer, corner0, corner1)
        centre, zoom = tuple(viewer.camera.center), viewer.camera.zoom
        enter()
        drag(viewer, corner0, corner1)
        # napari's rectangle tool starts a box of its handle's size (a few screen pixels): under a pixel here
        np.testing.assert_allclose(annotator.annotation.box, box, atol=0.5, err_msg=way)
        wait_for_preview(qtbot, annotator, truth == label)
        assert tuple(viewer.camera.center) == centre and viewer.camera.zoom == zoom, way
        assert annotator.box.mode == "add_rectangle" and len(annotator.box.data) == 1, way
        key(viewer, KEYS["commit"])
        wait_idle(qtbot, annotator)
        assert viewer.layers.selection.active is annotator.box  # box mode stays, as in Jupyter
        key(viewer, KEYS["point_mode"])
        assert viewer.layers.selection.active is annotator.points and annotator.points.mode == "add"
        np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data) == number, truth == label)
    no_traceback(notes)


def test_clicks_and_keys_measure_table_and_status_follow_undo_and_erase(session, qtbot, notes):
    """Points clicked on the canvas, the commit key commits; once measured, the table and the status line follow
    every undo, redo and erase (they used to keep deleted objects and "measured 2 object(s)")."""
    viewer, widget, annotator, truth = session
    chosen = largest(truth, 2)
    commit_clicked(qtbot, annotator, truth, chosen)
    assert [(np.asarray(annotator.labels) == i).sum() for i in (1, 2)] == [(truth == c).sum() for c in chosen]
    qtbot.mouseClick(widget.measure.measure_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.measure.table_view.rowCount() == 2, timeout=20_000)
    assert widget.status.text() == "measured 2 object(s)"

    def table_lists(*labels):
        qtbot.waitUntil(lambda: not annotator.measurements.running and widget.measure.table_view.rowCount() == len(labels),
                        timeout=20_000)  # fmt: skip
        assert list(annotator.table["label"]) == list(labels)
        assert [widget.measure.table_view.cell_text(i, 0) for i in range(len(labels))] == [str(v) for v in labels]
        np.testing.assert_array_equal(annotator.labels_layer.features["index"], labels)

    key(viewer, KEYS["undo"])  # undoes the commit of object 2
    table_lists(1)
    assert "measured" not in widget.status.text() and "1 object" in widget.status.text()
    key(viewer, KEYS["redo"])
    table_lists(1, 2)
    assert "redone" in widget.status.text()
    move(viewer, world(*innermost(truth, chosen[0])))  # erase object 1, under the mouse
    key(viewer, KEYS["erase_object"])
    table_lists(2)
    assert widget.status.text().startswith("erased object 1")
    no_traceback(notes)
