"""SAM 2's memory attention: a frame's image tokens attend to themselves, then to the memories.

Four pre-norm layers, each: self-attention of the 64 x 64 image tokens,
cross-attention from them to the memory tokens (the spatial memories of
earlier frames, 64 channels, and the object pointers), a ReLU MLP (2048).
Both attentions have one head and turn queries and keys by the axial
rotary encoding of the 64 x 64 grid; in cross-attention every frame's
memory gets the grid's angles, the object pointers none. The image tokens
enter with a tenth of their sine encoding added; the memories' keys carry
theirs (spatial + temporal), their values don't.

Parameter names follow Meta's official checkpoints (``memory_attention.*``).
Tokens are batch first: (B, N, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .position_encoding import axial_rope, rotate


class RoPEAttention(nn.Module):
    """One-head attention with axial rotary encoding of the first ``len(keys) - unrotated`` keys."""

    def __init__(self, dim: int = 256, kv_dim: int | None = None, num_heads: int = 1) -> None:
        super().__init__()
        kv_dim = dim if kv_dim is None else kv_dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.view(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, h, N, d)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rope: torch.Tensor, unrotated: int = 0) -> torch.Tensor:
        q = rotate(self._heads(self.q_proj(q)), rope)  # (B, h, HW, d)
        k = self._heads(self.k_proj(k))  # (B, h, M, d)
        v = self._heads(self.v_proj(v))
        rotated = k.shape[2] - unrotated
        k[:, :, :rotated] = rotate(k[:, :, :rotated], rope)
        x = F.scaled_dot_product_attention(q, k, v)  # (B, h, HW, d)
        B, h, N, d = x.shape
        return self.out_proj(x.transpose(1, 2).reshape(B, N, h * d))


class MemoryAttentionLayer(nn.Module):
    def __init__(self, dim: int = 256, mem_dim: int = 64, mlp_dim: int = 2048) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(dim)
        self.cross_attn_image = RoPEAttention(dim, kv_dim=mem_dim)
        self.linear1 = nn.Linear(dim, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        rope: torch.Tensor,
        num_pointer_tokens: int,
    ) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.self_attn(y, y, y, rope)
        x = x + self.cross_attn_image(self.norm2(x), memory + memory_pos, memory, rope, unrotated=num_pointer_tokens)
        return x + self.linear2(F.relu(self.linear1(self.norm3(x))))


class MemoryAttention(nn.Module):
    """Image tokens (B, HW, dim) conditioned on memory tokens (B, M, mem_dim) -> (B, HW, dim)."""

    def __init__(self, dim: int = 256, mem_dim: int = 64, depth: int = 4, theta: float = 10000.0) -> None:
        super().__init__()
        self.theta = theta
        self.layers = nn.ModuleList(MemoryAttentionLayer(dim, mem_dim) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self._rope: dict[tuple, torch.Tensor] = {}

    def rope(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """The rotations of an (height, width) grid (computed once per size and device)."""
        key = (height, width, str(device))
        if key not in self._rope:
            head_dim = self.layers[0].self_attn.q_proj.out_features // self.layers[0].self_attn.num_heads
            with torch.inference_mode(False):  # a plain tensor, usable in and out of inference mode
                self._rope[key] = axial_rope(head_dim, height, width, self.theta, device)
        return self._rope[key]

    def forward(
        self,
        image: torch.Tensor,
        image_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        grid: tuple[int, int],
        num_pointer_tokens: int = 0,
    ) -> torch.Tensor:
        """``image`` (B, HW, dim) with its sine encoding ``image_pos`` (1 or B, HW, dim); ``memory`` and
        ``memory_pos`` (B, M, mem_dim), the last ``num_pointer_tokens`` of them object pointers."""
        rope = self.rope(*grid, image.device)
        x = image + 0.1 * image_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, rope, num_pointer_tokens)
        return self.norm(x)
