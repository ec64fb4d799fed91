"""Import Meta's reference ``sam2`` (tests only) and make random-weight SAM 2.1 checkpoints.

``sam2`` imports ``Normalize``, ``Resize`` and ``ToTensor`` from torchvision,
which has no CPU wheel on our machines: stand-ins with the same behaviour for
what ``SAM2Transforms`` does with them (a float tensor resized bilinearly with
antialiasing, as torchvision does for tensors, then normalised) are added to
the torchvision stand-in of :mod:`reference` before importing it. samkit
itself never imports torchvision or sam2.
"""

from __future__ import annotations

import sys
from typing import List

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from reference import install_torchvision_standin, randomize_

CONFIGS = {
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


class Resize(nn.Module):
    """torchvision's Resize((h, w)) on a (C, H, W) float tensor: bilinear, antialiased."""

    def __init__(self, size: List[int]) -> None:
        super().__init__()
        self.size = [int(s) for s in size]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x[None], size=self.size, mode="bilinear", align_corners=False, antialias=True)[0]


class Normalize(nn.Module):
    def __init__(self, mean: List[float], std: List[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ToTensor:
    """(H, W, C) uint8 array -> (C, H, W) float32 in [0, 1]."""

    def __call__(self, image) -> torch.Tensor:
        return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255)


def import_sam2():
    """The reference ``sam2`` package (its ``build_sam`` and ``sam2_image_predictor``), or skip."""
    install_torchvision_standin()
    transforms = sys.modules["torchvision.transforms"]
    for stand_in in (Resize, Normalize, ToTensor):
        if not hasattr(transforms, stand_in.__name__):
            setattr(transforms, stand_in.__name__, stand_in)
    pytest.importorskip("hydra", reason="the reference `sam2` needs hydra-core (a test extra)")
    sam2 = pytest.importorskip("sam2", reason="the reference `sam2` is a test extra")
    import sam2.build_sam
    import sam2.sam2_image_predictor

    return sam2


def build_reference(model_type: str, seed: int) -> nn.Module:
    """The reference SAM 2.1 model of ``model_type`` on the CPU, every weight and learned table random.

    On top of :func:`reference.randomize_` (noise on every parameter, strong on
    positional tables, biases and norms), the tables a default init leaves
    small or constant get fresh values: ``no_mem_embed`` and the other
    memory tables, and the decoder's output tokens.
    """
    sam2 = import_sam2()
    torch.manual_seed(seed)
    model = sam2.build_sam.build_sam2(CONFIGS[model_type], ckpt_path=None, device="cpu")
    randomize_(model, seed + 1)
    gen = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in ("no_mem_embed", "no_mem_pos_enc", "no_obj_ptr", "no_obj_embed_spatial", "maskmem_tpos_enc"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif name.startswith("sam_mask_decoder.") and name.endswith(("token.weight", "tokens.weight")):
                p.copy_(torch.randn(p.shape, generator=gen))
    return model.eval()


def save_official_layout(model: nn.Module, path) -> None:
    """Save as Meta's SAM 2.1 files are: ``{"model": state_dict}``."""
    torch.save({"model": model.state_dict()}, path)


# ---------------------------------------------------------------- the video predictor


def build_video_reference(path, monkeypatch) -> nn.Module:
    """The reference ``SAM2VideoPredictor`` (Hiera-T) with the weights of the official-layout file ``path``.

    As ``build_sam2_video_predictor`` makes it (its post-processing on), with
    ``add_all_frames_to_correct_as_cond=True`` (see
    :mod:`samkit.models.sam2.tracker`). Stand-ins (through ``monkeypatch``):

    - ``load_video_frames`` takes an (T, H, W, 3) uint8 array instead of a
      folder of JPEG files (lossy) and stretches each frame to 1024 x 1024 as
      the image predictor does (bilinear, antialiased) instead of PIL's
      bicubic, so that both sides embed the same pixels;
    - the CUDA kernel behind ``fill_holes_in_mask_scores``
      (``get_connected_components``: 8-connected components and their areas)
      is computed with scipy, so holes are filled as on a GPU;
    - ``forward_image`` keeps every frame's features (the predictor keeps
      only the last frame's and would embed each frame again on every pass),
      for every inference state made of the same array.
    """
    sam2 = import_sam2()
    import sam2.sam2_video_predictor as video
    import sam2.utils.misc as misc
    from sam2.build_sam import build_sam2_video_predictor

    loaded = {}  # id of a frame array -> (the array, its frames): states of one stack share their features

    def load_frames(video_path, *args, **kwargs):
        if id(video_path) not in loaded:
            loaded[id(video_path)] = (video_path, _load_frames(video_path, *args, **kwargs))
        return loaded[id(video_path)][1]

    monkeypatch.setattr(video, "load_video_frames", load_frames)
    monkeypatch.setattr(misc, "get_connected_components", _connected_components)
    model = build_sam2_video_predictor(
        CONFIGS["sam2.1_hiera_tiny"],
        ckpt_path=str(path),
        device="cpu",
        hydra_overrides_extra=["++model.add_all_frames_to_correct_as_cond=true"],
    )
    features, forward_image = {}, model.forward_image

    def remembered(image):  # one key per frame of the loaded stack (a view into it)
        if image.data_ptr() not in features:
            features[image.data_ptr()] = forward_image(image)
        return features[image.data_ptr()]

    model.forward_image = remembered
    return model


def _load_frames(video_path, image_size, offload_video_to_cpu, img_mean=(0.485, 0.456, 0.406), img_std=(0.229, 0.224, 0.225), **_):
    frames = torch.from_numpy(np.asarray(video_path)).permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)
    height, width = frames.shape[-2:]
    images = torch.cat([Resize([image_size, image_size])(f)[None] for f in frames])
    mean, std = torch.tensor(img_mean)[:, None, None], torch.tensor(img_std)[:, None, None]
    return (images - mean) / std, height, width


def _connected_components(mask: torch.Tensor):
    """(N, 1, H, W) binary -> per-pixel component labels and component areas (0 on background), 8-connected."""
    from scipy import ndimage

    labels, areas = torch.zeros(mask.shape, dtype=torch.int32), torch.zeros(mask.shape, dtype=torch.int32)
    for i, m in enumerate(mask[:, 0].bool().cpu().numpy()):
        lab, _ = ndimage.label(m, structure=np.ones((3, 3), dtype=bool))
        counts = np.bincount(lab.ravel())
        counts[0] = 0
        labels[i, 0], areas[i, 0] = torch.from_numpy(lab.astype(np.int32)), torch.from_numpy(counts[lab].astype(np.int32))
    return labels, areas
