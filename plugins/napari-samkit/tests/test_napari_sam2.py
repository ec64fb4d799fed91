"""The dock widget with a SAM 2.1 network (Hiera-T, random weights, loaded from an official-layout file):
the same clicks reach it and its preview is the session's mask (mechanics; results are tested with the
SAM-like model elsewhere)."""

import numpy as np
import samkit
import torch

from napari_helpers import dsb, notes, widget  # noqa: F401 (fixtures)
from napari_helpers import click, no_traceback, start


def test_a_sam2_checkpoint_drives_the_widget(widget, qtbot, dsb, notes, tmp_path):
    from samkit.models.sam2 import build_sam2

    torch.manual_seed(0)
    model = build_sam2("sam2.1_hiera_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)

    image, _ = dsb("0ed3555a4bd4")  # a small real image: one window
    widget.viewer.add_image(image, name="dsb", rgb=True)
    annotator = start(widget, qtbot, str(path))  # a checkpoint path, as a user would pick it
    assert annotator is not None and "sam2.1_hiera_tiny" in annotator.session.model.name
    point = (image.shape[0] // 2, image.shape[1] // 2)
    click(annotator, *point)
    qtbot.waitUntil(lambda: annotator.annotation.mask is not None or annotator.annotation.error is not None, timeout=120_000)
    assert annotator.annotation.error is None
    expected = samkit.Session(image, samkit.load_model(path)).segment(points=annotator.annotation.points, labels=[1])
    qtbot.waitUntil(lambda: np.array_equal(annotator.preview_array(), expected.to_array(image.shape[:2])), timeout=60_000)
    no_traceback(notes)
