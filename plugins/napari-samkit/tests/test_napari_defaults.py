"""The dock widget at its defaults (what a user gets on opening it) on a real DSB2018 mosaic larger than a window.

Other tests of the plugin set small windows (so that a 512 px image has
several); this one changes no setting of the widget.
"""

import numpy as np
import samkit
from scipy import ndimage
from samkit.testing import OracleModel, mosaic

from napari_helpers import dsb, notes, widget  # noqa: F401 (fixtures)
from napari_helpers import assert_table, click, innermost, no_traceback, start, wait_for_preview, wait_idle

IMAGES = ("ade080c6618c", "1d9eacb3161f", "472b1c5ff988")  # real DSB2018 nuclei, tiled into one 1200 x 1500 scene


def test_defaults_click_commit_measure(widget, qtbot, dsb, notes):
    image, truth = mosaic([dsb(i) for i in IMAGES], (1200, 1500))
    widget.viewer.add_image(image, name="mosaic", rgb=True)
    annotator = start(widget, qtbot, OracleModel(truth))  # no option set: the widget's defaults
    assert annotator is not None
    grid = annotator.session.grid
    assert (grid.tile_size, grid.halo, annotator.session.level) == (1024, 128, 0) and grid.grid_shape == (2, 2)

    boxes = {i: (b[0].start, b[1].start, b[0].stop, b[1].stop) for i, b in enumerate(ndimage.find_objects(truth), 1) if b}
    ids = sorted(boxes)
    edge = grid.starts[1][0] + grid.tile_size  # the right border of the first column of windows
    first = next(i for i in ids if boxes[i][0] < 900 and boxes[i][3] < 900)
    corner = next(i for i in ids if boxes[i][0] > 1024 and boxes[i][1] > 1100)
    crossing = next(i for i in ids if boxes[i][1] < edge < boxes[i][3])
    expected = np.zeros(truth.shape, np.uint32)
    for new_id, gt_id in enumerate((first, corner, crossing), start=1):
        click(annotator, *innermost(truth, gt_id))
        wait_for_preview(qtbot, annotator, truth == gt_id)  # the preview is exactly the object
        widget.annotate.buttons["commit"].click()
        wait_idle(qtbot, annotator)
        expected[truth == gt_id] = new_id
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data), expected)

    widget.measure.measure_button.click()
    qtbot.waitUntil(lambda: annotator.table is not None, timeout=20_000)
    assert_table(annotator.table, samkit.measure(expected, image), annotator.labels)
    no_traceback(notes)
