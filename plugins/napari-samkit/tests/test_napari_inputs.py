"""Image layers of every kind: 16-bit channels as separate layers, a 3D stack, multiscale zarr, dask."""

import dask.array as da
import numpy as np
import pytest
import samkit
import zarr
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, widget  # noqa: F401 (fixtures)
from napari_helpers import assert_table, innermost, largest, messages, no_traceback, start, wait_for_preview, wait_idle

IMAGE_ID = "1d9eacb3161f"  # 524 x 348, 115 nuclei


def add_point(annotator, y, x):
    """A click at image pixel (y, x), in the points layer's data coordinates."""
    annotator.points.add(annotator.source.from_pixels(annotator.points, [[y, x]]))


def commit_largest(qtbot, annotator, truth, count):
    expected = np.zeros(truth.shape, np.uint32)
    for new_id, gt_id in enumerate(largest(truth, count), start=1):
        add_point(annotator, *innermost(truth, gt_id))
        wait_for_preview(qtbot, annotator, truth == gt_id)
        annotator.commit()
        wait_idle(qtbot, annotator)
        expected[truth == gt_id] = new_id
    return expected


def test_16bit_channel_layers_are_stacked_and_measured_per_channel(widget, qtbot, dsb, notes):
    image, truth = dsb(IMAGE_ID)
    dna = image[..., 0].astype(np.uint16) * 257 + 3  # 16-bit, as a microscope writes
    other = (255 - image[..., 1]).astype(np.uint16) * 100
    viewer = widget.viewer
    viewer.add_image(dna, name="DNA", scale=(0.25, 0.25))
    viewer.add_image(other, name="membrane", scale=(0.25, 0.25))
    widget.form.image_box.setCurrentIndex(0)
    widget.form.channel_list.item(1).setCheckState(widget.form.channel_list.item(1).checkState().__class__.Checked)
    annotator = start(widget, qtbot, OracleModel(truth))
    assert annotator.session.image.shape == (*truth.shape, 2)
    expected = commit_largest(qtbot, annotator, truth, 2)
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data), expected)

    annotator.measure()
    qtbot.waitUntil(lambda: annotator.table is not None, timeout=20_000)
    reference = samkit.measure(expected, np.stack([dna, other], -1), spacing=0.25, channel_names=["DNA", "membrane"])
    assert_table(annotator.table, reference, annotator.labels)
    columns = list(reference.columns)
    assert any(c.endswith("_DNA") for c in columns) and any(c.endswith("_membrane") for c in columns)
    no_traceback(notes)


def test_a_3d_layer_segments_its_current_slice(widget, qtbot, dsb, notes):
    image, truth = dsb(IMAGE_ID)
    grey = image[..., 0]
    stack = np.stack([np.zeros_like(grey), grey, np.zeros_like(grey)])  # only slice 1 holds the nuclei
    viewer = widget.viewer
    viewer.add_image(stack, name="stack")
    viewer.dims.set_current_step(0, 1)
    annotator = start(widget, qtbot, OracleModel(truth))
    assert any("current slice (axis 0 = 1)" in m and "3D segmentation is not available" in m for m in messages(notes))
    np.testing.assert_array_equal(annotator.session.image[..., 0], grey)  # the slice the session reads
    expected = commit_largest(qtbot, annotator, truth, 1)
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data), expected)
    no_traceback(notes)


def test_multiscale_zarr_layer_gives_a_pyramid_of_labels(widget, qtbot, dsb, tmp_path, notes):
    image, truth = dsb(IMAGE_ID)
    levels = []
    for factor in (1, 2, 4):
        level = zarr.create_array(tmp_path / f"{factor}.zarr", shape=image[::factor, ::factor].shape,
                                  chunks=(128, 128, 3), dtype=image.dtype)  # fmt: skip
        level[...] = image[::factor, ::factor]
        levels.append(level)
    widget.viewer.add_image(levels, multiscale=True, rgb=True, name="pyramid")
    annotator = start(widget, qtbot, OracleModel(truth))
    assert annotator.source.multiscale and annotator.labels_layer.multiscale
    expected = commit_largest(qtbot, annotator, truth, 2)
    data = annotator.labels_layer.data
    assert data[0] is annotator.labels.array
    np.testing.assert_array_equal(np.asarray(data[0]), expected)
    np.testing.assert_array_equal(np.asarray(data[1][...]), expected[::2, ::2])
    np.testing.assert_array_equal(np.asarray(data[2][10:90, 5:70]), expected[::4, ::4][10:90, 5:70])
    no_traceback(notes)


@pytest.mark.parametrize("autosave", [False, True])
def test_dask_layer_and_autosave(widget, qtbot, dsb, tmp_path, autosave, notes):
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(da.from_array(image, chunks=(100, 100, 3)), rgb=True, name="lazy")
    if autosave:
        widget.form.autosave.setText(str(tmp_path / "objects"))
    annotator = start(widget, qtbot, OracleModel(truth))
    expected = commit_largest(qtbot, annotator, truth, 2)
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data), expected)
    if autosave:
        assert annotator.labels.path == tmp_path / "objects"
        np.testing.assert_array_equal(np.asarray(samkit.LabelImage.open(tmp_path / "objects")), expected)
    no_traceback(notes)
