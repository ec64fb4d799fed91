"""samkit.metrics on real DSB2018 ground truth: matching, AP at IoU thresholds, mean matched IoU."""

import numpy as np
import pytest
import zarr
from scipy import ndimage

import samkit
from samkit import metrics
from samkit.errors import InvalidImageError
from samkit.metrics import evaluate, match, overlaps

from conftest import load_dsb


@pytest.fixture(scope="module")
def truth(real_data):
    ids = sorted(p.name.split("_img")[0] for p in (real_data / "nuclei" / "dsb2018").glob("*_img.png"))
    labels = next(lab for lab in (load_dsb(real_data, i)[1] for i in ids) if len(np.unique(lab)) > 60)
    return labels.astype(np.int32)


def test_identical_and_relabelled_images_score_one(truth):
    n = len(np.unique(truth)) - 1
    shuffled = np.zeros(truth.max() + 1, np.int64)
    shuffled[1:] = np.random.default_rng(0).permutation(np.arange(1000, 1000 + truth.max()))
    for pred in (truth, shuffled[truth]):
        scores = evaluate(truth, pred, thresholds=(0.5, 0.75, 0.99, 1.0))
        assert scores.ap.tolist() == [1.0] * 4 and scores.tp.tolist() == [n] * 4
        assert scores.mean_iou == 1.0 and len(scores.matches.pairs) == n
    pairs = evaluate(truth, shuffled[truth]).matches.pairs
    np.testing.assert_array_equal(pairs[:, 1], shuffled[pairs[:, 0]])


def test_missing_extra_and_shrunk_objects(truth):
    ids = np.unique(truth)[1:]
    n = len(ids)
    pred = truth.copy()
    pred[np.isin(truth, ids[:5])] = 0  # 5 missed
    extra = np.zeros_like(truth)
    extra[:3, :3] = truth.max() + 1  # one false object, where the image is background
    assert not truth[:3, :3].any()
    pred = np.where(extra > 0, extra, pred)
    scores = evaluate(truth, pred, thresholds=(0.5,))
    assert (scores.tp[0], scores.fp[0], scores.fn[0]) == (n - 5, 1, 5)
    assert scores.ap[0] == pytest.approx((n - 5) / (n + 1))
    np.testing.assert_array_equal(scores.matches.unmatched_truth, ids[:5])
    np.testing.assert_array_equal(scores.matches.unmatched_pred, [truth.max() + 1])

    eroded = np.zeros_like(truth)  # every object one pixel thinner: IoU = eroded area / area
    expected = []
    for i, sl in zip(ids, ndimage.find_objects(truth)):
        inner = ndimage.binary_erosion(truth[sl] == i)
        eroded[sl][inner] = i
        expected.append(inner.sum() / (truth[sl] == i).sum())
    expected = np.array(expected)
    scores = evaluate(truth, eroded, thresholds=(0.5, 0.8))
    kept = expected >= 0.5
    np.testing.assert_allclose(scores.matches.iou, expected[kept])
    assert scores.mean_iou == pytest.approx(expected[kept].mean())
    assert scores.tp.tolist() == [kept.sum(), (expected >= 0.8).sum()]


def test_optimal_matching_below_one_half():
    truth = np.zeros((1, 10), int)
    truth[0, 0:4], truth[0, 4:10] = 1, 2
    pred = np.zeros((1, 10), int)
    pred[0, 0:6], pred[0, 6:10] = 7, 8
    # IoU(1, 7) = 4/6, IoU(2, 7) = 2/10, IoU(2, 8) = 4/6: the assignment pairs 1-7 and 2-8
    m = match(truth, pred, threshold=0.1)
    assert m.pairs.tolist() == [[1, 7], [2, 8]]
    np.testing.assert_allclose(m.iou, [4 / 6, 4 / 6])
    merged = np.where(truth > 0, 5, 0)  # two objects predicted as one: one pair at most
    scores = evaluate(truth, merged, thresholds=(0.3,))
    assert (scores.tp[0], scores.fp[0], scores.fn[0]) == (1, 0, 1)


def test_blocks_zarr_and_label_images_agree(truth, monkeypatch):
    pred = np.where(truth % 4 == 0, 0, truth)
    reference = evaluate(truth, pred)
    monkeypatch.setattr(metrics, "BLOCK", 100)  # objects cut by blocks are counted whole
    stored = zarr.create_array(zarr.storage.MemoryStore(), shape=pred.shape, chunks=(64, 64), dtype=pred.dtype)
    stored[...] = pred
    labels = samkit.LabelImage(truth.shape, initial=truth)
    blocked = evaluate(labels, stored)
    np.testing.assert_array_equal(blocked.ap, reference.ap)
    np.testing.assert_array_equal(blocked.matches.pairs, reference.matches.pairs)
    table = overlaps(truth, pred)
    assert table.intersection.sum() == np.count_nonzero((truth > 0) & (pred > 0))


def test_empty_images_and_bad_input(truth):
    empty = np.zeros((5, 5), np.uint8)
    scores = evaluate(empty, empty)
    assert scores.ap.tolist() == [1.0, 1.0, 1.0] and np.isnan(scores.mean_iou)
    scores = evaluate(truth, np.zeros_like(truth))
    assert scores.ap.tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(InvalidImageError, match="truth has shape .* but pred has"):
        evaluate(truth, truth[:-1])
    with pytest.raises(InvalidImageError, match="integer labels, not float64"):
        evaluate(truth, truth.astype(float))
    with pytest.raises(InvalidImageError, match="2D"):
        evaluate(truth[None], truth[None])
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\]"):
        evaluate(truth, truth, thresholds=(0.0,))
    with pytest.raises(InvalidImageError, match="negative"):
        evaluate(truth, -truth)
