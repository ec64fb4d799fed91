"""The SAM model: an image encoder, the prompt encoder and the mask decoder.

``build_sam(model_type)`` makes one with random weights; the builders differ
only in their numbers. Tensor-level methods work in SAM's frame: images padded
to 1024 x 1024, coordinates (x, y) in pixels of that frame. The numpy,
(y, x) API on top is :class:`samkit.Predictor`.
"""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..device import PRECISIONS
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder


def _tinyvit():
    from .tinyvit import TinyViT

    return TinyViT()


IMAGE_ENCODERS = {
    "vit_b": partial(ImageEncoderViT, dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    "vit_l": partial(ImageEncoderViT, dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    "vit_h": partial(ImageEncoderViT, dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    "vit_t": _tinyvit,  # MobileSAM
}
MODEL_TYPES = tuple(IMAGE_ENCODERS)


class Sam(nn.Module):
    """SAM with its metadata: ``model_type``, ``precision``, ``checkpoint``.

    Use :func:`samkit.load_model` to get one with real weights.
    """

    image_size = 1024  # side of the square model input
    mask_threshold = 0.0  # logits above this are inside the mask

    def __init__(self, model_type: str) -> None:
        super().__init__()
        if model_type not in IMAGE_ENCODERS:
            raise ValueError(f"model_type={model_type!r} is unknown; expected one of {MODEL_TYPES}")
        self.model_type = model_type
        self.precision = "fp32"
        self.checkpoint: Path | None = None
        self.image_encoder = IMAGE_ENCODERS[model_type]()
        self.prompt_encoder = PromptEncoder()
        self.mask_decoder = MaskDecoder()
        self.register_buffer("pixel_mean", torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1), persistent=False)

    def __repr__(self) -> str:
        source = self.checkpoint.name if self.checkpoint else "random weights"
        return f"Sam({self.model_type!r}, device={self.device.type!r}, precision={self.precision!r}, {source})"

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 255], h, w <= 1024 -> normalised, zero-padded (B, 3, 1024, 1024)."""
        x = (images - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        return F.pad(x, (0, self.image_size - w, 0, self.image_size - h))

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings (B, 256, 64, 64), float32, of (B, 3, h, w) RGB images in [0, 255]."""
        images = images.to(self.device, torch.float32)
        with self._autocast():
            return self.image_encoder(self.preprocess(images)).float()

    @torch.inference_mode()
    def decode(
        self,
        embeddings: torch.Tensor,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts into low-res mask logits (B, M, 256, 256) and IoU scores (B, M).

        Parameters
        ----------
        embeddings : (1 or B, 256, 64, 64) tensor
            From :meth:`embed`; one embedding is shared by all B prompts.
        points : (B, N, 2) tensor, optional
            Point coordinates (x, y) in pixels of the 1024 model input.
        labels : (B, N) tensor, optional
            1 foreground, 0 background, -1 padding.
        boxes : (B, 4) tensor, optional
            (x0, y0, x1, y1) in pixels of the model input.
        mask_input : (B, 1, 256, 256) tensor, optional
            Low-res logits of an earlier prediction, to refine.
        multimask : bool
            Three candidate masks (M = 3) or one (M = 1).
        """
        dev = self.device
        prompt_points = None if points is None else (points.to(dev, torch.float32), labels.to(dev))
        boxes = None if boxes is None else boxes.to(dev, torch.float32)
        mask_input = None if mask_input is None else mask_input.to(dev, torch.float32)
        with self._autocast():
            sparse, dense = self.prompt_encoder(prompt_points, boxes, mask_input)
            logits, iou = self.mask_decoder(
                embeddings.to(dev), self.prompt_encoder.dense_pe(), sparse, dense, multimask
            )
        return logits.float(), iou.float()

    def upscale_logits(self, logits: torch.Tensor, input_size: tuple[int, int], output_size: tuple[int, int]) -> torch.Tensor:
        """Low-res logits (B, M, 256, 256) -> (B, M, *output_size).

        ``input_size`` is the (h, w) of the image inside the padded model input.
        """
        x = F.interpolate(logits, (self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x[..., : input_size[0], : input_size[1]]
        return F.interpolate(x, output_size, mode="bilinear", align_corners=False)


def build_sam(model_type: str) -> Sam:
    """A SAM model of ``model_type`` ('vit_b', 'vit_l', 'vit_h', 'vit_t') with random weights, in eval mode."""
    return Sam(model_type).eval()
