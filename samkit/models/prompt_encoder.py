"""SAM's prompt encoder: points, boxes and low-res masks -> decoder tokens.

Coordinates here are SAM's (x, y) in pixels of the 1024 model input; the
public API converts from (y, x) before calling in (see ``samkit.predictor``).
Parameter names follow Meta's official checkpoints (``prompt_encoder.*``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .common import LayerNorm2d


class RandomFourierEncoding(nn.Module):
    """Positional encoding of (x, y) in [0, 1] by fixed random frequencies."""

    def __init__(self, num_freqs: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_freqs))

    def encode(self, xy: torch.Tensor) -> torch.Tensor:
        """(..., 2) normalised (x, y) -> (..., 2 * num_freqs)."""
        angles = 2 * math.pi * ((2 * xy - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Encoding of every cell centre of an (height, width) grid: (C, H, W)."""
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        x = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
        xy = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)  # (H, W, 2)
        return self.encode(xy).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Embeds prompts into sparse tokens (B, N, C) and a dense map (B, C, 64, 64)."""

    def __init__(self, dim: int = 256, embedding_size: int = 64, input_size: int = 1024, mask_channels: int = 16) -> None:
        super().__init__()
        self.dim = dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.pe_layer = RandomFourierEncoding(dim // 2)
        # 0: negative point, 1: positive point, 2: box top-left, 3: box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, dim)
        c = mask_channels
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, c // 4, kernel_size=2, stride=2),
            LayerNorm2d(c // 4),
            nn.GELU(),
            nn.Conv2d(c // 4, c, kernel_size=2, stride=2),
            LayerNorm2d(c),
            nn.GELU(),
            nn.Conv2d(c, dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, dim)

    def dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid, (1, C, 64, 64)."""
        return self.pe_layer.grid(self.embedding_size, self.embedding_size)[None]

    def _encode_xy(self, xy: torch.Tensor) -> torch.Tensor:
        # pixel index -> pixel centre -> [0, 1]
        return self.pe_layer.encode((xy + 0.5) / self.input_size)

    def embed_points(self, xy: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        """(B, N, 2) points with (B, N) labels in {-1, 0, 1, 2, 3} -> (B, N[+1], C).

        Label -1 marks padding ("not a point"); ``pad`` appends one such token,
        which SAM expects when no box is given. Labels 2 and 3 are a box's
        top-left and bottom-right corners (SAM 2 passes boxes this way).
        """
        if pad:
            xy = torch.cat([xy, xy.new_zeros(xy.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), -1)], dim=1)
        pe = self._encode_xy(xy)
        pe = torch.where((labels == -1)[..., None], torch.zeros_like(pe), pe)
        table = torch.cat([self.not_a_point_embed.weight, *(e.weight for e in self.point_embeddings)])  # (5, C), by label + 1
        return pe + table[labels.long() + 1]

    def embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(B, 4) boxes as (x0, y0, x1, y1) -> (B, 2, C) corner tokens."""
        pe = self._encode_xy(boxes.reshape(-1, 2, 2))
        corners = torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])  # (2, C)
        return pe + corners

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return sparse (B, N, C) and dense (B, C, 64, 64) prompt embeddings.

        ``masks`` are (B, 1, 256, 256) low-res logits from an earlier prediction.
        """
        batch = next((t.shape[0] for t in (points and points[0], boxes, masks) if t is not None), 1)
        tokens = [self.no_mask_embed.weight.new_empty(batch, 0, self.dim)]
        if points is not None:
            tokens.append(self.embed_points(*points, pad=boxes is None))
        if boxes is not None:
            tokens.append(self.embed_boxes(boxes))
        sparse = torch.cat(tokens, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            size = self.embedding_size
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, size, size)
        return sparse, dense
