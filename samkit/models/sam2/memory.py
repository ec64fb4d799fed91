"""SAM 2.1's memory, one frame at a time: which memories a frame sees, how they condition it,
how it is decoded, and the memory it leaves for the next frames.

A frame is either *prompted* (points, a box or a mask were given on it: a
"conditioning" frame) or *tracked* (decoded from memory alone). What a frame
keeps is a :class:`FrameOutput`: its low-res mask logits, object score, object
pointer and spatial memory. The rules are SAM 2.1's, as its configs set them
(``sam2.1_hiera_*.yaml`` with the video predictor's post-processing):

- a frame decoded without any memory (its first prompt) uses its image
  embedding plus ``no_mem_embed``, as images do;
- any other frame is conditioned by memory attention on (see
  :func:`select_memory`): the memories of every prompted frame (temporal row
  6 of ``maskmem_tpos_enc``) and of the tracked frames 1 to 6 steps back in
  the direction of tracking (rows 5 .. 0, farthest first); plus the object
  pointers of the prompted frames up to this one (signed distance) and of
  the tracked frames 1 to 15 steps back (at most ``min(frames, 16) - 1``);
- one click (or none, when tracking) decodes three candidates and keeps the
  best by predicted IoU, a box or several points one mask (an unstable one
  replaced by the best candidate); the object pointer is the projected
  output token (:attr:`Decoded.pointer_token`);
- where the object score is <= 0 the object is absent: logits become
  :data:`NO_OBJECT_LOGIT`, the pointer ``no_obj_ptr``, and the memory gets
  ``no_obj_embed_spatial`` added;
- the mask enters the memory encoder as ``20 * p - 10``, p its sigmoid
  (tracked frames) or its 0/1 binarisation (prompted frames); memories are
  kept in bfloat16, as the official predictor keeps them.

Only ``memory_temporal_stride_for_eval = 1`` and no limit on the number of
prompted frames (``max_cond_frames_in_attn = -1``) are implemented: what
every SAM 2.1 config uses.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F

from .model import NUM_MEMORIES, Sam2, Sam2Embedding
from .position_encoding import sine_1d, sine_grid

NO_OBJECT_LOGIT = -1024.0  # low-res logits of a frame where the object is absent
MAX_POINTERS = 16  # object pointers a frame attends to, its prompted frames' included
MEMORY_SCALE, MEMORY_BIAS = 20.0, -10.0  # a mask in [0, 1] enters the memory encoder as 20 * m - 10
MEMORY_DTYPE = torch.bfloat16  # how memories are kept


class FrameOutput(NamedTuple):
    """What one frame keeps for the frames after it.

    logits : (1, 1, 256, 256) float32 low-res mask logits (NO_OBJECT_LOGIT where the object is absent)
    object_score : (1, 1) float32 logit, > 0 where the object is present
    pointer : (1, C) float32 object pointer
    memory : (1, 64, 64, 64) bfloat16 spatial memory, or None until it is encoded
    """

    logits: torch.Tensor
    object_score: torch.Tensor
    pointer: torch.Tensor
    memory: torch.Tensor | None = None


def raw_features(model: Sam2, embedding: Sam2Embedding) -> torch.Tensor:
    """(1, C, 64, 64) image features before ``no_mem_embed`` (which :meth:`Sam2.embed` adds)."""
    return embedding.image - model.no_mem_embed.view(1, -1, 1, 1)


def select_memory(
    frame: int,
    prompted: Mapping[int, FrameOutput],
    tracked: Mapping[int, FrameOutput],
    reverse: bool,
    num_frames: int,
) -> tuple[list[tuple[int, FrameOutput]], list[tuple[int, FrameOutput]]]:
    """The memories and object pointers ``frame`` attends to, when tracking forward or in ``reverse``.

    Returns ``(row, output)`` pairs, ``row`` the row of ``maskmem_tpos_enc``,
    and ``(distance, output)`` pairs for the pointers; in the official order.
    """
    step = -1 if reverse else 1
    memories = [(NUM_MEMORIES - 1, out) for out in prompted.values()]
    for back in range(NUM_MEMORIES - 1, 0, -1):  # farthest first
        out = tracked.get(frame - step * back)
        if out is not None:
            memories.append((back - 1, out))
    pointers = [((frame - t) * step, out) for t, out in prompted.items() if (t - frame) * step <= 0]
    for back in range(1, min(num_frames, MAX_POINTERS)):
        t = frame - step * back
        if not 0 <= t < num_frames:
            break
        if t in tracked:
            pointers.append((back, tracked[t]))
    return memories, pointers


def condition(
    model: Sam2,
    features: torch.Tensor,
    memories: list[tuple[int, FrameOutput]],
    pointers: list[tuple[int, FrameOutput]],
    num_frames: int,
) -> torch.Tensor:
    """(1, C, H, W) raw image features conditioned by memory attention on ``memories`` and ``pointers``."""
    _, C, H, W = features.shape
    mem_dim = model.memory_encoder.mem_dim
    spatial_pos = model.memory_encoder.position(H, W).flatten(2).transpose(1, 2)  # (1, HW, 64)
    tokens, pos = [], []
    for row, out in memories:
        tokens.append(out.memory.float().flatten(2).transpose(1, 2))  # (1, HW, 64)
        pos.append(spatial_pos + model.maskmem_tpos_enc[row].view(1, 1, mem_dim))
    if pointers:
        distances = torch.tensor([d for d, _ in pointers], dtype=torch.float32, device=features.device)
        span = min(num_frames, MAX_POINTERS) - 1
        tpos = model.obj_ptr_tpos_proj(sine_1d(distances / span, C))  # (P, 64)
        split = C // mem_dim  # each pointer becomes C / 64 tokens of 64 channels
        tokens.append(torch.cat([out.pointer for _, out in pointers]).reshape(1, -1, mem_dim))  # (1, P * split, 64)
        pos.append(tpos.repeat_interleave(split, dim=0)[None])
    num_pointer_tokens = len(pointers) * (C // mem_dim)
    image = features.flatten(2).transpose(1, 2)  # (1, HW, C)
    image_pos = sine_grid(C, H, W, features.device).flatten(2).transpose(1, 2)
    with model._autocast():
        x = model.memory_attention(image, image_pos, torch.cat(tokens, 1), torch.cat(pos, 1), (H, W), num_pointer_tokens)
    return x.float().transpose(1, 2).reshape(1, C, H, W)


def _pointer(model: Sam2, token: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(1, C) object pointer from the decoder's output token; ``no_obj_ptr`` where ``present`` (1, 1) is 0."""
    with model._autocast():
        pointer = model.obj_ptr_proj(token).float()
    return present * pointer + (1 - present) * model.no_obj_ptr


