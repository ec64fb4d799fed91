"""SAM 2's memory encoder: a frame's image features and its predicted mask -> one memory.

The mask (1024 x 1024, already squashed to SAM 2's memory scale, see
:func:`samkit.models.sam2.memory.mask_for_memory`) is brought down to the
64 x 64 feature grid by four stride-2 convolutions, added to the projected
image features, mixed by two ConvNeXt blocks and projected to 64 channels.
Its positional encoding is the fixed 64-channel sine grid.

Parameter names follow Meta's official checkpoints (``memory_encoder.*``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..common import LayerNorm2d
from .position_encoding import sine_grid


class MaskDownSampler(nn.Module):
    """(B, 1, 1024, 1024) -> (B, dim, 64, 64): four times conv 3 x 3 stride 2 (channels x4), norm, GELU; then 1 x 1."""

    def __init__(self, dim: int = 256, steps: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for _ in range(steps):
            layers += [nn.Conv2d(channels, 4 * channels, kernel_size=3, stride=2, padding=1), LayerNorm2d(4 * channels), nn.GELU()]
            channels *= 4
        layers.append(nn.Conv2d(channels, dim, kernel_size=1))
        self.encoder = nn.Sequential(*layers)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(mask)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7 x 7 conv, norm, MLP (x4) per pixel, layer scale, residual."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)  # (B, H, W, C)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    def __init__(self, dim: int = 256, depth: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """(B, dim, 64, 64) image features + (B, 1, 1024, 1024) mask -> (B, mem_dim, 64, 64) memory."""

    def __init__(self, dim: int = 256, mem_dim: int = 64) -> None:
        super().__init__()
        self.mem_dim = mem_dim
        self.mask_downsampler = MaskDownSampler(dim)
        self.pix_feat_proj = nn.Conv2d(dim, dim, kernel_size=1)
        self.fuser = Fuser(dim)
        self.out_proj = nn.Conv2d(dim, mem_dim, kernel_size=1)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.pix_feat_proj(features) + self.mask_downsampler(mask)  # (B, dim, 64, 64)
        return self.out_proj(self.fuser(x))  # (B, mem_dim, 64, 64)

    def position(self, height: int, width: int) -> torch.Tensor:
        """(1, mem_dim, H, W): the memories' positional encoding (the same for every frame)."""
        return sine_grid(self.mem_dim, height, width, self.out_proj.weight.device)
