"""Numerical parity of samkit's SAM 2.1 image path with Meta's reference ``sam2`` 1.1.0.

The reference model of each size gets fixed random weights (every learned
table included), is saved as the official files are (``{"model": state_dict}``,
video weights and all) and that FILE is loaded through ``samkit.load_model``.
Both then see the same real images (DSB2018 nuclei, a wide and a tall one) and
prompts taken from their ground-truth objects: ours through
``samkit.Predictor``, the reference through its ``SAM2ImagePredictor``.

Hiera-T gets the full prompt matrix; S and B+ an embedding and one point; L
its image encoder on a 256 x 256 crop (every size-specific number, at a
sixteenth of the cost of a 1024 x 1024 input).
"""

import re

import numpy as np
import pytest
import torch

import samkit
from conftest import load_dsb, object_centres
from reference import rel_error
from reference_sam2 import build_reference, import_sam2, save_official_layout
from samkit.errors import CheckpointError
from samkit.models.checkpoint import read_checkpoint
from samkit.models.sam2 import Sam2, Sam2Embedding, detect_sam2_type, load_sam2
from samkit.models.sam2.checkpoint import VIDEO_PREFIXES
from samkit.models.sam2.mask_decoder import stability

TOL = 1e-4  # max relative error, fp32
LOGIT_EPS = 1e-3  # masks may differ only where the reference logit is this close to 0
WIDE, TALL = "1879f4f4f05e", "ca20076870e8"  # 512 x 640 and 519 x 161


def _models(model_type, seed, tmp_path_factory):
    ref = build_reference(model_type, seed)
    path = tmp_path_factory.mktemp("ckpt") / f"{model_type}_random.pt"
    save_official_layout(ref, path)
    return ref, samkit.load_model(path, device="cpu"), path


def _scene(ref, ours, real_data, image_id):
    sam2 = import_sam2()
    image, labels = load_dsb(real_data, image_id)
    ref_predictor = sam2.sam2_image_predictor.SAM2ImagePredictor(ref)
    ref_predictor.set_image(image)
    predictor = samkit.Predictor(ours)
    predictor.set_image(image)
    return ref_predictor, predictor, image, labels


def _assert_embeddings_match(ref_predictor, predictor):
    ours, ref = predictor.embedding, ref_predictor._features
    assert isinstance(ours, Sam2Embedding)
    assert ours.image.shape == (1, 256, 64, 64)
    assert ours.feat_s0.shape == (1, 32, 256, 256) and ours.feat_s1.shape == (1, 64, 128, 128)
    assert rel_error(ours.image, ref["image_embed"]) <= TOL
    assert rel_error(ours.feat_s0, ref["high_res_feats"][0]) <= TOL
    assert rel_error(ours.feat_s1, ref["high_res_feats"][1]) <= TOL


def _prompts(labels):
    """Prompt sets built from the ground-truth objects: ours in (y, x), the reference's in (x, y)."""
    centres = object_centres(labels, 4)
    boxes = []
    for c in centres[:3]:
        ys, xs = np.nonzero(labels == labels[tuple(c)])
        boxes.append([ys.min(), xs.min(), ys.max() + 1, xs.max() + 1])
    return {
        "one point": dict(points=centres[:1], labels=[1]),
        "points +/-": dict(points=centres, labels=[1, 0, 0, 1]),
        "box": dict(box=np.array(boxes[0])),
        "box + points": dict(box=np.array(boxes[0]), points=centres[:2], labels=[1, 0]),
        "several boxes": dict(box=np.array(boxes)),
    }


def _reference(ref_predictor, prompt, multimask, mask_input=None):
    """Run the reference with the same prompt, converted to its (x, y) frame."""
    points, box = prompt.get("points"), prompt.get("box")
    xy = None if points is None else np.asarray(points)[:, ::-1].astype(float)
    labels = None if points is None else np.asarray(prompt["labels"])
    xyxy = None if box is None else np.asarray(box)[..., [1, 0, 3, 2]].astype(float)
    return ref_predictor.predict(xy, labels, xyxy, mask_input, multimask, return_logits=True)


def _assert_same(result, ref_out):
    ref_logits_full, ref_iou, ref_low = ref_out
    assert result.logits.shape == ref_low.shape and result.masks.shape == ref_logits_full.shape
    assert rel_error(result.logits, ref_low) <= TOL
    assert rel_error(result.scores, ref_iou) <= TOL
    differ = result.masks != (ref_logits_full > 0)
    assert np.all(np.abs(ref_logits_full[differ]) < LOGIT_EPS * np.abs(ref_logits_full).max())
    assert result.masks.dtype == bool and result.scores.dtype == np.float32


