"""SAM's ViT image encoder (ViT-B/L/H): windowed and global attention with
decomposed relative positions, then a convolutional neck to 256 channels.

Parameter names follow Meta's official checkpoints (``image_encoder.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock

# Largest attention bias built at once (elements): 64 MB in fp32.
BIAS_ELEMENTS = 1 << 24


def relative_position_table(size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Look up the (size, size, d) table of embeddings for query-key offsets.

    ``rel_pos`` holds one embedding per offset -(size-1) .. size-1, shape (2*size-1, d).
    """
    offsets = torch.arange(size, device=rel_pos.device)
    index = offsets[:, None] - offsets[None, :] + (size - 1)  # (size, size)
    return rel_pos[index]


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) grid with decomposed
    relative-position terms: logit(q, k) += q . Rh[qy - ky] + q . Rw[qx - kx].

    The bias is the sum of a row part and a column part; it is built for a few
    heads at a time and handed to the fused attention kernel as an additive mask.
    """

    def __init__(self, dim: int, num_heads: int, grid_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid_size - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid_size - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        h, d = self.num_heads, C // self.num_heads
        N = H * W
        qkv = self.qkv(x).reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, h, N, d)
        table_y = relative_position_table(H, self.rel_pos_h)  # (H, H, d)
        table_x = relative_position_table(W, self.rel_pos_w)  # (W, W, d)

        # The (N, N) bias of one head is 64 MB for a 64 x 64 grid: it is built for a
        # group of heads at a time, always into the same buffer (a fresh allocation
        # this large costs more in page faults than filling it).
        group = min(h, max(1, BIAS_ELEMENTS // (B * N * N)))
        bias = q.new_empty(B, group, H, W, H, W)  # in the dtype attention runs in (bf16 under autocast)
        out = q.new_empty(B, N, h, d)
        for i in range(0, h, group):
            heads = slice(i, i + group)
            g = q[:, heads].shape[1]
            q_grid = q[:, heads].reshape(B, g, H, W, d)
            rel_y = torch.einsum("bnhwd,hkd->bnhwk", q_grid, table_y)  # (B, g, H, W, H)
            rel_x = torch.einsum("bnhwd,wkd->bnhwk", q_grid, table_x)  # (B, g, H, W, W)
            mask = torch.add(rel_y[..., :, None], rel_x[..., None, :], out=bias[:, :g]).view(B, g, N, N)
            attended = F.scaled_dot_product_attention(q[:, heads], k[:, heads], v[:, heads], attn_mask=mask)
            out[:, :, heads] = attended.transpose(1, 2)  # (B, N, g, d)
        return self.proj(out.reshape(B, H, W, C))


class Block(nn.Module):
    """Pre-norm transformer block; attends within windows unless ``window_size`` is 0."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, window_size: int, grid_size: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, window_size or grid_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended = self._windowed(self.norm1(x)) if self.window_size else self.attn(self.norm1(x))
        x = x + attended  # the residual stream stays float32 under autocast
        mlp = self.mlp
        # GELU in place: a fresh tensor of this size (4x the tokens) costs page faults
        hidden = torch.ops.aten.gelu_(mlp.lin1(self.norm2(x)))  # (B, H, W, 4C)
        return x + mlp.lin2(hidden)

    def _windowed(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        s = self.window_size
        pad_h, pad_w = -H % s, -W % s
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # zero tokens fill the last windows
        Hp, Wp = H + pad_h, W + pad_w
        x = x.reshape(B, Hp // s, s, Wp // s, s, C).transpose(2, 3).reshape(-1, s, s, C)  # (B*nW, s, s, C)
        x = self.attn(x)
        x = x.reshape(B, Hp // s, Wp // s, s, s, C).transpose(2, 3).reshape(B, Hp, Wp, C)
        return x[:, :H, :W, :]


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens: (B, 3, H, W) -> (B, H/p, W/p, C)."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ImageEncoderViT(nn.Module):
    """(B, 3, 1024, 1024) normalised image -> (B, 256, 64, 64) embedding."""

    def __init__(
        self,
        *,
        dim: int,
        depth: int,
        num_heads: int,
        global_attn_indexes: tuple[int, ...],
        img_size: int = 1024,
        patch_size: int = 16,
        window_size: int = 14,
        mlp_ratio: float = 4.0,
        out_dim: int = 256,
    ) -> None:
        super().__init__()
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, dim))
        self.blocks = nn.ModuleList(
            Block(dim, num_heads, mlp_ratio, 0 if i in global_attn_indexes else window_size, grid)
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(dim, out_dim, kernel_size=1, bias=False),
            LayerNorm2d(out_dim),
            nn.Conv2d(out_dim, out_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x) + self.pos_embed  # (B, 64, 64, C)
        for block in self.blocks:
            x = block(x)
        return self.neck(x.permute(0, 3, 1, 2))  # (B, 256, 64, 64)
