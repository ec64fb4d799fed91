"""The fast decode path: a per-image decoder context and ``Predictor.predict_best``.

Checked against the full path (``predict``, ``decode`` on raw embeddings) and
against Meta's reference decoder on identical random weights. The checkpoint
FILE holds the reference's prompt encoder and mask decoder and a random
MobileSAM (vit_t) image encoder; it is loaded through ``samkit.load_model``.
The decoder is the same for every model type, and vit_t embeds a real image
in about a second. Both decoders see the same embedding of real DSB2018
images and clicks inside their nuclei.
"""

import numpy as np
import pytest
import torch

import samkit
from conftest import load_dsb, object_centres
from reference import import_segment_anything, randomize_, rel_error
from samkit.errors import InvalidPromptError
from samkit.models.sam import build_sam

TOL = 1e-4  # max relative error, fp32 (as in the parity tests)
LOGIT_EPS = 1e-3  # masks may differ only where the reference logit is this close to 0
WIDE, TALL = "1879f4f4f05e", "ca20076870e8"  # 512 x 640 and 519 x 161


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    sa = import_segment_anything()
    torch.manual_seed(0)
    ref = randomize_(sa.sam_model_registry["vit_b"](), seed=1)
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("image_encoder.")}
    encoder = build_sam("vit_t").image_encoder.state_dict()
    state.update({f"image_encoder.{k}": v for k, v in encoder.items()})
    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam_random.pt"
    torch.save(state, path)
    return sa, ref, path


@pytest.fixture(scope="module")
def model(checkpoint):
    return samkit.load_model(checkpoint[2], device="cpu")


@pytest.fixture(scope="module")
def scene(checkpoint, model, real_data):
    """Our predictor on a real image, the reference predictor on the same embedding, clicks in nuclei."""
    sa, ref, _ = checkpoint
    image, labels = load_dsb(real_data, WIDE)
    predictor = samkit.Predictor(model)
    predictor.set_image(image)
    ref_predictor = sa.SamPredictor(ref)
    ref_predictor.features = predictor.embedding  # what its set_image would store, from our encoder
    ref_predictor.original_size, ref_predictor.input_size = image.shape[:2], predictor.input_shape
    ref_predictor.is_image_set = True
    return predictor, ref_predictor, object_centres(labels, 4)


def _reference(ref_predictor, click, multimask=True, mask_input=None):
    """(full-res logits (M, H, W), scores (M,), low-res logits (M, 256, 256)) for a positive (y, x) click."""
    xy = np.asarray(click, dtype=float)[None, ::-1]
    return ref_predictor.predict(xy, np.array([1]), None, mask_input, multimask, return_logits=True)


def _same_mask(mask, ref_logits):
    differ = mask != (ref_logits > 0)
    return np.all(np.abs(ref_logits[differ]) < LOGIT_EPS * np.abs(ref_logits).max())


@pytest.mark.parametrize("multimask", [True, False])
def test_predict_best_matches_reference_and_predict(scene, multimask):
    predictor, ref_predictor, clicks = scene
    for click in clicks:
        ref_full, ref_scores, ref_low = _reference(ref_predictor, click, multimask)
        best = predictor.predict_best(points=[click], labels=[1], multimask=multimask)
        assert best.index == int(np.argmax(ref_scores))
        assert best.mask.shape == ref_full.shape[1:] and best.mask.dtype == bool
        assert _same_mask(best.mask, ref_full[best.index])
        assert abs(best.score - ref_scores[best.index]) <= TOL * np.abs(ref_scores).max()
        assert rel_error(best.logits, ref_low[best.index]) <= TOL
        full = predictor.predict(points=[click], labels=[1], multimask=multimask)  # the full path
        assert rel_error(full.logits, ref_low) <= TOL and rel_error(full.scores, ref_scores) <= TOL
        near_zero = np.abs(ref_full[best.index]) < LOGIT_EPS * np.abs(ref_full).max()
        assert np.all((full.masks[best.index] == best.mask) | near_zero)


def test_refining_with_mask_input_matches_reference(scene):
    predictor, ref_predictor, clicks = scene
    first = predictor.predict_best(points=clicks[:1], labels=[1])
    refined = predictor.predict_best(points=clicks[:1], labels=[1], mask_input=first.logits, multimask=False)
    ref_full, ref_scores, ref_low = _reference(ref_predictor, clicks[0], False, first.logits[None])
    assert _same_mask(refined.mask, ref_full[0]) and rel_error(refined.logits, ref_low[0]) <= TOL


def test_context_gives_what_raw_embeddings_give(scene, model):
    predictor, _, clicks = scene
    context = model.prepare_decoder(predictor.embedding)
    xy = torch.tensor(clicks[:2, ::-1].copy(), dtype=torch.float32)[None] * 1.6  # (1, 2, 2) (x, y), model frame
    prompts = {
        "points": dict(points=xy, labels=torch.tensor([[1, 0]])),
        "boxes": dict(boxes=torch.tensor([[10.0, 20.0, 300.0, 400.0], [500.0, 100.0, 900.0, 700.0]])),
        "mask": dict(points=xy[:, :1], labels=torch.tensor([[1]]), mask_input=torch.randn(1, 1, 256, 256)),
    }
    for prompt in prompts.values():
        raw_logits, raw_scores = model.decode(predictor.embedding, **prompt)
        logits, scores = model.decode(context, **prompt)
        assert torch.equal(logits, raw_logits) and torch.equal(scores, raw_scores)


