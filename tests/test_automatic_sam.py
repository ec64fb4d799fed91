"""SAM's automatic path (random weights: shapes, determinism, parity of the batched decoder with single decodes)."""

import numpy as np
import pytest
import torch

from samkit.automatic import segment_all
from samkit.automatic.generate import point_grid
from samkit.engine import Session
from samkit.engine.mask import paste
from samkit.models.sam import build_sam

from conftest import load_dsb


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    return build_sam("vit_t")


@pytest.fixture(scope="module")
def image(real_data):
    """A real fluorescence image of nuclei, cropped to 256 x 320."""
    first = sorted((real_data / "nuclei" / "dsb2018").glob("*_img.png"))[0].name.split("_img")[0]
    return load_dsb(real_data, first)[0][:256, :320]


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_batched_point_decoder_matches_single_decodes(sam, image):
    session = Session(image, sam)
    index = (0, 0)
    window = session.grid.window(index)
    shape = (window[2] - window[0], window[3] - window[1])
    embedding = session.compute([index])[0]
    points = point_grid(shape, 3)[:7]
    found = session.model.point_decoder(embedding, window)(points, batch=3)  # batches of 3, 3 and 1 prompts
    predictor = session.model._predictor(embedding, window)
    single = session.model.decoder(embedding, window)
    compared = 0
    for k, point in enumerate(points):
        masks, scores, logits = predictor.predict(points=[point], labels=[1], multimask=True)
        mine = np.flatnonzero(found.point == k)
        assert 1 <= len(mine) <= 3
        for j in mine:  # each candidate mask is one of SAM's three, with its score and stability
            m = int(np.argmin(np.abs(scores - found.score[j])))
            np.testing.assert_allclose(found.score[j], scores[m], atol=1e-4)
            assert iou(paste(found.crops[j], tuple(found.offsets[j]), (0, 0, *shape)), masks[m]) >= 0.999
            low = logits[m][: -(-shape[0] // 4), : -(-shape[1] // 4)]
            np.testing.assert_allclose(found.stability[j], (low > 1).sum() / max((low > -1).sum(), 1), atol=1e-6)
            compared += 1
        best = single(points=np.array([point]), labels=np.array([1]))[0]  # what a click gives
        j = mine[np.argmax(found.score[mine])]
        assert iou(paste(found.crops[j], tuple(found.offsets[j]), (0, 0, *shape)), best.crop) >= 0.999
    assert compared >= 7

    kept = session.model.point_decoder(embedding, window)(points, batch=3, min_score=float(np.median(found.score)))
    assert 0 < len(kept.score) < len(found.score) and (kept.score >= np.median(found.score)).all()


def test_segment_all_with_sam_is_deterministic(sam, image, tmp_path):
    """160 px windows and a 2 x 2 grid keep SAM (on a CPU) to 6 windows of 4 prompts; no threshold, as random weights
    are never confident (the defaults are tested with the oracle in test_defaults.py)."""
    # random weights: keep every mask but exact duplicates, to have objects to stitch
    options = dict(tile_size=160, halo=16, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                   box_nms_thresh=1.0, cache=tmp_path)  # fmt: skip
    first = segment_all(image, sam, **options)
    assert first.shape == image.shape[:2] and first.dtype == np.uint32
    values = np.asarray(first)
    ids = np.unique(values)[1:]
    assert len(ids) > 3
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))
    np.testing.assert_array_equal(np.asarray(segment_all(image, sam, **options)), values)  # from the cached embeddings
    strict = segment_all(image, sam, **{**options, "pred_iou_thresh": 1.0})  # random weights are never that sure
    assert strict.objects == {}
