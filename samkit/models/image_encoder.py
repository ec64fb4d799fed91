"""SAM's ViT image encoder (ViT-B/L/H): windowed and global attention with
decomposed relative positions, then a convolutional neck to 256 channels.

Parameter names follow Meta's official checkpoints (``image_encoder.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d, MLPBlock

# Largest attention bias built at once for the fused kernel (elements): 16 MB in fp32.
BIAS_ELEMENTS = 1 << 22
# Attention scores computed at once on the explicit path (elements): 2 MB in bf16, in cache.
SCORE_ELEMENTS = 1 << 20


def relative_position_table(size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Look up the (size, size, d) table of embeddings for query-key offsets.

    ``rel_pos`` holds one embedding per offset -(size-1) .. size-1, shape (2*size-1, d).
    """
    offsets = torch.arange(size, device=rel_pos.device)
    index = offsets[:, None] - offsets[None, :] + (size - 1)  # (size, size)
    return rel_pos[index]


def position_indicator(H: int, W: int, like: torch.Tensor) -> torch.Tensor:
    """(H + W, H*W) matrix of 0/1: row ky marks the keys of grid row ky, row H + kx those of column kx.

    ``[rel_y, rel_x] @ indicator`` is the full (query, key) bias, built by one product.
    """
    keys = torch.arange(H * W, device=like.device)
    indicator = like.new_zeros(H + W, H * W)
    indicator[keys // W, keys] = 1
    indicator[H + keys % W, keys] = 1
    return indicator


def explicit_attention(q: torch.Tensor) -> bool:
    """Attend by explicit products instead of the fused kernel?

    Yes for bf16/fp16 on the CPU: the fused CPU kernel computes in float32 (no faster than
    fp32), while explicit products in cache-sized chunks run at bf16 speed.
    """
    return q.device.type == "cpu" and q.dtype != torch.float32


def copy_windows(grid: torch.Tensor, windows: torch.Tensor, into_windows: bool) -> None:
    """Copy a (B, H, W, C) grid into (B, rows, cols, s, s, C) windows, or the windows' grid part back.

    Windows past the grid's edge are only partly covered; their rest is left as it is.
    """
    B, H, W, C = grid.shape
    s = windows.shape[3]
    full, rest = divmod(W, s)  # whole windows per row, columns in the last one
    for top in range(0, H, s):
        n = min(s, H - top)
        rows, row_windows = grid[:, top : top + n], windows[:, top // s, :, :n]  # (B, n, W, C), (B, cols, n, s, C)
        pairs = [(rows[:, :, : full * s].unflatten(2, (full, s)).transpose(1, 2), row_windows[:, :full])]
        if rest:
            pairs.append((rows[:, :, full * s :], row_windows[:, full, :, :rest]))
        for part, window_part in pairs:
            if into_windows:
                window_part.copy_(part)
            else:
                part.copy_(window_part)


class Attention(nn.Module):
    """Multi-head self-attention over a (B, H, W, C) grid with decomposed
    relative-position terms: logit(q, k) += q . Rh[qy - ky] + q . Rw[qx - kx].

    With ``window_size`` it attends within non-overlapping windows; the grid is
    padded to whole windows with zero tokens (which project to ``qkv.bias``).
    The bias is the sum of a row part and a column part. A small one (windows)
    is expanded by one matrix product, or folded into the query-key product; a
    large one (global attention) is added a few heads or query rows at a time.
    """

    def __init__(self, dim: int, num_heads: int, grid_size: int, window_size: int = 0) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        size = window_size or grid_size
        self.rel_pos_h = nn.Parameter(torch.zeros(2 * size - 1, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(2 * size - 1, head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        qkv = self.qkv(x)  # (B, H, W, 3C); only real tokens are projected
        s = self.window_size
        if not s:
            return self.proj(self._attend(qkv))
        # windows (B, rows, cols, s, s, 3C); tokens padding the grid to whole windows are zero,
        # so they project to the bias
        windows = self.qkv.bias.to(qkv.dtype).expand(B, -(-H // s), -(-W // s), s, s, 3 * C).clone()
        copy_windows(qkv, windows, into_windows=True)
        del qkv
        out = self._attend(windows.flatten(0, 2)).view(*windows.shape[:-1], C)
        grid = out.new_empty(B, H, W, C)
        copy_windows(grid, out, into_windows=False)
        return self.proj(grid)

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """(b, H, W, 3C) projected tokens of one attention grid -> (b, H, W, C)."""
        b, H, W, C3 = qkv.shape
        h, d, N = self.num_heads, C3 // (3 * self.num_heads), H * W
        q, k, v = qkv.reshape(b, N, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)  # each (b, h, N, d)
        tables = relative_position_table(H, self.rel_pos_h), relative_position_table(W, self.rel_pos_w)
        if explicit_attention(q):
            out = (_explicit if H + W > d else _folded)(q, k, v, tables)
        else:
            out = _fused(q, k, v, tables)
        return out.transpose(1, 2).reshape(b, H, W, h * d)


def relative_terms(q: torch.Tensor, tables: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (..., H*W, d) -> their bias terms rel_y (..., H, W, H) and rel_x (..., H, W, W).

    Made for the heads in hand only: for all heads of a global block they would take
    as much memory as the queries twice over.
    """
    table_y, table_x = tables
    grid = q.unflatten(-2, (table_y.shape[0], table_x.shape[0]))  # (..., H, W, d)
    return torch.einsum("...hwd,hkd->...hwk", grid, table_y), torch.einsum("...hwd,wkd->...hwk", grid, table_x)


def _fused(q, k, v, tables) -> torch.Tensor:
    """The fused attention kernel with the bias as an additive mask, built for a group of
    heads (windows) or for some query rows of one head (global attention) at a time.

    Every chunk's bias goes into the same buffer (a fresh allocation this large costs
    more in page faults than filling it).
    """
    (b, h, N, d), H, W = q.shape, len(tables[0]), len(tables[1])
    group = min(h, max(1, BIAS_ELEMENTS // (b * N * N)))
    rows = H if group > 1 else min(H, max(1, BIAS_ELEMENTS // (b * W * N)))  # query grid rows per chunk
    buffer = q.new_empty(b * group * rows * W * N)
    indicator = position_indicator(H, W, q) if H + W <= d else None
    out = q.new_empty(b, h, N, d)
    for i in range(0, h, group):
        heads = slice(i, i + group)
        rel_y, rel_x = relative_terms(q[:, heads], tables)  # (b, g, H, W, H), (b, g, H, W, W)
        g = rel_y.shape[1]
        for y in range(0, H, rows):
            n = min(rows, H - y)
            queries = slice(y * W, (y + n) * W)
            bias = buffer[: b * g * n * W * N].view(b, g, n * W, N)
            if indicator is not None:  # short rows: one product expands the bias
                terms = torch.cat([rel_y[:, :, y : y + n], rel_x[:, :, y : y + n]], -1)
                torch.matmul(terms.reshape(b, g, n * W, H + W), indicator, out=bias)
            else:
                torch.add(rel_y[:, :, y : y + n, ..., None], rel_x[:, :, y : y + n, ..., None, :], out=bias.view(b, g, n, W, H, W))
            out[:, heads, queries] = F.scaled_dot_product_attention(
                q[:, heads, queries], k[:, heads], v[:, heads], attn_mask=bias
            )
    return out


def _folded(q, k, v, tables) -> torch.Tensor:
    """Explicit attention for small grids: the bias folded into the query-key product.

    [q / sqrt(d), rel_y, rel_x] . [k, indicator] = q . k / sqrt(d) + bias, in one product
    (H + W extra columns, cheaper than adding a bias with short rows).
    """
    (b, h, N, d), H, W = q.shape, len(tables[0]), len(tables[1])
    rel_y, rel_x = relative_terms(q, tables)
    queries = torch.cat([q * d**-0.5, rel_y.reshape(b, h, N, H), rel_x.reshape(b, h, N, W)], -1).flatten(0, 1)
    keys = torch.cat([k, position_indicator(H, W, q).t().expand(b, h, N, H + W)], -1).flatten(0, 1)
    values = v.flatten(0, 1)
    out = q.new_empty(b * h, N, d)
    group = max(1, SCORE_ELEMENTS // (N * N))
    for i in range(0, b * h, group):
        part = slice(i, i + group)
        scores = torch.bmm(queries[part], keys[part].transpose(1, 2))
        torch.bmm(torch.softmax(scores, -1), values[part], out=out[part])
    return out.view(b, h, N, d)


def _explicit(q, k, v, tables) -> torch.Tensor:
    """Explicit attention for large grids, a few query rows of one head at a time (in cache)."""
    (b, h, N, d), H, W = q.shape, len(tables[0]), len(tables[1])
    queries = q * d**-0.5
    out = q.new_empty(b, h, N, d)
    rows = max(1, SCORE_ELEMENTS // (W * N))  # query grid rows per chunk
    for i in range(b):
        for j in range(h):
            keys_t = k[i, j].t()
            rel_y, rel_x = relative_terms(q[i, j], tables)  # (H, W, H), (H, W, W)
            for y in range(0, H, rows):
                n = min(rows, H - y)
                scores = torch.mm(queries[i, j, y * W : (y + n) * W], keys_t)  # (n * W, N)
                grid = scores.view(n, W, H, W)
                grid.add_(rel_y[y : y + n, :, :, None]).add_(rel_x[y : y + n, :, None, :])
                torch.mm(torch.softmax(scores, -1), v[i, j], out=out[i, j, y * W : (y + n) * W])
    return out


class Block(nn.Module):
    """Pre-norm transformer block; attends within windows unless ``window_size`` is 0."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, window_size: int, grid_size: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, grid_size, window_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The residual stream stays float32 under autocast. Adds go in place into fresh
        # tensors: an out-of-place bf16 + float32 add is several times slower on the CPU.
        x = self.attn(self.norm1(x)).float().add_(x)
        mlp = self.mlp
        # GELU in place: a fresh tensor of this size (4x the tokens) costs page faults
        hidden = torch.ops.aten.gelu_(mlp.lin1(self.norm2(x)))  # (B, H, W, 4C)
        return x.add_(mlp.lin2(hidden))


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