def test_new_image_invalidates_the_context(scene, model, real_data):
    predictor, _, _ = scene
    image, labels = load_dsb(real_data, TALL)
    click = object_centres(labels, 1)[0]
    other = samkit.Predictor(model)
    other.set_image(load_dsb(real_data, WIDE)[0])
    other.predict_best(points=[[100, 100]], labels=[1])  # its context now holds the wide image
    other.set_image(image)
    fresh = samkit.Predictor(model)
    fresh.set_image(image)
    got, want = other.predict_best(points=[click], labels=[1]), fresh.predict_best(points=[click], labels=[1])
    assert got.mask.shape == image.shape[:2]
    assert np.array_equal(got.mask, want.mask) and np.array_equal(got.logits, want.logits)
    other.embedding = predictor.embedding  # a new embedding set by hand counts too
    other.image_shape, other.input_shape = predictor.image_shape, predictor.input_shape
    got, want = other.predict(points=[[100, 100]], labels=[1]), predictor.predict(points=[[100, 100]], labels=[1])
    assert np.array_equal(got.logits, want.logits)


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def _clicks_inside(labels, per_object, seed=0):
    """(n, 2) (y, x) clicks at least half an object's depth inside it, ``per_object`` per object."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    clicks = []
    for i in np.unique(labels[labels > 0]):
        depth = ndimage.distance_transform_edt(labels == i)
        deep = np.argwhere(depth >= depth.max() / 2)
        clicks.extend(deep[rng.choice(len(deep), min(per_object, len(deep)), replace=False)])
    return np.array(clicks)


def test_bf16_agrees_with_fp32(scene, checkpoint, real_data):
    predictor, _, _ = scene
    half = samkit.Predictor(samkit.load_model(checkpoint[2], device="cpu", precision="bf16"))
    half.embedding = predictor.embedding  # the same fp32 embedding: this is about the decoder
    half.image_shape, half.input_shape = predictor.image_shape, predictor.input_shape
    ious, score_errors, scales = [], [], []
    for click in _clicks_inside(load_dsb(real_data, WIDE)[1], per_object=3):
        want, got = predictor.predict(points=[click], labels=[1]), half.predict_best(points=[click], labels=[1])
        ious.append(_iou(got.mask, want.masks[got.index]))
        score_errors.append(np.abs(half.predict(points=[click], labels=[1]).scores - want.scores).max())
        scales.append(np.abs(want.scores).max())
        assert got.mask.dtype == bool and got.logits.dtype == np.float32 and isinstance(got.score, float)
    # Random weights give logits of ~0.07 with many pixels within bf16 rounding
    # (8 significant bits) of the threshold, so single masks may dip a little
    # below 0.99; on average they must not.
    assert np.mean(ious) >= 0.99 and min(ious) >= 0.98, ious
    # The prompt tokens and the IoU head stay in float32; only products with
    # image tokens are bf16 (relative rounding 2**-8 = 0.4%), so the scores may
    # move by about that fraction of their scale, a few times over.
    assert max(score_errors) <= 0.02 * max(scales), (score_errors, max(scales))


def test_model_precision_change_is_picked_up(scene, model):
    predictor, _, clicks = scene
    fp32 = predictor.predict_best(points=clicks[:1], labels=[1])
    model.precision = "bf16"
    try:
        bf16 = predictor.predict_best(points=clicks[:1], labels=[1])
    finally:
        model.precision = "fp32"
    assert not np.array_equal(bf16.logits, fp32.logits)  # decoded in bf16 ...
    assert np.array_equal(predictor.predict_best(points=clicks[:1], labels=[1]).logits, fp32.logits)  # ... and back


def test_predict_best_takes_one_prompt(scene):
    predictor, _, _ = scene
    with pytest.raises(InvalidPromptError, match="predict_best takes one prompt"):
        predictor.predict_best(box=[[0, 0, 50, 50], [10, 10, 60, 60]])


@pytest.mark.parametrize("shape", [(512, 640), (519, 161), (1024, 1024), (37, 1000)])
def test_upscale_mask_equals_thresholded_upscale_logits(model, shape):
    scale = 1024 / max(shape)
    input_size = (int(shape[0] * scale + 0.5), int(shape[1] * scale + 0.5))
    gen = torch.Generator().manual_seed(0)
    blob = torch.full((256, 256), -4.0)
    blob[100:120, 30:41] = 2.0
    fields = {
        "blob": blob,
        "corner": torch.where(torch.arange(256)[:, None] + torch.arange(256) < 5, 1.0, -1.0),
        "scattered": torch.randn(256, 256, generator=gen),
        "empty": torch.full((256, 256), -1.0),
    }
    for logits in fields.values():
        full = model.upscale_logits(logits[None, None], input_size, shape)[0, 0]
        crop, (y0, x0) = model.upscale_mask(logits, input_size, shape)
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
        differ = mask != (full > 0)
        assert (full[differ].abs() < 1e-5).all()
        assert crop.numel() == 0 or crop.shape[0] * crop.shape[1] <= shape[0] * shape[1]
