"""The whole product with a SAM 2.1 network (Hiera-T, random weights, loaded from a file in the official
layout): tiled sessions, segment everything, the Jupyter annotator and the CLI take it with no other
change for the user. Random weights test the mechanics; results are tested with the SAM-like model."""

import numpy as np
import pytest
import torch

import samkit
from samkit.engine.models import SAM2_SIZES, window_model
from samkit.models.sam2 import Sam2, build_sam2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A Hiera-T file as Meta publishes them ({"model": state dict}), with seeded random weights."""
    torch.manual_seed(0)
    model = build_sam2("sam2.1_hiera_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)
    path = tmp_path_factory.mktemp("sam2") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def sam2(checkpoint):
    model = samkit.load_model(checkpoint)
    assert isinstance(model, Sam2) and model.model_type == "sam2.1_hiera_tiny"
    return model


def test_a_window_stores_the_three_feature_maps_and_decodes_like_the_predictor(sam2):
    """512 px windows so that the 520 x 696 image has four and the click's window is not at the origin;
    max_windows=1 so that the mask is that one window's decode."""
    image, _ = samkit.data.nuclei()
    session = samkit.Session(image, sam2, tile_size=512, halo=16, max_windows=1)
    assert session.grid.grid_shape == (2, 2) and session.model.stretches_input
    point = np.array([400, 600])
    mask = session.segment(points=[point], labels=[1])
    (index,) = [tuple(w) for w in mask.prompt["windows"]]
    y0, x0, y1, x1 = session.grid.window(index)

    stored = session.store.get(index)
    assert stored.dtype == np.float16 and stored.shape == (sum(SAM2_SIZES),)  # 8 MiB a window
    predictor = samkit.Predictor(sam2)
    predictor.set_image(image[y0:y1, x0:x1])  # the window alone, stretched to 1024 x 1024 by the model
    fresh = np.concatenate([t.reshape(-1).numpy() for t in predictor.embedding])
    np.testing.assert_allclose(stored.astype(np.float32), fresh, rtol=1e-2, atol=2e-3 * np.abs(fresh).max())

    from samkit.engine.models import unpack_sam2

    predictor.embedding = unpack_sam2(stored)  # decode what the session decoded
    best = predictor.predict_best(points=[point - (y0, x0)], labels=[1])
    expected = samkit.Mask.from_array(best.mask, (y0, x0))
    assert mask.bbox == expected.bbox
    np.testing.assert_array_equal(mask.crop, expected.crop)
    assert mask.score == pytest.approx(best.score)


def test_boxes_and_a_refining_mask_go_through_the_session(sam2):
    image, _ = samkit.data.nuclei()
    session = samkit.Session(image, sam2, max_windows=1)  # one 520 x 696 window, stretched to the square input
    boxes = np.array([[380, 55, 445, 110], [50, 325, 100, 378]])
    masks = session.segment(box=boxes)
    predictor = samkit.Predictor(sam2)
    predictor.set_image(image)
    from samkit.engine.models import unpack_sam2

    predictor.embedding = unpack_sam2(session.store.get((0, 0)))
    expected = predictor.predict(box=boxes, multimask=False)
    for mask, full in zip(masks, expected.masks[:, 0]):
        reference = samkit.Mask.from_array(full)
        assert mask.bbox == reference.bbox and np.array_equal(mask.crop, reference.crop)
    first = session.segment(points=[[74, 349]], labels=[1])
    again = session.segment(points=[[74, 349], [60, 340]], labels=[1, 0], mask_input=first)
    assert isinstance(again, samkit.Mask) and again.prompt["labels"] == [1, 0]


def test_segment_all_and_the_annotator_take_sam2(sam2):
    """A 300 x 300 crop in one window: the mechanics of the automatic path (point decoder, filters,
    stitching) and of the annotator's click and commit with SAM 2.1."""
    image, _ = samkit.data.nuclei()
    crop = np.ascontiguousarray(image[:300, :300])
    labels = samkit.segment_all(crop, sam2, points_per_side=8, pred_iou_thresh=0, stability_score_thresh=0)
    found = np.asarray(labels)
    assert found.shape == (300, 300) and found.max() >= 1  # random weights: some masks, ids 1..N
    assert set(np.unique(found)) == set(range(found.max() + 1))

    ipycanvas = pytest.importorskip("ipycanvas")
    assert ipycanvas
    annotator = samkit.Annotator(crop, sam2, prefetch=False)
    annotator.annotation.add_point(150, 150)
    annotator.annotation.wait(120)
    if annotator.annotation.mask is not None and annotator.annotation.mask.crop.any():
        assert annotator.annotation.commit() == 1


def test_the_cli_segments_with_a_sam2_file(checkpoint, tmp_path):
    import tifffile

    image, _ = samkit.data.nuclei()
    path = tmp_path / "crop.tif"
    tifffile.imwrite(path, image[:256, :256])
    from samkit.cli import main

    code = main(["segment", str(path), "--model", str(checkpoint), "-o", str(tmp_path / "labels.tif"),
                            "--cache", str(tmp_path / "emb"), "--points-per-side", "4"])  # fmt: skip
    assert code == 0
    assert tifffile.imread(tmp_path / "labels.tif").shape == (256, 256)


def test_the_same_model_gives_the_same_window_model(sam2):
    assert window_model(sam2) is window_model(sam2)
    assert "sam2.1_hiera_tiny" in window_model(sam2).name


def test_a_sam2_file_with_nan_weights_is_refused(checkpoint, tmp_path):
    state = torch.load(checkpoint, weights_only=True)
    key = "image_encoder.trunk.blocks.3.attn.qkv.weight"
    state["model"][key][0, 0] = float("nan")
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(samkit.errors.CheckpointError, match=f"{key}.*NaN or infinite"):
        samkit.load_model(path)