# ---------------------------------------------------------------- Hiera-T: everything


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _models("sam2.1_hiera_tiny", 0, tmp_path_factory)


@pytest.fixture(scope="module", params=[WIDE, TALL])
def scene(request, tiny, real_data):
    ref, ours, _ = tiny
    return _scene(ref, ours, real_data, request.param)


def test_loaded_from_file_without_model_type(tiny):
    _, ours, path = tiny
    assert isinstance(ours, Sam2) and ours.model_type == "sam2.1_hiera_tiny"
    assert ours.precision == "fp32" and ours.device.type == "cpu" and ours.checkpoint == path
    state, _ = read_checkpoint(path)
    assert any(k.startswith("memory_attention.") for k in state)  # video weights were in the file


def test_embeddings_match(scene):
    ref_predictor, predictor, _, _ = scene
    _assert_embeddings_match(ref_predictor, predictor)


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
    best = first.logits[np.argmax(first.scores)][None]  # (1, 256, 256), clamped to +-32 as the reference's
    refined = predictor.predict(**prompt, mask_input=best, multimask=False)
    _assert_same(refined, _reference(ref_predictor, prompt, False, mask_input=best))


@pytest.mark.parametrize("case", ["one point", "points +/-", "box + points"])
def test_predict_best_is_the_best_of_predict(scene, case):
    _, predictor, _, labels = scene
    prompt = _prompts(labels)[case]
    full = predictor.predict(**prompt)
    best = predictor.predict_best(**prompt)
    assert best.index == int(np.argmax(full.scores)) and best.score == pytest.approx(full.scores[best.index])
    np.testing.assert_array_equal(best.logits, full.logits[best.index])
    differ = best.mask != full.masks[best.index]
    logits = predictor.model.upscale_logits(torch.from_numpy(full.logits[None]), None, predictor.image_shape)[0]
    assert np.all(np.abs(logits[best.index].numpy()[differ]) < 1e-4)


