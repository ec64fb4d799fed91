"""Bad input gives a napari notification, never a traceback dialog, and loses nothing."""

import time

import numpy as np
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, widget  # noqa: F401 (fixtures)
from napari_helpers import click, innermost, largest, messages, no_traceback, start, wait_for_preview, wait_idle

IMAGE_ID = "0ed3555a4bd4"  # 256 x 256, 21 nuclei


class SlowOracle(OracleModel):
    def __init__(self, labels, delay):
        super().__init__(labels)
        self.delay = delay

    def embed(self, pixels, windows):
        time.sleep(self.delay)
        return super().embed(pixels, windows)


def committed_one(widget, qtbot, annotator, truth):
    target = largest(truth, 1)[0]
    click(annotator, *innermost(truth, target))
    wait_for_preview(qtbot, annotator, truth == target)
    annotator.commit()
    wait_idle(qtbot, annotator)
    return truth == target


def test_prompts_outside_the_image_are_refused_and_nothing_is_lost(widget, qtbot, dsb, notes):
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, OracleModel(truth))
    first = committed_one(widget, qtbot, annotator, truth)
    target = largest(truth, 2)[1]
    click(annotator, *innermost(truth, target))
    wait_for_preview(qtbot, annotator, truth == target)

    annotator.points.add([[-30.0, 40.0]])  # above the image
    assert any("outside the image" in m for m in messages(notes, "warning"))
    assert len(annotator.points.data) == 1 and len(annotator.annotation.points) == 1  # the good point stays
    wait_for_preview(qtbot, annotator, truth == target)

    annotator.box.add_rectangles(np.array([[300.0, 300.0], [400.0, 420.0]]))  # wholly outside
    assert sum("box is outside" in m for m in messages(notes, "warning")) == 1
    assert len(annotator.box.data) == 0 and annotator.annotation.box is None

    ys, xs = np.nonzero(truth == target)  # partly outside: clipped to the image
    annotator.box.add_rectangles(np.array([[ys.min() - 0.5, xs.min() - 0.5], [ys.max() + 0.5, 900.0]]))
    assert annotator.annotation.box == (ys.min(), xs.min(), ys.max() + 1, 256.0)
    np.testing.assert_allclose(annotator.box.data[0].max(0), [ys.max() + 0.5, 255.5])

    annotator.commit()
    wait_idle(qtbot, annotator)
    labels = np.asarray(annotator.labels_layer.data)
    np.testing.assert_array_equal(labels == 1, first)
    assert (labels == 2).sum() > 0
    background = tuple(np.argwhere(truth == 0)[0])
    annotator.points.add([background])  # on no object: nothing to commit, said as a warning
    wait_for_preview(qtbot, annotator, np.zeros(truth.shape, bool))
    annotator.commit()
    wait_idle(qtbot, annotator)
    assert "nothing to commit" in messages(notes, "warning")[-1]
    annotator.erase_at(300, 10)
    assert any("outside the image" in m for m in messages(notes, "warning")[-1:])
    no_traceback(notes)


def test_a_wrong_or_missing_checkpoint_is_a_short_error(widget, qtbot, dsb, tmp_path, notes):
    image, _ = dsb(IMAGE_ID)
    widget.viewer.add_image(image, rgb=True)
    bad = tmp_path / "sam_vit_b.pth"
    bad.write_bytes(b"this is not a checkpoint" * 100)
    for path, expected in ((bad, "sam_vit_b.pth"), (tmp_path / "missing.pth", "does not exist")):
        widget.form.model_box.setEditText(str(path))
        assert widget.form.model_value() == str(path)
        widget.start()
        qtbot.waitUntil(lambda: widget.starting is None, timeout=30_000)
        errors = messages(notes, "error")
        assert errors and errors[-1].startswith("start: ") and expected in errors[-1]
        assert widget.annotator is None and widget.form.start_button.isEnabled()
        assert "could not start" in widget.status.text()
    no_traceback(notes)


def test_image_layer_removed_while_embedding(widget, qtbot, dsb, notes):
    """64 px windows (25 of them, 0.2 s each), so that the layer is removed while the embedding still runs."""
    image, truth = dsb(IMAGE_ID)
    layer = widget.viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, SlowOracle(truth, delay=0.2), tile_size=64, halo=4)
    first = committed_one(widget, qtbot, annotator, truth)
    job = annotator.embedder.embed(None)
    qtbot.waitUntil(lambda: job.done >= 1, timeout=10_000)
    widget.viewer.layers.remove(layer)
    assert any("was removed" in m for m in messages(notes, "warning"))
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    assert job.cancelled and job.done < job.total
    assert widget.annotator is None and annotator.is_closed
    names = [lay.name for lay in widget.viewer.layers]
    assert names == ["samkit labels"]  # prompts and preview went; the committed objects stay
    np.testing.assert_array_equal(np.asarray(widget.viewer.layers["samkit labels"].data) == 1, first)
    assert not widget.measure.measure_button.isEnabled()
    no_traceback(notes)


def test_no_image_layer_and_bad_options(widget, qtbot, dsb, notes):
    assert widget.start() is None
    assert messages(notes, "warning")[-1] == "samkit: add an image layer first"
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, rgb=True)
    widget.form.level.setValue(3)  # a flat image has one pyramid level
    widget.start(model=OracleModel(truth))
    qtbot.waitUntil(lambda: widget.starting is None, timeout=30_000)
    assert widget.annotator is None and "level=3" in messages(notes, "error")[-1]
    no_traceback(notes)
