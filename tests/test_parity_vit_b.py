"""Numerical parity with Meta's segment-anything on identical random weights.

The reference model gets fixed random weights, its state dict is saved in the
official file layout, and that FILE is loaded through ``samkit.load_model``.
Both then see the same real image (DSB2018 nuclei) and the same prompts.
"""

import numpy as np
import pytest
import torch

import samkit
from conftest import load_dsb, object_centres
from reference import import_segment_anything, randomize_, rel_error

TOL = 1e-4  # max relative error, fp32
LOGIT_EPS = 1e-3  # masks may differ only where the reference logit is this close to 0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    sa = import_segment_anything()
    torch.manual_seed(0)
    ref = randomize_(sa.sam_model_registry["vit_b"](), seed=1)
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_b_random.pth"
    torch.save(ref.state_dict(), path)
    ours = samkit.load_model(path, device="cpu")
    return sa, ref, ours


# image id -> a wide (512 x 640) and a tall (519 x 161) image, both non-square
@pytest.fixture(scope="module", params=["1879f4f4f05e", "ca20076870e8"])
def scene(request, models, real_data):
    sa, ref, ours = models
    image, labels = load_dsb(real_data, request.param)
    ref_predictor = sa.SamPredictor(ref)
    ref_predictor.set_image(image)
    predictor = samkit.Predictor(ours)
    predictor.set_image(image)
    return ref_predictor, predictor, image, labels


def test_loaded_from_file(models):
    _, _, ours = models
    assert ours.model_type == "vit_b" and ours.precision == "fp32" and ours.device.type == "cpu"


def test_embeddings_match(scene):
    ref_predictor, predictor, _, _ = scene
    assert predictor.embedding.shape == (1, 256, 64, 64)
    assert rel_error(predictor.embedding, ref_predictor.features) <= TOL


def _prompts(labels):
    """Prompt sets built from the ground-truth objects: ours in (y, x), the reference's in (x, y)."""
    centres = object_centres(labels, 4)
    ys, xs = np.nonzero(labels == labels[tuple(centres[0])])
    box = np.array([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    boxes = []
    for c in centres[:3]:
        ys, xs = np.nonzero(labels == labels[tuple(c)])
        boxes.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return {
        "one point": dict(points=centres[:1], labels=[1]),
        "points +/-": dict(points=centres, labels=[1, 0, 0, 1]),
        "box": dict(box=box),
        "box + points": dict(box=box, points=centres[:2], labels=[1, 0]),
        "several boxes": dict(box=np.array(boxes)),
    }


def _reference(ref_predictor, prompt, multimask, mask_input=None):
    """Run the reference with the same prompt, converted to its (x, y) frame."""
    points = prompt.get("points")
    box = prompt.get("box")
    xy = None if points is None else np.asarray(points)[:, ::-1].astype(float)
    xyxy = None if box is None else np.asarray(box)[..., [1, 0, 3, 2]].astype(float)
    if xyxy is not None and xyxy.ndim == 2:  # batched boxes go through predict_torch
        t = ref_predictor.transform.apply_boxes_torch(torch.as_tensor(xyxy), ref_predictor.original_size)
        logits_full, iou, low = ref_predictor.predict_torch(None, None, boxes=t, multimask_output=multimask, return_logits=True)
        return logits_full.numpy(), iou.numpy(), low.numpy()
    labels = None if points is None else np.asarray(prompt["labels"])
    return ref_predictor.predict(xy, labels, xyxy, mask_input, multimask, return_logits=True)


def _assert_same(result, ref_out):
    ref_logits_full, ref_iou, ref_low = ref_out
    assert result.logits.shape == ref_low.shape and result.masks.shape == ref_logits_full.shape
    assert rel_error(result.logits, ref_low) <= TOL
    assert rel_error(result.scores, ref_iou) <= TOL
    differ = result.masks != (ref_logits_full > 0)
    assert np.all(np.abs(ref_logits_full[differ]) < LOGIT_EPS * np.abs(ref_logits_full).max())
    assert result.masks.dtype == bool and result.scores.dtype == np.float32


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", ["one point", "points +/-", "box", "box + points", "several boxes"])
def test_prompts_match(scene, case, multimask):
    ref_predictor, predictor, _, labels = scene
    prompt = _prompts(labels)[case]
    result = predictor.predict(**prompt, multimask=multimask)
    _assert_same(result, _reference(ref_predictor, prompt, multimask))
    if case == "several boxes":
        assert result.masks.shape[:2] == (3, 3 if multimask else 1)


def test_mask_input_refinement_matches(scene):
    ref_predictor, predictor, _, labels = scene
    prompt = _prompts(labels)["one point"]
    first = predictor.predict(**prompt)
    best = first.logits[np.argmax(first.scores)][None]  # (1, 256, 256)
    refined = predictor.predict(**prompt, mask_input=best, multimask=False)
    _assert_same(refined, _reference(ref_predictor, prompt, False, mask_input=best))


def test_bf16_masks_match_fp32(scene, models):
    """bf16 on the CPU (explicit attention products): masks of real objects as fp32's, IoU >= 0.99."""
    _, fp32, image, labels = scene
    ours = models[2]
    ours.precision = "bf16"
    try:
        bf16 = samkit.Predictor(ours)
        bf16.set_image(image)
    finally:
        ours.precision = "fp32"
    assert rel_error(bf16.embedding, fp32.embedding) <= 0.05
    ious = []
    for centre in object_centres(labels, 6):
        a = fp32.predict_best(points=[centre], labels=[1]).mask
        b = bf16.predict_best(points=[centre], labels=[1]).mask
        ious.append((a & b).sum() / max((a | b).sum(), 1))
    assert np.mean(ious) >= 0.99 and min(ious) >= 0.97, ious
