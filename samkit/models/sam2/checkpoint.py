"""Recognising SAM 2.1 checkpoints and putting their weights into a :class:`Sam2`.

Official files hold ``{"model": state_dict}`` (unwrapped by
:func:`samkit.models.checkpoint.read_checkpoint`). The size is read from the
keys: the trunk's width and its number of blocks. Every key of the model
must be in the file with its shape, and the file may hold no other key;
the one exception is a file with none of the video parts' keys (memory
encoder and attention, object pointers, ...): it loads as an image model
whose ``has_video_weights`` is False, which tracking refuses.

Non-finite weights (NaN/inf) are refused, as for SAM
(:func:`samkit.models.checkpoint.check_finite`).
"""

from __future__ import annotations

import re

import torch

from ...errors import CheckpointError, UnknownModelError
from ..checkpoint import check_finite
from .model import SAM2_MODEL_TYPES, Sam2, build_sam2

_TRUNK_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCK = re.compile(r"image_encoder\.trunk\.blocks\.(\d+)\.")
# (trunk width, number of blocks) -> model type
_SIZES = {
    (96, 12): "sam2.1_hiera_tiny",
    (96, 16): "sam2.1_hiera_small",
    (112, 24): "sam2.1_hiera_base_plus",
    (144, 48): "sam2.1_hiera_large",
}
#: Keys of SAM 2's video parts: in official files, used for tracking only.
VIDEO_PREFIXES = (
    "memory_attention.",
    "memory_encoder.",
    "mask_downsample.",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
    "maskmem_tpos_enc",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
)


def is_sam2(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` has SAM 2's Hiera trunk."""
    return _TRUNK_KEY in state


def detect_sam2_type(state: dict[str, torch.Tensor], name: str = "checkpoint") -> str:
    """The SAM 2.1 model type whose layout ``state`` has, from the trunk's width and depth."""
    width = state[_TRUNK_KEY].shape[0]
    depth = 1 + max((int(m.group(1)) for k in state if (m := _BLOCK.match(k))), default=-1)
    if (width, depth) not in _SIZES:
        known = ", ".join(f"{t} (width {w}, {d} blocks)" for (w, d), t in _SIZES.items())
        raise CheckpointError(f"{name}: a Hiera trunk of width {width} with {depth} blocks is no SAM 2.1 size; known: {known}")
    return _SIZES[(width, depth)]


def load_sam2(state: dict[str, torch.Tensor], name: str = "checkpoint", model_type: str | None = None) -> Sam2:
    """A :class:`Sam2` of the detected (or given) type with the weights of ``state``."""
    detected = detect_sam2_type(state, name)
    if model_type is None:
        model_type = detected
    elif model_type not in SAM2_MODEL_TYPES:
        raise UnknownModelError(f"model_type={model_type!r} is unknown for a SAM 2 checkpoint; expected one of {SAM2_MODEL_TYPES}")
    model = build_sam2(model_type)
    expected = model.state_dict()
    has_video = any(k.startswith(VIDEO_PREFIXES) for k in state)
    if not has_video:  # an image-only file: the video parts keep their random values and are marked unusable
        expected = {k: t for k, t in expected.items() if not k.startswith(VIDEO_PREFIXES)}
    problem = next((f"key {k!r} is missing" for k in expected if k not in state), None)
    problem = problem or next(
        (f"key {k!r} has shape {tuple(state[k].shape)}, expected {tuple(t.shape)}"
         for k, t in expected.items() if state[k].shape != t.shape),
        None,
    )
    problem = problem or next((f"key {k!r} is not part of the model" for k in state if k not in expected), None)
    if problem:
        raise CheckpointError(
            f"{name} does not match a SAM 2.1 {model_type!r} model: {problem}. "
            f"Known SAM 2.1 types: {SAM2_MODEL_TYPES}."
        )
    check_finite(state, expected, name)
    model.load_state_dict(state, strict=has_video)
    model.has_video_weights = has_video
    return model
