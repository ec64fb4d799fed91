"""A whole session as a user has it, on a 1280 x 800 window: clicks, a box, commits, a brush edit, a class name,
measurements and a plot, all with real Qt mouse and key events and the SAM-like test model (SAM's behaviour, from
the ground truth). With ``SAMKIT_SCREENSHOTS=<folder>`` it saves the screenshots shown in docs/content/napari.md."""

import os
from pathlib import Path

import numpy as np
from qtpy.QtCore import Qt
from samkit.interaction import KEYS
from samkit.testing import SamLikeModel

from napari_helpers import dsb, notes, shown_widget  # noqa: F401 (fixtures)
from napari_helpers import innermost, largest, no_traceback, start, wait_idle
from napari_qt_input import click, drag, key

IMAGE_ID = "472b1c5ff988"  # 512 x 680, 91 nuclei


def iou(a, b) -> float:
    return (a & b).sum() / (a | b).sum()


def test_a_whole_session_with_the_sam_like_model(shown_widget, qtbot, dsb, notes):
    viewer, widget = shown_widget
    image, truth = dsb(IMAGE_ID)
    viewer.window._qt_window.resize(1280, 800)  # a laptop screen
    viewer.add_image(image, name="nuclei (DSB2018)", rgb=True)
    annotator = start(widget, qtbot, SamLikeModel(truth))
    viewer.reset_view()
    qtbot.wait(50)
    labels = annotator.labels
    chosen = largest(truth, 6)

    def commit():
        key(viewer, KEYS["commit"])
        wait_idle(qtbot, annotator)

    for label in chosen[:3]:  # click, commit
        click(viewer, innermost(truth, label))
        qtbot.waitUntil(lambda: annotator.preview_mask is not None)
        commit()
    ys, xs = np.nonzero(truth == chosen[3])  # a box around the fourth
    key(viewer, KEYS["box_mode"])
    drag(viewer, (ys.min() - 1, xs.min() - 1), (ys.max() + 1, xs.max() + 1))
    qtbot.waitUntil(lambda: annotator.preview_mask is not None)
    commit()
    key(viewer, KEYS["point_mode"])
    for new_id, label in enumerate(chosen[:3], start=1):  # the SAM-like model's answers: SAM's edge noise
        assert iou(np.asarray(labels) == new_id, truth == label) > 0.9
    boxed = np.asarray(labels) == 4  # its answer to the box holds the object (and here some of its surroundings)
    assert (boxed & (truth == chosen[3])).sum() > 0.9 * (truth == chosen[3]).sum()

    # an edit: napari's brush (its own key on the labels layer) paints object 1 across to object 2
    viewer.layers.selection.active = annotator.labels_layer
    annotator.labels_layer.selected_label, annotator.labels_layer.brush_size = 1, 4
    key(viewer, KEYS["brush"])
    before = np.asarray(labels) == 1
    drag(viewer, innermost(truth, chosen[0]), innermost(truth, chosen[1]))
    assert labels.log[-1]["op"] == "paint" and (np.asarray(labels) == 1).sum() > before.sum()

    # a class name, measurements and a plot
    model = widget.objects.model
    model.setData(model.index(model.ids.index(1), 1), "dividing")
    qtbot.mouseClick(widget.measure.measure_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: widget.measure.table_view.rowCount() == 4, timeout=20_000)
    widget.measure.plot.choose("scatter", "area_px2", "mean_intensity")
    assert len(widget.measure.plot.figure.axes[0].collections[0].get_offsets()) == 4

    # prompts on screen for the picture: a point on a fifth object and its preview
    key(viewer, KEYS["point_mode"])
    click(viewer, innermost(truth, chosen[4]))
    qtbot.waitUntil(lambda: annotator.preview_mask is not None and annotator.preview_array().any())
    viewer.camera.center = tuple(np.mean([innermost(truth, label) for label in chosen[:5]], axis=0))
    viewer.camera.zoom *= 1.6
    qtbot.wait(200)
    canvas = viewer.screenshot(canvas_only=True, flash=False)
    assert canvas[..., :3].std() > 10  # the image and the labels are drawn
    shots = {"napari-session.png": widget.annotate, "napari-measure.png": widget.measure}
    folder = os.environ.get("SAMKIT_SCREENSHOTS")
    for name, tab in shots.items():
        widget.tabs.setCurrentWidget(tab)
        qtbot.wait(200)
        picture = viewer.window._qt_window.grab()
        assert picture.width() == 1280 and picture.height() >= 700
        if folder:
            picture.save(str(Path(folder) / name))
    no_traceback(notes)
