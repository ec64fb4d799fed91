"""Session with SAM's network (random weights): windows read, embedded and decoded where they should be."""

import numpy as np
import pytest
import torch

import samkit
from samkit.models.sam import build_sam


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    return build_sam("vit_t").eval()


def test_tile_embeddings_and_decoding_match_the_predictor_on_each_window(sam):
    """512 px windows so that the 520 x 696 image has four and the click's window is not at the origin; max_windows=1
    so that the mask is the one window's decode (the defaults are tested in test_defaults.py)."""
    image, _ = samkit.data.nuclei()  # 520 x 696: four 512-px windows
    session = samkit.Session(image, sam, tile_size=512, halo=16, max_windows=1)
    assert session.grid.grid_shape == (2, 2)
    point = np.array([400, 600])
    mask = session.segment(points=[point], labels=[1])
    (index,) = [tuple(w) for w in mask.prompt["windows"]]
    y0, x0, y1, x1 = session.grid.window(index)
    assert (y0, x0) == (8, 184)  # the window in which the click is deepest

    predictor = samkit.Predictor(sam)
    predictor.set_image(image[y0:y1, x0:x1])
    stored = session.store.get(index)
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored.astype(np.float32), predictor.embedding[0].numpy(), rtol=1e-2, atol=2e-3)

    predictor.embedding = torch.from_numpy(stored.astype(np.float32))[None]  # decode what the session decoded
    best = predictor.predict_best(points=[point - (y0, x0)], labels=[1])
    expected = samkit.Mask.from_array(best.mask, (y0, x0))
    assert mask.bbox == expected.bbox
    np.testing.assert_array_equal(mask.crop, expected.crop)
    assert mask.score == pytest.approx(best.score)


def test_one_model_serves_two_sessions(sam):
    image, _ = samkit.data.nuclei()
    a = samkit.Session(image[:300, :300], sam)
    b = samkit.Session(image[200:, 300:], sam)
    assert a.model is b.model and a.worker is b.worker
    ja, jb = a.embed_all(), b.embed_all()
    ja.result(timeout=120), jb.result(timeout=120)
    assert a.embedded().all() and b.embedded().all()
    assert not np.array_equal(a.store.get((0, 0)), b.store.get((0, 0)))


def test_boxes_are_decoded_in_one_batch_per_window_like_the_predictor(sam):
    image, _ = samkit.data.nuclei()
    session = samkit.Session(image, sam, max_windows=1)  # one 520 x 696 window
    boxes = np.array([[380, 55, 445, 110], [50, 325, 100, 378], [200, 500, 260, 560]])
    masks = session.segment(box=boxes)
    predictor = samkit.Predictor(sam)
    predictor.set_image(image)
    predictor.embedding = torch.from_numpy(session.store.get((0, 0)).astype(np.float32))[None]
    expected = predictor.predict(box=boxes, multimask=False)
    for mask, full, score in zip(masks, expected.masks[:, 0], expected.scores[:, 0]):
        reference = samkit.Mask.from_array(full)
        assert mask.bbox == reference.bbox and np.array_equal(mask.crop, reference.crop)
        assert mask.score == pytest.approx(score)


def test_a_previous_mask_refines_the_next_prompt(sam):
    image, _ = samkit.data.nuclei()
    session = samkit.Session(image, sam, max_windows=1)
    first = session.segment(points=[[74, 349]], labels=[1])
    again = session.segment(points=[[74, 349], [60, 340]], labels=[1, 0], mask_input=first)
    assert isinstance(again, samkit.Mask) and again.prompt["labels"] == [1, 0]


def test_windows_per_encoder_call():
    """One window per call on the CPU; on a GPU, what half its free memory holds (1 to 16)."""
    from samkit.engine.models import MAX_BATCH, WINDOW_BYTES, gpu_batch_size, window_model

    assert window_model(build_sam("vit_t")).batch_size == 1
    assert gpu_batch_size(0) == 1
    assert gpu_batch_size(2 * 3 * WINDOW_BYTES + 5) == 3
    assert gpu_batch_size(80 * 2**30) == MAX_BATCH
