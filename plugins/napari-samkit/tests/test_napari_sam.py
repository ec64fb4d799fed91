"""The plugin with SAM's network (vit_t, random weights): a real click on the canvas reaches it, the preview is the
session's mask and the commit key commits it; the dock shows the model's device and precision (mechanics; what
the answers are worth is tested with the SAM-like model)."""

import numpy as np
import samkit
import torch
from samkit import interaction
from samkit.models.sam import build_sam

from napari_helpers import dsb, notes, shown_widget  # noqa: F401 (fixtures)
from napari_helpers import no_traceback, start, wait_idle
from napari_qt_input import click, key


def test_a_sam_network_answers_real_clicks(shown_widget, qtbot, dsb, notes):
    viewer, widget = shown_widget
    torch.manual_seed(0)
    sam = build_sam("vit_t").eval()
    image, _ = dsb("0ed3555a4bd4")  # 256 x 256: one window
    viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, sam)
    viewer.reset_view()
    shown = widget.form.model_info.text()
    assert shown == interaction.describe(annotator.session.model) == "SAM vit_t (random weights) · cpu · fp32"

    point = (140, 100)
    click(viewer, point)
    qtbot.waitUntil(lambda: annotator.annotation.mask is not None or annotator.annotation.error is not None, timeout=120_000)
    assert annotator.annotation.error is None and annotator.annotation.points == [point]
    expected = samkit.Session(image, sam).segment(points=[point], labels=[1]).to_array(image.shape[:2])
    qtbot.waitUntil(lambda: np.array_equal(annotator.preview_array(), expected), timeout=60_000)
    if expected.any():  # random weights: whatever the network answers, the commit writes exactly that
        key(viewer, interaction.KEYS["commit"])
        wait_idle(qtbot, annotator, timeout=60_000)
        np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data) == 1, expected)
    no_traceback(notes)