@pytest.mark.parametrize("gain", [1.0, 1000.0])
def test_object_score_and_stability_fallback_match(tiny, scene, gain):
    """The object-score head, and the single-mask output: with these random weights it is unstable
    (gain 1: the best of the three candidates replaces it); made steep (gain 1000 on its hypernetwork's
    last layer, in both models) it is stable and kept."""
    ref, ours, _ = tiny
    ref_predictor, predictor, _, labels = scene
    features = ref_predictor._features
    xy = predictor._to_model_xy(object_centres(labels, 4))[:, None]  # (4, 1, 2): four separate prompts
    lab = torch.ones(4, 1, dtype=torch.int)
    layers = [m.sam_mask_decoder.output_hypernetworks_mlps[0].layers[2] for m in (ours, ref)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.mul_(gain), layer.bias.mul_(gain)
    try:
        logits, iou, score, _ = ours.decode_all(predictor.embedding, xy, lab, multimask=False)
        _, multi_iou = ours.decode(predictor.embedding, xy, lab, multimask=True)
        with torch.no_grad():
            sparse, dense = ref.sam_prompt_encoder(points=(xy, lab), boxes=None, masks=None)
            ref_logits, ref_iou, _, ref_score = ref.sam_mask_decoder(
                image_embeddings=features["image_embed"],
                image_pe=ref.sam_prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
                repeat_image=True,
                high_res_features=features["high_res_feats"],
            )
        # through the predictors: steep logits are handed out clamped to +-32, masks come from unclamped ones
        prompt = _prompts(labels)["one point"]
        predictor.embedding = predictor.embedding  # drop the decoder's per-image work made before the gain
        steep = predictor.predict(**prompt, multimask=False)
        _assert_same(steep, _reference(ref_predictor, prompt, False))
    finally:
        with torch.no_grad():
            for layer in layers:
                layer.weight.div_(gain), layer.bias.div_(gain)
    assert rel_error(logits, ref_logits) <= TOL and rel_error(iou, ref_iou) <= TOL
    assert score.shape == (4, 1) and rel_error(score, ref_score) <= TOL
    replaced = iou[:, 0] == multi_iou.max(1).values
    assert replaced.all() if gain == 1.0 else not replaced.any()
    if gain > 1:
        assert np.abs(steep.logits).max() == 32.0


def test_bf16_masks_match_fp32(tiny, real_data):
    """bf16 on the CPU: embeddings within 5 % of fp32's, masks of real objects overlap with IoU >= 0.99
    (the wide image; one is enough)."""
    ref, ours, _ = tiny
    _, fp32, image, labels = _scene(ref, ours, real_data, WIDE)
    ours.precision = "bf16"
    try:
        bf16 = samkit.Predictor(ours)
        bf16.set_image(image)
        assert all(rel_error(a, b) <= 0.05 for a, b in zip(bf16.embedding, fp32.embedding))
        pairs = []
        for centre in object_centres(labels, 6):
            ours.precision = "bf16"
            a = bf16.predict_best(points=[centre], labels=[1]).mask
            ours.precision = "fp32"
            pairs.append((a, fp32.predict_best(points=[centre], labels=[1]).mask))
    finally:
        ours.precision = "fp32"
    ious = [(a & b).sum() / max((a | b).sum(), 1) for a, b in pairs]
    assert np.mean(ious) >= 0.99 and min(ious) >= 0.97, ious


def test_stability():
    logits = torch.full((2, 4, 4), -1.0)
    logits[0, :2] = 1.0  # 8 pixels clearly inside: stable
    logits[1, :2], logits[1, 2] = 1.0, 0.0  # 4 more within +-0.05 of 0: 8 / 12
    torch.testing.assert_close(stability(logits), torch.tensor([1.0, 8 / 12]))
    assert stability(torch.full((1, 4, 4), -1.0)).item() == 1.0  # empty: stable


# ---------------------------------------------------------------- the checkpoint


def test_wrong_or_missing_image_keys_are_named(tiny):
    _, _, path = tiny
    state, _ = read_checkpoint(path)
    assert detect_sam2_type(state) == "sam2.1_hiera_tiny"
    key = "sam_mask_decoder.conv_s0.weight"
    missing = {k: v for k, v in state.items() if k != key}
    with pytest.raises(CheckpointError, match=re.escape(f"key {key!r} is missing")):
        load_sam2(missing, "sam2.1_hiera_tiny.pt")
    extra = {**state, "sam_mask_decoder.conv_s2.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="'sam_mask_decoder.conv_s2.weight' is not part of the model"):
        load_sam2(extra, "sam2.1_hiera_tiny.pt")
    wrong = {**state, "no_mem_embed": torch.zeros(1, 1, 64)}
    with pytest.raises(CheckpointError, match=r"'no_mem_embed' has shape \(1, 1, 64\), expected \(1, 1, 256\)"):
        load_sam2(wrong, "sam2.1_hiera_tiny.pt")
    image_only = {k: v for k, v in state.items() if not k.startswith(VIDEO_PREFIXES)}
    assert load_sam2(image_only).model_type == "sam2.1_hiera_tiny"  # the video parts are not needed for images


def test_unknown_trunk_size_is_refused(tiny):
    _, _, path = tiny
    state, _ = read_checkpoint(path)
    state = {k: v for k, v in state.items() if not k.startswith("image_encoder.trunk.blocks.11.")}
    with pytest.raises(CheckpointError, match="width 96 with 11 blocks is no SAM 2.1 size"):
        detect_sam2_type(state, "cut.pt")


# ---------------------------------------------------------------- S and B+: embedding and one point


@pytest.mark.parametrize("model_type", ["sam2.1_hiera_small", "sam2.1_hiera_base_plus"])
def test_other_sizes_match(model_type, tmp_path_factory, real_data):
    ref, ours, _ = _models(model_type, 3, tmp_path_factory)
    assert ours.model_type == model_type
    ref_predictor, predictor, _, labels = _scene(ref, ours, real_data, WIDE)
    _assert_embeddings_match(ref_predictor, predictor)
    prompt = _prompts(labels)["one point"]
    _assert_same(predictor.predict(**prompt), _reference(ref_predictor, prompt, True))


# ---------------------------------------------------------------- L: the image encoder on a crop


def test_large_image_encoder_matches(tmp_path_factory, real_data):
    ref, ours, _ = _models("sam2.1_hiera_large", 5, tmp_path_factory)
    assert ours.model_type == "sam2.1_hiera_large"
    image, _ = load_dsb(real_data, WIDE)
    x = torch.from_numpy(image[:256, :256].astype(np.float32)).permute(2, 0, 1)[None]  # (1, 3, 256, 256)
    x = (x / 255 - ours.pixel_mean) / ours.pixel_std
    with torch.no_grad():
        ref_out = ref.forward_image(x)["backbone_fpn"]  # conv_s0 / conv_s1 applied to the two finest
        s0, s1, image_embed = ours.image_encoder(x)
        mine = [ours.sam_mask_decoder.conv_s0(s0), ours.sam_mask_decoder.conv_s1(s1), image_embed]
    for a, b in zip(mine, ref_out):
        assert a.shape == b.shape
        assert rel_error(a, b) <= TOL
