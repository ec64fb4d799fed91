"""The SAM model: an image encoder, the prompt encoder and the mask decoder.

``build_sam(model_type)`` makes one with random weights; the builders differ
only in their numbers. Tensor-level methods work in SAM's frame: images padded
to 1024 x 1024, coordinates (x, y) in pixels of that frame. The numpy,
(y, x) API on top is :class:`samkit.Predictor`.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..device import PRECISIONS
from ..errors import UnknownModelError
from .image_encoder import ImageEncoderViT
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .transformer import ImageContext


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


class DecoderContext(NamedTuple):
    """An image ready for many decodes: from :meth:`Sam.prepare_decoder`.

    embeddings : (1 or B, 256, 64, 64) float32 image embeddings
    image : the mask decoder's prompt-independent work on them (for prompts
        without a mask), in the model's precision at the time
    """

    embeddings: torch.Tensor
    image: ImageContext


class SamFamily(nn.Module):
    """What SAM and SAM 2.1 models share: their metadata (``model_type``, ``precision``,
    ``checkpoint``), their device and the autocast of their precision."""

    image_size = 1024  # side of the square model input
    mask_threshold = 0.0  # logits above this are inside the mask

    def __init__(self, model_type: str) -> None:
        super().__init__()
        self.model_type = model_type
        self.precision = "fp32"
        self.checkpoint: Path | None = None

    def __repr__(self) -> str:
        source = self.checkpoint.name if self.checkpoint else "random weights"
        kind = type(self).__name__
        return f"{kind}({self.model_type!r}, device={self.device.type!r}, precision={self.precision!r}, {source})"

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])


class Sam(SamFamily):
    """SAM with its metadata: ``model_type``, ``precision``, ``checkpoint``.

    Use :func:`samkit.load_model` to get one with real weights.
    """

    stretches_input = False  # images keep their aspect ratio: long side 1024, zero-padded
    low_res_logit_limit = None  # low-res logits are handed out as they are

    def __init__(self, model_type: str) -> None:
        if model_type not in IMAGE_ENCODERS:
            raise UnknownModelError(f"model_type={model_type!r} is unknown; expected one of {MODEL_TYPES}")
        super().__init__(model_type)
        self.image_encoder = IMAGE_ENCODERS[model_type]()
        self.prompt_encoder = PromptEncoder()
        self.mask_decoder = MaskDecoder()
        self.register_buffer("pixel_mean", torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1), persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 255], h, w <= 1024 -> normalised, zero-padded (B, 3, 1024, 1024)."""
        x = (images - self.pixel_mean) / self.pixel_std
        h, w = x.shape[-2:]
        return F.pad(x, (0, self.image_size - w, 0, self.image_size - h))

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings (B, 256, 64, 64), float32, of (B, 3, h, w) RGB images in [0, 255] (uint8 or float)."""
        if self.device.type == "cuda" and images.device.type == "cpu":  # page-locked: faster, asynchronous copy
            images = images.pin_memory().to(self.device, non_blocking=True)
        images = images.to(self.device, torch.float32)
        with self._autocast():
            return self.image_encoder(self.preprocess(images)).float()

    @torch.inference_mode()
    def prepare_decoder(self, embeddings: torch.Tensor) -> DecoderContext:
        """Do the prompt-independent part of decoding, once per image.

        Pass the result to :meth:`decode` instead of ``embeddings``: every
        prompt on this image then skips that work. With ``precision`` bf16,
        the products with the 64 x 64 image tokens and the upscaling run in
        bf16 (the prompt tokens stay in float32). Prepare again after changing
        the weights or the precision.

        Parameters
        ----------
        embeddings : (1 or B, 256, 64, 64) tensor
            From :meth:`embed`.
        """
        embeddings = embeddings.to(self.device, torch.float32)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)  # (1, C, 1, 1)
        dtype = PRECISIONS[self.precision]
        image = self.mask_decoder.prepare(embeddings, self.prompt_encoder.dense_pe(), no_mask, dtype)
        return DecoderContext(embeddings, image)

    @torch.inference_mode()
    def decode(
        self,
        embeddings: torch.Tensor | DecoderContext,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts into low-res mask logits (B, M, 256, 256) and IoU scores (B, M).

        Parameters
        ----------
        embeddings : (1 or B, 256, 64, 64) tensor or DecoderContext
            From :meth:`embed`, or (faster, for several prompts on one image)
            its :meth:`prepare_decoder`. One embedding serves all B prompts.
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

        Returns
        -------
        logits : (B, M, 256, 256) float32 tensor
        scores : (B, M) float32 tensor
        """
        context = embeddings if isinstance(embeddings, DecoderContext) else self.prepare_decoder(embeddings)
        image, dev = context.image, self.device
        prompt_points = None if points is None else (points.to(dev, torch.float32), labels.to(dev))
        boxes = None if boxes is None else boxes.to(dev, torch.float32)
        mask_input = None if mask_input is None else mask_input.to(dev, torch.float32)
        sparse, dense = self.prompt_encoder(prompt_points, boxes, mask_input)
        if mask_input is not None:  # the mask prompt changes the image side
            image = self.mask_decoder.with_dense(image, context.embeddings, dense)
        logits, iou = self.mask_decoder(image, sparse, multimask)
        return logits.float(), iou.float()

    def upscale_logits(self, logits: torch.Tensor, input_size: tuple[int, int], output_size: tuple[int, int]) -> torch.Tensor:
        """Low-res logits (B, M, 256, 256) -> (B, M, *output_size).

        ``input_size`` is the (h, w) of the image inside the padded model input.
        """
        x = F.interpolate(logits, (self.image_size, self.image_size), mode="bilinear", align_corners=False)
        x = x[..., : input_size[0], : input_size[1]]
        return F.interpolate(x, output_size, mode="bilinear", align_corners=False)

    def upscale_mask(
        self, logits: torch.Tensor, input_size: tuple[int, int], output_size: tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """One mask at full resolution, computed only where it can be inside.

        Equals ``upscale_logits(...) > mask_threshold`` except for pixels
        whose logit is within float rounding of the threshold. Each output
        pixel is a weighted mean (weights >= 0) of at most 3 x 3 low-res
        logits, so it can be inside only near a low-res logit above the
        threshold: only the bounding box of those pixels is computed, one
        axis at a time.

        Parameters
        ----------
        logits : (256, 256) tensor
            Low-res logits of one mask, from :meth:`decode`.
        input_size : (h, w)
            Size of the image inside the padded model input.
        output_size : (H, W)
            Size of the original image.

        Returns
        -------
        crop : (h', w') bool tensor
            The mask inside the bounding box of the pixels that can be inside
            (0 x 0 when none can).
        offset : (y0, x0)
            Where ``crop`` starts in the (H, W) image.
        """
        return upscale_mask(logits, self.mask_threshold, self.image_size, input_size, output_size)


def upscale_mask(
    logits: torch.Tensor, threshold: float, mid: int, input_size: tuple[int, int], output_size: tuple[int, int]
) -> tuple[torch.Tensor, tuple[int, int]]:
    """:meth:`Sam.upscale_mask` for logits resized to ``mid`` x ``mid``, cropped to
    ``input_size``, then resized to ``output_size`` (SAM 2: ``mid`` = ``input_size`` = 256,
    a single resize)."""
    logits = logits.float()
    inside = logits > threshold
    rows, cols = inside.any(1).nonzero()[:, 0], inside.any(0).nonzero()[:, 0]
    if len(rows) == 0:
        return torch.zeros(0, 0, dtype=torch.bool, device=logits.device), (0, 0)
    low = logits.shape[-1]
    wy, y, ky = _crop_weights(low, mid, input_size[0], output_size[0], int(rows[0]), int(rows[-1]))
    wx, x, kx = _crop_weights(low, mid, input_size[1], output_size[1], int(cols[0]), int(cols[-1]))
    if len(wy) == 0 or len(wx) == 0:  # only in the padding
        return torch.zeros(0, 0, dtype=torch.bool, device=logits.device), (0, 0)
    rows = wy.to(logits.device) @ logits[ky]  # (h', 256): the crop's rows, at low resolution along x
    if len(wx) > output_size[1] // 4:  # wide: resizing whole rows beats a matrix product
        rows = F.interpolate(rows[None], (mid,), mode="linear", align_corners=False)
        full = F.interpolate(rows[..., : input_size[1]], (output_size[1],), mode="linear", align_corners=False)
        full = full[0, :, x]  # (h', w')
    else:
        full = rows[:, kx] @ wx.to(logits.device).T  # (h', w')
    return full > threshold, (y.start, x.start)


@lru_cache(maxsize=16)
def _resize_weights(low: int, mid: int, valid: int, out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The two bilinear resizes of :meth:`Sam.upscale_logits` along one axis, as one (out, low) matrix.

    ``low`` -> ``mid`` (the padded model input), crop to ``valid``, -> ``out``,
    like ``F.interpolate(..., align_corners=False)``. Also returns, per output
    pixel, the first and last low-res index it depends on (both nondecreasing).
    """
    weights = _bilinear(valid, out) @ _bilinear(low, mid)[:valid]
    support = (weights > 0).int()
    first, last = support.argmax(1), low - 1 - support.flip(1).argmax(1)
    return weights.float(), first, last


def _bilinear(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) weights of a 1-D bilinear resize, half-pixel centres, edges clamped."""
    src = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    frac = src - i0
    weights = torch.zeros(n_out, n_in, dtype=torch.float64)
    weights[torch.arange(n_out), i0] += 1 - frac
    weights[torch.arange(n_out), i1] += frac
    return weights


def _crop_weights(low: int, mid: int, valid: int, out: int, first: int, last: int) -> tuple[torch.Tensor, slice, slice]:
    """Along one axis: the output pixels that low-res indices ``first..last`` reach, and their weights.

    Returns (weights (n, k), output slice of length n, low-res slice of length k).
    """
    weights, lo, hi = _resize_weights(low, mid, valid, out)
    start = int(torch.searchsorted(hi, torch.tensor(first)))
    stop = int(torch.searchsorted(lo, torch.tensor(last), right=True))
    if start >= stop:
        return weights[:0, :0], slice(0, 0), slice(0, 0)
    k = slice(int(lo[start]), int(hi[stop - 1]) + 1)
    return weights[start:stop, k], slice(start, stop), k


def build_sam(model_type: str) -> Sam:
    """A SAM model of ``model_type`` ('vit_b', 'vit_l', 'vit_h', 'vit_t') with random weights, in eval mode."""
    return Sam(model_type).eval()
