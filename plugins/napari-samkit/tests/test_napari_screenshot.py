"""What the user sees: a shown viewer's canvas changes when objects are committed, and only there."""

import numpy as np
from scipy import ndimage
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
    # the change is where the committed objects are, and only there: map every canvas pixel to the image
    # pixel it shows (napari's camera: world = centre + (canvas pixel centre - canvas centre) / zoom; image
    # pixel i covers world [i - 0.5, i + 0.5)), allowing one image pixel at object borders for smoothing
    rows, cols = changed.shape
    cy, cx = viewer.camera.center[-2:]
    zoom = viewer.camera.zoom
    iy = np.floor(cy + (np.arange(rows) + 0.5 - rows / 2) / zoom + 0.5).astype(int)
    ix = np.floor(cx + (np.arange(cols) + 0.5 - cols / 2) / zoom + 0.5).astype(int)
    on_image = ((iy >= 0) & (iy < truth.shape[0]))[:, None] & ((ix >= 0) & (ix < truth.shape[1]))[None, :]
    assert on_image.sum() > 0.5 * min(rows, cols) ** 2  # the image fills the canvas across its narrow side

    def shown(mask):
        return on_image & mask[np.clip(iy, 0, truth.shape[0] - 1)[:, None], np.clip(ix, 0, truth.shape[1] - 1)[None, :]]

    objects = np.isin(truth, largest(truth, 3))
    near = shown(ndimage.binary_dilation(objects))
    inner = shown(ndimage.binary_erosion(objects))
    assert not (changed & ~near).any(), f"{(changed & ~near).sum()} canvas pixels changed away from the objects"
    assert changed[inner].all(), f"{(~changed[inner]).sum()} of {inner.sum()} canvas pixels inside objects unchanged"
    no_traceback(notes)
    annotator.close()