def decode(
    model: Sam2,
    embedding: Sam2Embedding,
    points: torch.Tensor | None,
    labels: torch.Tensor | None,
    mask_input: torch.Tensor | None,
    multimask: bool,
) -> FrameOutput:
    """Decode one frame whose ``embedding.image`` is already conditioned (or has ``no_mem_embed``).

    ``points`` (1, N, 2) in SAM's (x, y) of the 1024 input, box corners
    first (labels 2, 3); None when tracking. ``mask_input`` (1, 1, 256, 256)
    logits of an earlier decode of this frame, or None. Without points the
    decoder gets one "not a point" token, as the official code gives it.
    ``multimask``: keep the best of three candidates (see :func:`multimask_for`).
    """
    if points is None:
        points = torch.zeros(1, 1, 2, device=model.device)
        labels = -torch.ones(1, 1, dtype=torch.int32, device=model.device)
    decoded = model.decode_all(embedding, points, labels, None, mask_input, multimask)
    present = (decoded.object_score > 0).float()  # (1, 1)
    logits = torch.where(present.bool()[:, :, None, None], decoded.logits, NO_OBJECT_LOGIT)
    if multimask:  # the best candidate by predicted IoU
        logits = logits[:, decoded.iou.argmax(1)]
    return FrameOutput(logits, decoded.object_score, _pointer(model, decoded.pointer_token, present))


def multimask_for(labels: torch.Tensor | None) -> bool:
    """Whether a frame prompted by (1, N) ``labels`` (None: tracked) decodes three candidates: at most one point."""
    return labels is None or labels.shape[1] <= 1


def mask_as_output(model: Sam2, embedding: Sam2Embedding, mask: torch.Tensor) -> FrameOutput:
    """A frame prompted by a (1, 1, 1024, 1024) 0/1 ``mask``: the mask is the output (logits -10 / +10),
    the object pointer comes from decoding the raw features with the mask as mask prompt."""
    high = mask * MEMORY_SCALE + MEMORY_BIAS
    logits = F.interpolate(high, size=(mask.shape[-2] // 4, mask.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True)
    raw = embedding._replace(image=raw_features(model, embedding))
    decoded = decode(model, raw, None, None, model.mask_downsample(mask), multimask=False)
    present = mask.flatten(1).gt(0).any(1, keepdim=True).float()  # (1, 1): the mask decides, not the decoder
    pointer = present * decoded.pointer + (1 - present) * model.no_obj_ptr
    return FrameOutput(logits, MEMORY_SCALE * present + MEMORY_BIAS, pointer)


def encode_memory(model: Sam2, features: torch.Tensor, logits: torch.Tensor, object_score: torch.Tensor, binarize: bool) -> torch.Tensor:
    """(1, 64, 64, 64) float32 memory of a frame from its raw ``features`` and low-res ``logits``
    (kept as :data:`MEMORY_DTYPE`).

    The logits are resized to the 1024 input first; ``binarize`` (prompted
    frames) takes the mask as the user saw it instead of its sigmoid.
    """
    size = (model.image_size, model.image_size)
    high = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)  # (1, 1, 1024, 1024)
    mask = (high > 0).float() if binarize else torch.sigmoid(high)
    with model._autocast():
        memory = model.memory_encoder(features, mask * MEMORY_SCALE + MEMORY_BIAS).float()
    absent = (object_score <= 0).float()[:, :, None, None]  # (1, 1, 1, 1)
    return memory + absent * model.no_obj_embed_spatial[:, :, None, None]
