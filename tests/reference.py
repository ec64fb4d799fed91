"""Import the reference implementations (tests only) and make random-weight checkpoints.

Meta's ``segment_anything`` imports torchvision for four functions; torchvision
has no CPU wheel on our machines, so a stand-in module with the same behaviour
for the calls the predictor makes is put into ``sys.modules`` first. samkit
itself never imports torchvision.
"""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image


def _resize(image: Image.Image, size):
    # torchvision's resize on a PIL image with an (h, w) size: PIL bilinear (antialiased)
    h, w = size
    return image.resize((w, h), Image.BILINEAR)


def _to_pil_image(array):
    return Image.fromarray(np.asarray(array))


def _box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _batched_nms(boxes, scores, idxs, iou_threshold):  # used by automatic mask generation only
    raise NotImplementedError("batched_nms stand-in is not implemented (not needed by the predictor)")


def install_torchvision_standin() -> None:
    if "torchvision" in sys.modules:
        return
    tv = types.ModuleType("torchvision")
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    functional.resize = _resize
    functional.to_pil_image = _to_pil_image
    ops = types.ModuleType("torchvision.ops")
    boxes = types.ModuleType("torchvision.ops.boxes")
    boxes.batched_nms = ops.batched_nms = _batched_nms
    boxes.box_area = ops.box_area = _box_area
    tv.transforms, transforms.functional, tv.ops, ops.boxes = transforms, functional, ops, boxes
    sys.modules.update(
        {
            "torchvision": tv,
            "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional,
            "torchvision.ops": ops,
            "torchvision.ops.boxes": boxes,
        }
    )


def import_segment_anything():
    """Meta's reference package, or skip the test when it is not installed."""
    install_torchvision_standin()
    return pytest.importorskip("segment_anything", reason="the reference `segment-anything` is a test extra")


def randomize_(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Give every parameter random non-trivial values (zeros and ones of the
    default init, like positional tables and norms, get noise too)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "rel_pos" in name or "pos_embed" in name:
                p.copy_(0.5 * noise)
            elif p.dim() == 1:  # biases and norm scales
                p.add_(0.1 * noise)
            else:
                p.add_(0.01 * noise)
    return model.eval()


def rel_error(ours, ref) -> float:
    """max |ours - ref| / max |ref| (the figure the parity tests bound)."""
    ours, ref = torch.as_tensor(ours).double(), torch.as_tensor(ref).double()
    return float((ours - ref).abs().max() / ref.abs().max().clamp_min(1e-12))
