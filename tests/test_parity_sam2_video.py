"""Numerical parity of samkit's SAM 2.1 memory path with Meta's ``SAM2VideoPredictor`` (sam2 1.1.0).

The reference Hiera-T gets fixed random weights (every learned table
included), is saved as the official files are, and that FILE is loaded both
through ``samkit.load_model`` (ours) and by ``build_sam2_video_predictor``
(the reference, see :func:`reference_sam2.build_video_reference` for its
stand-ins). The frames are five real planes of the StarDist 3D nuclei stack
(z = 10 .. 14 of 31), stretched to 1024 x 1024 as SAM 2 does; prompts come
from the ground-truth nuclei. Per frame the masks must be identical and the
low-res logits and object scores within 1e-4 (max relative error, fp32).

Five planes keep the test short: each tracked frame costs a memory attention
over up to 7 x 4096 memory tokens on each side. The rules that need longer
stacks (the window of 6 memories, 15 pointers, their temporal encodings,
both directions) are checked on 20 synthetic frames on a small grid, against
the reference's own function.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from scipy import ndimage

import samkit
from reference import rel_error
from reference_sam2 import build_reference, build_video_reference, import_sam2, save_official_layout
from samkit.errors import CheckpointError, InvalidPromptError, NotReadyError, UnsupportedModelError
from samkit.models.checkpoint import read_checkpoint
from samkit.models.sam2 import FrameEmbeddings, Sam2Embedding, Sam2Tracker, load_sam2
from samkit.models.sam2 import tracker as tracker_module
from samkit.models.sam2.checkpoint import VIDEO_PREFIXES
from samkit.models.sam2.memory import FrameOutput, condition, encode_memory, mask_as_output, select_memory
from samkit.models.sam2.tracker import fill_holes

TOL = 1e-4
PLANES = slice(10, 15)  # z planes used as frames
CLICKED, BOXED, MASKED = 59, 142, 8  # ground-truth nuclei present in all five planes
MIDDLE = 2


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "sam2.1_hiera_tiny_random.pt"
    save_official_layout(build_reference("sam2.1_hiera_tiny", 0), path)
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield build_video_reference(path, monkeypatch), samkit.load_model(path, device="cpu"), path


@pytest.fixture(scope="module")
def stack(models, real_data):
    """The planes, their ground truth, our lazily embedded frames and the RGB frames both sides see."""
    _, ours, _ = models
    folder = real_data / "nuclei" / "stardist"
    planes, labels = tifffile.imread(folder / "img3d.tif")[PLANES], tifffile.imread(folder / "mask3d.tif")[PLANES]
    frames = FrameEmbeddings(ours, planes)
    rgb = np.stack([frames.policy.apply(p[..., None]) for p in planes])  # (T, H, W, 3) uint8, one mapping
    return planes, labels, frames, rgb


def _centre(mask: np.ndarray) -> tuple[int, int]:
    y, x = np.unravel_index(np.argmax(ndimage.distance_transform_edt(mask)), mask.shape)
    return int(y), int(x)


def _xy(points_yx) -> np.ndarray:
    return np.asarray(points_yx, dtype=np.float32)[:, ::-1].copy()


def _ref_low(state, frame: int) -> tuple[torch.Tensor, float]:
    """The reference's low-res logits and object score kept for ``frame``."""
    out = state["output_dict_per_obj"][0]
    entry = out["cond_frame_outputs"].get(frame) or out["non_cond_frame_outputs"][frame]
    return entry["pred_masks"][0, 0], float(entry["object_score_logits"])


def _assert_same(result, ref_low, ref_video, ref_score=None):
    np.testing.assert_array_equal(result.mask, ref_video.numpy() > 0)
    assert rel_error(result.logits, ref_low) <= TOL
    if ref_score is not None:
        assert (result.object_score > 0) == (ref_score > 0)
        assert abs(result.object_score - ref_score) <= TOL * max(1.0, abs(ref_score))


def _assert_propagation(ref, state, tracker, **kwargs):
    """Propagate both and compare every frame; return our results by frame."""
    expected = {f: m[0, 0] for f, _, m in ref.propagate_in_video(state, **kwargs)}
    ours = {r.frame: r for r in tracker.propagate(kwargs.get("start_frame_idx"), reverse=kwargs.get("reverse", False),
                                                  max_frames=kwargs.get("max_frame_num_to_track"))}
    assert sorted(ours) == sorted(expected)
    for frame, result in ours.items():
        low, score = _ref_low(state, frame)
        _assert_same(result, low, expected[frame], score)
    return ours


