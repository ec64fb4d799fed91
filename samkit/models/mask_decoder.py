"""SAM's mask decoder: image embedding + prompt tokens -> mask logits + IoU scores.

A decode is split in two: :meth:`MaskDecoder.prepare` does the work that
depends only on the image (once per image), ``forward`` the rest (per prompt).
Parameter names follow Meta's official checkpoints (``mask_decoder.*``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import ImageContext, TwoWayTransformer


class MaskDecoder(nn.Module):
    def __init__(self, dim: int = 256, num_multimask: int = 3, transformer: TwoWayTransformer | None = None) -> None:
        super().__init__()
        self.num_mask_tokens = num_multimask + 1  # token 0 is the single-mask output
        self.transformer = TwoWayTransformer(dim) if transformer is None else transformer
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(self.num_mask_tokens))
        self.iou_prediction_head = MLP(dim, 256, self.num_mask_tokens, 3)

    def prepare(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        dense: torch.Tensor,
        dtype: torch.dtype = torch.float32,
    ) -> ImageContext:
        """The prompt-independent part of a decode.

        ``image_embeddings`` (1 or B, C, H, W) and ``dense`` (1 or B, C, H, W)
        from the prompt encoder are added; ``image_pe`` is (1, C, H, W). With
        the no-mask ``dense`` of a point or box prompt, the result serves every
        prompt on this image. Products with the 64 x 64 image tokens (and the
        upscaling) run in ``dtype``, the rest in the weights' precision.
        """
        return self.transformer.prepare(image_embeddings + dense, image_pe, dtype)

    def with_dense(self, context: ImageContext, image_embeddings: torch.Tensor, dense: torch.Tensor) -> ImageContext:
        """``context`` with another dense prompt (1 or B, C, H, W), e.g. a mask, on the same embeddings."""
        return self.transformer.with_image(context, image_embeddings + dense)

    def forward(
        self, context: ImageContext, sparse: torch.Tensor, multimask: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return low-res logits (B, M, 4H, 4W) = (B, M, 256, 256) and IoU predictions (B, M).

        ``context`` is from :meth:`prepare`, ``sparse`` (B, N, C) from the
        prompt encoder. M is 3 with ``multimask`` else 1.
        """
        B = sparse.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight])  # (1 + 4, C)
        tokens = torch.cat([output_tokens.expand(B, -1, -1), sparse], dim=1)  # (B, 1 + 4 + N, C)

        tokens, image = self.transformer(context, tokens)  # (B, 5 + N, C), (B, HW, C)
        keep = range(1, self.num_mask_tokens) if multimask else range(1)
        hyper = torch.stack([self.output_hypernetworks_mlps[i](tokens[:, 1 + i]) for i in keep], dim=1)  # (B, M, C/8)
        iou = self.iou_prediction_head(tokens[:, 0])[:, keep.start : keep.stop]  # (B, M)
        return self.mask_logits(image, hyper), iou

    def mask_logits(
        self,
        image: torch.Tensor,
        hyper: torch.Tensor,
        rows: int = 32,
        high_res: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Image tokens (B, HW, C) and hypernetwork outputs (B, M, C/8) -> logits (B, M, 4H, 4W).

        ``high_res`` (SAM 2) is two feature maps added after each upscaling step
        (before the norm, resp. the activation), laid out as the pixels here:
        (1 or B, 2H, 2W, C/4) and (1 or B, 2H, 2W, 2, 2, C/8), see
        :func:`samkit.models.sam2.mask_decoder.arrange_high_res`.

        The transposed convolutions (kernel 2, stride 2) don't overlap, so each
        is one matmul per pixel with its 2 x 2 output pixels in the channel
        axis. Pixels are put in place in two cheap moves: after the first
        (C/4 channels contiguous) and at the end (on M channels, not C/8).
        Slabs of ``rows`` token rows at a time keep the wide intermediates in
        the processor's cache.
        """
        conv1, norm, act1, conv2, act2 = self.output_upscaling
        B, HW, _ = image.shape
        H = W = math.isqrt(HW)
        dtype = image.dtype
        w1, b1 = _as_linear(conv1.weight).to(dtype), conv1.bias.repeat(4).to(dtype)  # (2 * 2 * C/4, C)
        w2, b2 = _as_linear(conv2.weight).to(dtype), conv2.bias.repeat(4).to(dtype)  # (2 * 2 * C/8, C/4)
        hyper = hyper.to(dtype)
        masks = image.new_empty(B, hyper.shape[1], 4 * H, 4 * W)
        for top in range(0, H, rows):
            R = min(rows, H - top)
            x = F.linear(image[:, top * W : (top + R) * W], w1, b1)  # (B, RW, 2 * 2 * C/4)
            x = x.view(B, R, W, 2, 2, -1).transpose(2, 3).reshape(B, R * W * 4, -1)  # (B, 2R * 2W, C/4)
            if high_res is not None:
                x = x + high_res[0][:, 2 * top : 2 * (top + R)].reshape(-1, R * W * 4, x.shape[-1])
            x = act1(F.layer_norm(x, x.shape[-1:], norm.weight.to(dtype), norm.bias.to(dtype), norm.eps))
            x = F.linear(x, w2, b2).view(B, R * W * 16, -1)  # (B, 2R * 2W * 2 * 2, C/8)
            if high_res is not None:
                x = x + high_res[1][:, 2 * top : 2 * (top + R)].reshape(-1, R * W * 16, x.shape[-1])
            x = act2(x)
            slab = torch.bmm(hyper, x.mT).view(B, -1, 2 * R, 2 * W, 2, 2)  # (B, M, 2R, 2W, 2, 2)
            masks[:, :, 4 * top : 4 * (top + R)] = slab.transpose(3, 4).reshape(B, -1, 4 * R, 4 * W)
        return masks  # (B, M, 4H, 4W)


def _as_linear(weight: torch.Tensor) -> torch.Tensor:
    """A 2 x 2 transposed-convolution weight (C_in, C_out, 2, 2) as a linear weight (2 * 2 * C_out, C_in)."""
    return weight.permute(2, 3, 1, 0).reshape(-1, weight.shape[0])
