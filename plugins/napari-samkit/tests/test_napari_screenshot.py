"""What the user sees: a shown viewer's canvas changes when objects are committed, and only there."""

import numpy as np
from samkit.testing import OracleModel

from napari_helpers import dsb, notes  # noqa: F401 (fixtures)
from napari_helpers import innermost, largest, no_traceback, start, wait_for_preview, wait_idle

IMAGE_ID = "0ed3555a4bd4"  # 256 x 256, 21 nuclei


def test_screenshot_after_committing_differs(make_napari_viewer, qtbot, dsb, notes):
    from napari_samkit import AnnotatorWidget

    image, truth = dsb(IMAGE_ID)
    viewer = make_napari_viewer(show=True)  # a hidden viewer's canvas renders black
    viewer.add_image(image, rgb=True)
    widget = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(widget)
    annotator = start(widget, qtbot, OracleModel(truth))
    annotator.points.visible = annotator.box.visible = False  # only labels and preview are drawn over the image
    viewer.reset_view()
    qtbot.wait(200)
    before = viewer.screenshot(canvas_only=True, flash=False)
    assert before[..., :3].max() > 0  # the image is drawn

    for gt_id in largest(truth, 3):
        annotator.points.add([innermost(truth, gt_id)])
        wait_for_preview(qtbot, annotator, truth == gt_id)
        annotator.commit()
        wait_idle(qtbot, annotator)
    qtbot.wait(200)
    after = viewer.screenshot(canvas_only=True, flash=False)
    assert after.shape == before.shape
    changed = np.any(after[..., :3] != before[..., :3], axis=-1)
    assert changed.any()
    # the change is where the committed objects are: map changed canvas pixels back to image pixels
    ys, xs = np.nonzero(changed)
    objects = np.isin(truth, largest(truth, 3))
    oy, ox = np.nonzero(objects)
    scale_y = (ys.max() - ys.min() + 1) / (oy.max() - oy.min() + 1)
    scale_x = (xs.max() - xs.min() + 1) / (ox.max() - ox.min() + 1)
    assert 0.8 < scale_y / scale_x < 1.25  # the changed region has the objects' proportions
    no_traceback(notes)
    annotator.close()