# ---------------------------------------------------------------- the real stack


def test_click_propagates_both_ways_and_a_correction_as_the_reference(models, stack, monkeypatch):
    """One click in the middle plane of a nucleus, propagated to the last plane and back to the first;
    then a negative click on the first plane (it becomes a prompted frame) and propagation again from it
    (one plane, to keep the test short). A last propagation without new prompts decodes nothing (the
    frames' memories are the same)."""
    ref, ours, _ = models
    _, labels, frames, rgb = stack
    state = ref.init_state(rgb)
    click = _centre(labels[MIDDLE] == CLICKED)
    _, _, ref_video = ref.add_new_points_or_box(state, MIDDLE, 1, points=_xy([click]), labels=np.array([1], np.int32))
    tracker = Sam2Tracker(ours, frames)
    first = tracker.add_prompt(MIDDLE, points=[click], labels=[1])
    ref_first = state["temp_output_dict_per_obj"][0]["cond_frame_outputs"][MIDDLE]
    _assert_same(first, ref_first["pred_masks"][0, 0], ref_video[0, 0], float(ref_first["object_score_logits"]))
    assert first.mask.shape == labels.shape[1:]

    forward = _assert_propagation(ref, state, tracker)
    backward = _assert_propagation(ref, state, tracker, reverse=True)
    assert sorted(forward) == [2, 3, 4] and sorted(backward) == [0, 1, 2]

    background = _centre(labels[0] == 0)  # the background pixel farthest from any nucleus
    _, _, ref_video = ref.add_new_points_or_box(
        state, 0, 1, points=_xy([background]), labels=np.array([0], np.int32), clear_old_points=False
    )
    corrected = tracker.add_prompt(0, points=[background], labels=[0], keep_points=True)
    ref_corrected = state["temp_output_dict_per_obj"][0]["cond_frame_outputs"][0]
    _assert_same(corrected, ref_corrected["pred_masks"][0, 0], ref_video[0, 0], float(ref_corrected["object_score_logits"]))
    assert tracker.prompted_frames == [0, 2]
    again = _assert_propagation(ref, state, tracker, start_frame_idx=0, max_frame_num_to_track=1)
    assert sorted(again) == [0, 1]  # frame 1 again: its memories now hold the correction

    calls = []
    monkeypatch.setattr(tracker_module, "condition", lambda *a: calls.append(a))
    repeated = list(tracker.propagate(0, max_frames=1))
    assert calls == [] and all(np.array_equal(r.logits, again[r.frame].logits) for r in repeated)


def test_box_propagates_as_the_reference(models, stack):
    """A box around a nucleus on the middle plane, propagated to the next plane (one: the click test
    covers the rest)."""
    ref, ours, _ = models
    _, labels, frames, rgb = stack
    ys, xs = np.nonzero(labels[MIDDLE] == BOXED)
    box = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    state = ref.init_state(rgb)
    xyxy = np.array([box[1], box[0], box[3], box[2]], np.float32)
    _, _, ref_video = ref.add_new_points_or_box(state, MIDDLE, 1, box=xyxy)
    tracker = Sam2Tracker(ours, frames)
    first = tracker.add_prompt(MIDDLE, box=box)
    _assert_same(first, state["temp_output_dict_per_obj"][0]["cond_frame_outputs"][MIDDLE]["pred_masks"][0, 0], ref_video[0, 0])
    assert sorted(_assert_propagation(ref, state, tracker, max_frame_num_to_track=1)) == [2, 3]


def test_mask_prompt_and_absent_object_as_the_reference(models, stack):
    """A ground-truth mask on the middle plane is that plane's answer and is followed over two planes
    where the model sees no object: the object-score head's bias is lowered by 1 in both models (with
    these random weights every score is about +0.2), so the tracked planes take the no-object path
    (logits -1024, the no-object pointer and memory embedding, seen by the plane after)."""
    ref, ours, _ = models
    _, labels, frames, rgb = stack
    mask = labels[MIDDLE] == MASKED
    biases = [m.sam_mask_decoder.pred_obj_score_head.layers[-1].bias for m in (ours, ref)]
    with torch.no_grad():
        for bias in biases:
            bias -= 1
    try:
        state = ref.init_state(rgb)
        _, _, ref_video = ref.add_new_mask(state, MIDDLE, 1, mask)
        tracker = Sam2Tracker(ours, frames)
        first = tracker.add_mask(MIDDLE, mask)
        _assert_same(first, state["temp_output_dict_per_obj"][0]["cond_frame_outputs"][MIDDLE]["pred_masks"][0, 0], ref_video[0, 0])
        results = _assert_propagation(ref, state, tracker, max_frame_num_to_track=2)
    finally:
        with torch.no_grad():
            for bias in biases:
                bias += 1
    assert sorted(results) == [2, 3, 4] and first.object_score > 0 and np.array_equal(first.mask, mask)
    for frame in (3, 4):
        assert results[frame].object_score < 0 and not results[frame].mask.any()
        assert (results[frame].logits == -1024).all()


