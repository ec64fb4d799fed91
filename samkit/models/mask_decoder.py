"""SAM's mask decoder: image embedding + prompt tokens -> mask logits + IoU scores.

Parameter names follow Meta's official checkpoints (``mask_decoder.*``).
"""

from __future__ import annotations

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    def __init__(self, dim: int = 256, num_multimask: int = 3) -> None:
        super().__init__()
        self.num_mask_tokens = num_multimask + 1  # token 0 is the single-mask output
        self.transformer = TwoWayTransformer(dim)
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

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return low-res logits (B, M, 256, 256) and IoU predictions (B, M).

        ``image_embeddings`` is (1 or B, C, 64, 64); ``sparse`` (B, N, C) and
        ``dense`` (B, C, 64, 64) come from the prompt encoder. M is 3 with
        ``multimask`` else 1.
        """
        B = sparse.shape[0]
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight])  # (1 + M, C)
        tokens = torch.cat([output_tokens.expand(B, -1, -1), sparse], dim=1)  # (B, 1 + M + N, C)
        image = image_embeddings + dense  # broadcast one image over B prompts
        image_pe = image_pe.expand(B, -1, -1, -1)
        _, C, H, W = image.shape

        tokens, image = self.transformer(image, image_pe, tokens)
        iou_token = tokens[:, 0]  # (B, C)
        mask_tokens = tokens[:, 1 : 1 + self.num_mask_tokens]  # (B, M, C)

        upscaled = self.output_upscaling(image.transpose(1, 2).reshape(B, C, H, W))  # (B, C/8, 4H, 4W)
        hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1)
        _, c, h, w = upscaled.shape
        masks = (hyper @ upscaled.reshape(B, c, h * w)).reshape(B, -1, h, w)  # (B, M, 4H, 4W)
        iou = self.iou_prediction_head(iou_token)

        keep = slice(1, None) if multimask else slice(0, 1)
        return masks[:, keep], iou[:, keep]
