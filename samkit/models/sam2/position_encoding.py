"""The fixed positional encodings of SAM 2's memory path.

- :func:`sine_grid`: the 2-D sine encoding of a feature grid ("Attention is
  all you need" applied to normalised row and column), for the image
  features entering memory attention (256 channels) and for the memories
  (64 channels);
- :func:`sine_1d`: the 1-D sine encoding of the object pointers' frame
  distances;
- :func:`axial_rope` and :func:`rotate`: the axial rotary encoding that
  memory attention applies to its queries and keys: half of each head's
  channel pairs turn with the column, half with the row.

None of them has weights. Everything is float32 (the rotations complex64).
"""

from __future__ import annotations

import functools
import math

import torch

TEMPERATURE = 10000.0


def _frequencies(count: int, device=None) -> torch.Tensor:
    """The sine encoding's divisors: TEMPERATURE ** (2 * (i // 2) / count), i < count."""
    i = torch.arange(count, dtype=torch.float32, device=device)
    return TEMPERATURE ** (2 * torch.div(i, 2, rounding_mode="floor") / count)


@functools.lru_cache(maxsize=16)
def sine_grid(channels: int, height: int, width: int, device=None) -> torch.Tensor:
    """(1, channels, height, width): row encoding in the first half of the channels, column in the second.

    Rows and columns count from 1 and are normalised to (0, 2 pi] by the last
    one; within each half, even channels hold sines, odd ones cosines.
    Computed once per size and device (do not modify the result in place).
    """
    with torch.inference_mode(False):  # a plain tensor, usable in and out of inference mode
        return _sine_grid(channels, height, width, device)


def _sine_grid(channels: int, height: int, width: int, device) -> torch.Tensor:
    half = channels // 2
    eps, scale = 1e-6, 2 * math.pi
    rows = torch.arange(1, height + 1, dtype=torch.float32, device=device)
    cols = torch.arange(1, width + 1, dtype=torch.float32, device=device)
    rows = rows / (rows[-1] + eps) * scale
    cols = cols / (cols[-1] + eps) * scale
    div = _frequencies(half, device)

    def encode(t: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, half), sin / cos interleaved
        angles = t[:, None] / div
        return torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=2).flatten(1)

    y = encode(rows)[:, None, :].expand(height, width, half)  # (H, W, half)
    x = encode(cols)[None, :, :].expand(height, width, half)
    return torch.cat([y, x], dim=-1).permute(2, 0, 1)[None]


def sine_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) positions -> (N, dim): sines of position / divisor, then cosines."""
    angles = positions.float()[:, None] / _frequencies(dim // 2, positions.device)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def axial_rope(dim: int, height: int, width: int, theta: float = 10000.0, device=None) -> torch.Tensor:
    """(H * W, dim / 2) complex unit rotations of each channel pair of a ``dim``-channel head.

    Tokens are in row-major order. Pairs 0 .. dim/4 - 1 turn by column x
    frequency, the others by row x the same frequencies,
    ``1 / theta ** (4 k / dim)``.
    """
    freqs = 1.0 / theta ** (torch.arange(0, dim, 4, device=device)[: dim // 4].float() / dim)  # (dim / 4,)
    t = torch.arange(height * width, dtype=torch.float32, device=device)
    col, row = t % width, torch.div(t, width, rounding_mode="floor")
    angles = torch.cat([torch.outer(col, freqs), torch.outer(row, freqs)], dim=-1)  # (HW, dim / 2)
    return torch.polar(torch.ones_like(angles), angles)


def rotate(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Turn the channel pairs (2i, 2i + 1) of (B, h, N, d) tokens by the (N', d / 2) ``rope`` rotations.

    N may be a multiple of N': the memories of several frames share the
    grid's rotations.
    """
    B, h, N, d = x.shape
    pairs = torch.view_as_complex(x.float().reshape(B, h, N // rope.shape[0], rope.shape[0], d // 2, 2))
    return torch.view_as_real(pairs * rope).reshape(B, h, N, d).type_as(x)