# ---------------------------------------------------------------- the memory rules, on long synthetic stacks


def _synthetic(num_frames, prompted, missing, grid, seed):
    """Random memories and pointers for every frame but ``missing``: ours and the reference's output dicts."""
    gen = torch.Generator().manual_seed(seed)
    ours, ref = ({}, {}), {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    for t in range(num_frames):
        if t in missing:
            continue
        memory = torch.randn(1, 64, *grid, generator=gen).to(torch.bfloat16)
        pointer = torch.randn(1, 256, generator=gen)
        key = 0 if t in prompted else 1
        ours[key][t] = FrameOutput(None, None, pointer, memory)
        ref[("cond_frame_outputs", "non_cond_frame_outputs")[key]][t] = {"maskmem_features": memory, "obj_ptr": pointer}
    return ours, ref


@pytest.mark.parametrize(
    "num_frames, prompted, missing, forward, backward",
    [(20, (4, 10, 16), (12,), (5, 13, 19), (0, 7, 13)), (8, (2,), (), (3, 7), (0, 1))],
)
def test_memory_selection_and_attention_match(models, num_frames, prompted, missing, forward, backward):
    """Which memories (the prompted frames' and 6 frames back) and pointers (up to 15 back, prompted
    ones only up to the frame) a frame attends to, with their temporal encodings, in both directions
    (frames a propagation reaches: after a prompted frame, resp. before one); on a small 8 x 8 grid
    (both sides compute the rotary angles for it)."""
    ref, ours, _ = models
    grid = (8, 8)
    (mine_prompted, mine_tracked), ref_dict = _synthetic(num_frames, prompted, missing, grid, seed=1)
    pos = ref.memory_encoder.position_encoding(torch.zeros(1, 64, *grid))
    for out in (*ref_dict["cond_frame_outputs"].values(), *ref_dict["non_cond_frame_outputs"].values()):
        out["maskmem_pos_enc"] = [pos]
    features = torch.randn(1, 256, *grid, generator=torch.Generator().manual_seed(2))
    tokens = features.flatten(2).permute(2, 0, 1)  # (HW, 1, C)
    image_pos = ref.image_encoder.neck.position_encoding(features).flatten(2).permute(2, 0, 1)
    for reverse, frames in ((False, forward), (True, backward)):
        for frame in frames:
            with torch.no_grad():
                expected = ref._prepare_memory_conditioned_features(
                    frame, False, [tokens], [image_pos], [grid], ref_dict, num_frames, track_in_reverse=reverse
                )
            memories, pointers = select_memory(frame, mine_prompted, mine_tracked, reverse, num_frames)
            with torch.inference_mode():
                got = condition(ours, features, memories, pointers, num_frames)
            assert rel_error(got, expected) <= TOL, (frame, reverse)
    memories, pointers = select_memory(13, mine_prompted, mine_tracked, False, num_frames)
    if num_frames == 20:  # the window: 7 .. 12 less the missing 12, the prompted 10 among the prompted
        assert [row for row, _ in memories] == [6, 6, 6, 5, 4, 3, 1]
        assert [d for d, _ in pointers] == [9, 3, 2, 4, 5, 6, 7, 8, 10, 11, 12, 13]


def test_memory_encoder_and_mask_prompt_match(models):
    """A frame's memory (sigmoid or binarised mask; object absent adds no_obj_embed_spatial), and a
    mask prompt's answer and pointer (mask present or empty), against the reference's own functions."""
    ref, ours, _ = models
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(1, 256, 64, 64, generator=gen)
    logits = 8 * torch.randn(1, 1, 256, 256, generator=gen)
    high = F.interpolate(logits, size=(1024, 1024), mode="bilinear", align_corners=False)
    tokens = features.flatten(2).permute(2, 0, 1)
    for binarize, score in ((True, 1.5), (False, -0.5)):
        score = torch.tensor([[score]])
        with torch.no_grad():
            expected, _ = ref._encode_new_memory([tokens], [(64, 64)], high, score, is_mask_from_pts=binarize)
        with torch.inference_mode():
            got = encode_memory(ours, features, logits, score, binarize)
        assert rel_error(got, expected) <= TOL

    high_res = [torch.randn(1, 32, 256, 256, generator=gen), torch.randn(1, 64, 128, 128, generator=gen)]
    embedding = Sam2Embedding(features + ours.no_mem_embed.view(1, -1, 1, 1), *high_res)
    for filled in (True, False):
        mask = torch.zeros(1, 1, 1024, 1024)
        if filled:
            mask[..., 300:600, 200:700] = 1
        with torch.no_grad():
            low, _, _, _, _, pointer, score = ref._use_mask_as_output(features, high_res, mask)
        with torch.inference_mode():
            got = mask_as_output(ours, embedding, mask)
        assert rel_error(got.logits, low) <= TOL and rel_error(got.pointer, pointer) <= TOL
        assert torch.equal(got.object_score, score)


def test_fill_holes_matches_the_reference():
    """Background holes of up to 8 low-res pixels become 0.1 (8-connected), larger ones and the border stay."""
    import_sam2()
    from sam2.utils import misc

    from reference_sam2 import _connected_components

    logits = torch.full((1, 1, 32, 32), 5.0)
    logits[..., 3:5, 3:5] = -1  # 4 pixels: filled
    logits[..., 10:13, 10:13] = -1  # 9 pixels: kept
    logits[..., 20, 20] = logits[..., 21, 21] = -1  # 2 pixels touching at a corner: one hole, filled
    logits[..., 0, 25:31] = -2  # 6 pixels on the border: filled as well (the kernel does not care)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(misc, "get_connected_components", _connected_components)
        expected = misc.fill_holes_in_mask_scores(logits, 8)
    got = fill_holes(logits, 8)
    assert torch.equal(got, expected)
    assert (got[..., 3:5, 3:5] == 0.1).all() and (got[..., 10:13, 10:13] == -1).all() and got[..., 21, 21] == 0.1


# ---------------------------------------------------------------- loading and bad input


def test_video_weights_are_loaded_and_checked(models):
    _, ours, path = models
    state, _ = read_checkpoint(path)
    torch.testing.assert_close(ours.memory_attention.layers[3].cross_attn_image.k_proj.weight,
                               state["memory_attention.layers.3.cross_attn_image.k_proj.weight"])
    assert torch.equal(ours.maskmem_tpos_enc, state["maskmem_tpos_enc"]) and ours.has_video_weights
    key = "memory_encoder.fuser.layers.1.gamma"
    with pytest.raises(CheckpointError, match=f"key '{key}' is missing"):
        load_sam2({k: v for k, v in state.items() if k != key}, "t.pt")
    with pytest.raises(CheckpointError, match=r"'obj_ptr_tpos_proj.weight' has shape \(64, 128\), expected \(64, 256\)"):
        load_sam2({**state, "obj_ptr_tpos_proj.weight": torch.zeros(64, 128)}, "t.pt")
    image_only = load_sam2({k: v for k, v in state.items() if not k.startswith(VIDEO_PREFIXES)})
    assert not image_only.has_video_weights
    with pytest.raises(UnsupportedModelError, match="without SAM 2.1's video weights"):
        Sam2Tracker(image_only, [], (8, 8))


def test_bad_prompts_are_refused(models, stack):
    _, ours, _ = models
    _, labels, frames, _ = stack
    tracker = Sam2Tracker(ours, frames)
    with pytest.raises(NotReadyError, match="no prompt given yet"):
        next(tracker.propagate())
    with pytest.raises(InvalidPromptError, match=r"frame 5 is not a frame index of this stack \(0 .. 4\)"):
        tracker.add_prompt(5, points=[(3, 3)], labels=[1])
    with pytest.raises(InvalidPromptError, match="outside the image"):
        tracker.add_prompt(0, points=[(61, 3)], labels=[1])
    with pytest.raises(InvalidPromptError, match="a box comes before any point"):
        tracker.add_prompt(0, box=(1, 1, 9, 9), keep_points=True)
    with pytest.raises(InvalidPromptError, match="does not match the frames' shape"):
        tracker.add_mask(0, np.zeros((8, 8), bool))
    assert tracker.prompted_frames == [] and labels.shape[1:] == (61, 57)
