"""SAM 2's mask decoder: SAM's, plus high-resolution features, an object score and sigmoid IoU.

What differs from :class:`samkit.models.mask_decoder.MaskDecoder` (reused for
the rest, the two-way transformer included):

- the upscaling adds the image's stride-8 and stride-4 features (already
  projected by ``conv_s1`` / ``conv_s0`` when the image was embedded);
- one more output token in front, whose MLP gives an object-score logit
  (whether the prompt hit an object at all);
- IoU predictions go through a sigmoid;
- without multimask output, the single-mask token's logits are kept only if
  they are stable (the area above +0.05 over the area above -0.05 is at least
  0.98); otherwise the best of the three multimask outputs replaces them, as
  the official image predictor does.

Parameter names follow Meta's official checkpoints (``sam_mask_decoder.*``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..common import MLP
from ..mask_decoder import MaskDecoder
from ..transformer import ImageContext, TwoWayTransformer

STABILITY_DELTA = 0.05
STABILITY_THRESHOLD = 0.98


def _sam2_mlp(dim: int, hidden: int) -> nn.Module:
    return MLP(dim, hidden, dim, 2)


def arrange_high_res(feat_s0: torch.Tensor, feat_s1: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The high-res features in the pixel order of :meth:`MaskDecoder.mask_logits`.

    feat_s1 (B, C/4, 2H, 2W) -> (B, 2H, 2W, C/4); feat_s0 (B, C/8, 4H, 4W) ->
    (B, 2H, 2W, 2, 2, C/8), a stride-8 pixel's 2 x 2 stride-4 pixels together.
    """
    s1 = feat_s1.permute(0, 2, 3, 1).to(dtype).contiguous()
    B, C, H, W = feat_s0.shape
    s0 = feat_s0.view(B, C, H // 2, 2, W // 2, 2).permute(0, 2, 4, 3, 5, 1).to(dtype).contiguous()
    return s1, s0


class Decoded(NamedTuple):
    """logits (B, M, 256, 256), iou (B, M) in [0, 1], object_score (B, 1) logits, pointer_token (B, C).

    ``pointer_token`` is the output token the video memory turns into the
    object pointer: with multimask output the best candidate's (by IoU),
    otherwise the single-mask token, even where an unstable single mask was
    replaced by the best candidate (as the official code does).
    """

    logits: torch.Tensor
    iou: torch.Tensor
    object_score: torch.Tensor
    pointer_token: torch.Tensor


class Sam2MaskDecoder(MaskDecoder):
    def __init__(self, dim: int = 256, num_multimask: int = 3) -> None:
        super().__init__(dim, num_multimask, transformer=TwoWayTransformer(dim, mlp=_sam2_mlp))
        self.obj_score_token = nn.Embedding(1, dim)
        self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.pred_obj_score_head = MLP(dim, dim, 1, 3)

    def forward(  # type: ignore[override]
        self,
        context: ImageContext,
        sparse: torch.Tensor,
        multimask: bool,
        high_res: tuple[torch.Tensor, torch.Tensor],
    ) -> Decoded:
        """``context`` from :meth:`prepare`, ``sparse`` (B, N, C) prompt tokens, ``high_res`` from
        :func:`arrange_high_res` -> :class:`Decoded` with M = 3 masks with ``multimask`` else 1."""
        B = sparse.shape[0]
        output_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight])
        tokens = torch.cat([output_tokens.expand(B, -1, -1), sparse], dim=1)  # (B, 1 + 1 + 4 + N, C)

        tokens, image = self.transformer(context, tokens)  # (B, 6 + N, C), (B, HW, C)
        object_score = self.pred_obj_score_head(tokens[:, 0])  # (B, 1)
        iou = torch.sigmoid(self.iou_prediction_head(tokens[:, 1]))  # (B, 4)
        mask_tokens = tokens[:, 2 : 2 + self.num_mask_tokens]
        best = iou[:, 1:].argmax(1) + 1  # (B,) the best of the three candidates
        if multimask:
            hyper = torch.stack([self.output_hypernetworks_mlps[i](mask_tokens[:, i]) for i in (1, 2, 3)], dim=1)
            pointer = mask_tokens[torch.arange(B), best]
            return Decoded(self.mask_logits(image, hyper, high_res=high_res), iou[:, 1:], object_score, pointer)

        # the single-mask output, and the best multimask one in case it is unstable
        multi = torch.stack([self.output_hypernetworks_mlps[i](mask_tokens[:, i]) for i in (1, 2, 3)], dim=1)
        single = self.output_hypernetworks_mlps[0](mask_tokens[:, 0])
        hyper = torch.stack([single, multi[torch.arange(B), best - 1]], dim=1)  # (B, 2, C/8)
        both = self.mask_logits(image, hyper, high_res=high_res)  # (B, 2, 4H, 4W)
        stable = stability(both[:, 0].float()) >= STABILITY_THRESHOLD  # (B,)
        logits = torch.where(stable[:, None, None], both[:, 0], both[:, 1])[:, None]
        scores = torch.where(stable, iou[:, 0], iou[torch.arange(B), best])[:, None]
        return Decoded(logits, scores, object_score, mask_tokens[:, 0])


def stability(logits: torch.Tensor, delta: float = STABILITY_DELTA) -> torch.Tensor:
    """(B, H, W) logits -> (B,) area above ``delta`` / area above ``-delta`` (1 where both are empty)."""
    inner = (logits > delta).flatten(1).sum(1).float()
    outer = (logits > -delta).flatten(1).sum(1).float()
    return torch.where(outer > 0, inner / outer.clamp_min(1), torch.ones_like(outer))
