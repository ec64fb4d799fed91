"""SAM 2's neck: a feature pyramid over the trunk's four stages, all at width 256.

Each stage gets a 1 x 1 projection ("lateral"); the two coarsest levels also
receive the level above, upsampled 2x (nearest). The coarsest level (stride
32) only feeds the one below it: the image path uses strides 4, 8 and 16.
The sine positional encoding of the official neck feeds only the video
memory, so it is not here. Parameter names follow Meta's official checkpoints
(``image_encoder.neck.convs.<i>.conv.*``, coarsest level first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Lateral(nn.Module):
    def __init__(self, channels: int, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last (B, H, W, C_in) -> (B, dim, H, W)."""
        weight = self.conv.weight.flatten(1)  # (dim, C_in): a 1 x 1 convolution is a linear map per pixel
        return F.linear(x, weight, self.conv.bias).permute(0, 3, 1, 2)


class FpnNeck(nn.Module):
    """Trunk grids (finest first, channels-last) -> [stride 4, stride 8, stride 16] maps (B, dim, H, W).

    Parameters
    ----------
    channels : ints
        The trunk's widths per stage, coarsest first (as the official ``backbone_channel_list``).
    top_down : ints
        The levels (0 finest) that receive the upsampled level above them.
    """

    def __init__(self, channels: tuple[int, ...], dim: int = 256, top_down: tuple[int, ...] = (2, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(_Lateral(c, dim) for c in channels)
        self.top_down = top_down

    def forward(self, grids: list[torch.Tensor]) -> list[torch.Tensor]:
        n = len(grids) - 1
        out: list[torch.Tensor] = [None] * len(grids)  # type: ignore[list-item]
        above = None
        for level in range(n, -1, -1):  # coarse to fine
            x = self.convs[n - level](grids[level])
            if above is not None and level in self.top_down:
                x = x + F.interpolate(above.float(), scale_factor=2.0, mode="nearest")
            out[level] = above = x
        return out[:-1]  # (B, dim, 256, 256), (B, dim, 128, 128), (B, dim, 64, 64)
