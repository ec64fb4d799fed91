"""SAM 2's image trunk: Hiera, a hierarchical ViT with windowed and global attention.

Four stages at strides 4, 8, 16 and 32 of the 1024 input; each stage after the
first starts with a block that halves the grid (max-pooling its queries) and
doubles width and heads. Most blocks attend within square windows, a few
(``global_blocks``) over the whole grid. The positional embedding is a small
"background" table resized (bicubic) to the grid plus a window-sized table
tiled over it.

Tokens stay channels-last, (B, H, W, C), as in the official code. Parameter
names follow Meta's official checkpoints (``image_encoder.trunk.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common import MLP


def _pool(x: torch.Tensor, stride: int) -> torch.Tensor:
    """2-D max pooling of a channels-last (B, H, W, C) grid -> (B, H/s, W/s, C)."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), stride, stride).permute(0, 2, 3, 1)


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nW, window, window, C), zero-padded at the bottom/right; and the padded (Hp, Wp)."""
    B, H, W, C = x.shape
    pad_h, pad_w = -H % window, -W % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window, window, Wp // window, window, C)
    return x.transpose(2, 3).reshape(-1, window, window, C), (Hp, Wp)


def window_unpartition(windows: torch.Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, window, window, C) -> (B, H, W, C)."""
    Hp, Wp = padded
    nh, nw = Hp // window, Wp // window
    x = windows.reshape(-1, nh, nw, window, window, windows.shape[-1])  # (B, nh, nw, w, w, C)
    x = x.transpose(2, 3).reshape(-1, Hp, Wp, windows.shape[-1])
    H, W = size
    return x[:, :H, :W] if (Hp, Wp) != (H, W) else x


class MultiScaleAttention(nn.Module):
    """Attention over a (B, H, W, C) grid; with ``q_stride`` the queries are pooled first."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_stride: int = 0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_stride = q_stride
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).unbind(2)  # each (B, HW, h, d)
        if self.q_stride:
            q = _pool(q.reshape(B, H, W, -1), self.q_stride)  # (B, H/s, W/s, hd)
            H, W = q.shape[1:3]
            q = q.reshape(B, H * W, self.num_heads, -1)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, h, HW, d)
        return self.proj(x.transpose(1, 2).reshape(B, H, W, -1))


class HieraBlock(nn.Module):
    """Norm, (windowed) attention, residual; norm, MLP, residual. Changes width and grid when ``q_stride``."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, window: int, q_stride: int = 0) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window = window  # 0: global attention
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_stride)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, 4 * dim_out, dim_out, 2, act=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x  # (B, H, W, C)
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.q_stride:
                shortcut = _pool(shortcut, self.q_stride)  # (B, H/s, W/s, C')
        window = self.window
        if window:
            x, padded = window_partition(x, window)  # (B * nW, w, w, C)
        x = self.attn(x)
        if window:
            H, W = shortcut.shape[1:3]
            if self.q_stride:  # the windows shrank with the queries
                window //= self.q_stride
                padded = (H + -H % window, W + -W % window)
            x = window_unpartition(x, window, padded, (H, W))
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """7 x 7 convolution, stride 4: (B, 3, 1024, 1024) -> (B, 256, 256, C)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Hiera(nn.Module):
    """The trunk: (B, 3, 1024, 1024) -> four (B, H, W, C) grids, finest first.

    Parameters
    ----------
    dim, num_heads : int
        Width and heads of the first stage (both double at each stage).
    stages : 4 ints
        Blocks per stage.
    global_blocks : ints
        Indexes of the blocks with global attention.
    windows : 4 ints
        Window side per stage. A stage's first block still uses the previous
        stage's window (on the finer grid it pools).
    background : (int, int)
        Size of the positional-embedding background table.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        stages: tuple[int, ...],
        global_blocks: tuple[int, ...],
        windows: tuple[int, ...] = (8, 4, 14, 7),
        background: tuple[int, int] = (14, 14),
        q_stride: int = 2,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *background))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, windows[0], windows[0]))
        ends = [sum(stages[: i + 1]) - 1 for i in range(len(stages))]
        self.stage_ends = tuple(ends)
        self.blocks = nn.ModuleList()
        stage = 0
        for i in range(sum(stages)):
            window = 0 if i in global_blocks else windows[stage]  # the previous stage's at a stage's first block
            dim_out, stride = dim, 0
            if i - 1 in ends[:-1]:  # first block of stages 2-4
                dim_out, num_heads, stride, stage = 2 * dim, 2 * num_heads, q_stride, stage + 1
            self.blocks.append(HieraBlock(dim, dim_out, num_heads, window, stride))
            dim = dim_out
        self.channels = tuple(self.blocks[i].dim_out for i in ends)  # per stage, finest first

    def pos_embedding(self, height: int, width: int) -> torch.Tensor:
        """(1, H, W, C): the background table resized to the grid plus the window table tiled over it."""
        background = F.interpolate(self.pos_embed, size=(height, width), mode="bicubic")
        window = self.pos_embed_window
        tiles = (height // window.shape[-2], width // window.shape[-1])
        return (background + window.tile(1, 1, *tiles)).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)  # (B, H, W, C)
        x = x + self.pos_embedding(*x.shape[1:3])
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x)
        return outputs  # (B, 256, 256, C), (B, 128, 128, 2C), (B, 64, 64, 4C), (B, 32, 32, 8C)
