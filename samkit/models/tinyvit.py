"""MobileSAM's image encoder (``vit_t``): TinyViT-5M and a neck to 256 channels.

A normalised image goes through a stride-4 convolutional stem, one stage of
inverted-residual convolutions (MBConv) and three stages of windowed attention.
Every stage but the last ends by merging patches with convolutions, which
halves the grid, except into the last stage, so that the output grid is 64 x 64
like that of SAM's ViT encoders:

    (B, 3, 1024, 1024) -> stem (B, 64, 256, 256) -> (B, 128, 128, 128)
    -> (B, 160, 64, 64) -> (B, 320, 64, 64) -> (B, 320, 64, 64) -> neck (B, 256, 64, 64)

Parameter names follow MobileSAM's ``mobile_sam.pt`` (its ``image_encoder.*``
keys), including the ImageNet classifier (``norm_head``, ``head``) that the file
carries and SAM never uses, so the official file loads strictly.

Inference only: no dropout or stochastic depth, and every BatchNorm uses its
running statistics, folded into the convolution before it on each call (the
parameters themselves stay as stored).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import LayerNorm2d


def gelu_(x: torch.Tensor) -> torch.Tensor:
    """GELU in place, for fresh activations: on CPU, filling a newly allocated
    large tensor costs about as much as the GELU itself."""
    return torch.ops.aten.gelu_(x)


class ConvBN(nn.Module):
    """Bias-free convolution then BatchNorm (keys ``c.*``, ``bn.*``), on (B, C, H, W).

    BatchNorm with running statistics is a per-channel affine map, so it is
    folded into the convolution's weight and bias: one pass over the activations.
    """

    def __init__(self, in_chans: int, out_chans: int, kernel_size: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.c = nn.Conv2d(in_chans, out_chans, kernel_size, stride, kernel_size // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)  # (C_out,)
        weight = self.c.weight * scale[:, None, None, None]
        bias = bn.bias - bn.running_mean * scale
        return F.conv2d(x, weight, bias, self.c.stride, self.c.padding, groups=self.c.groups)


class PatchEmbed(nn.Module):
    """Stem: two stride-2 3x3 convolutions, (B, 3, H, W) -> (B, C, H/4, W/4)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(in_chans, dim // 2, 3, 2), nn.GELU(), ConvBN(dim // 2, dim, 3, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv1, _, conv2 = self.seq  # seq[1] is the GELU, applied in place here
        return conv2(gelu_(conv1(x)))


class MBConv(nn.Module):
    """Inverted residual: expand 1x1, depthwise 3x3, project 1x1, add, GELU. (B, C, H, W) -> same."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = gelu_(self.conv1(x))  # (B, 4C, H, W)
        y = gelu_(self.conv2(y))
        return gelu_(self.conv3(y).add_(x))


class PatchMerging(nn.Module):
    """Change width (1x1), downsample (depthwise 3x3 at ``stride``), mix (1x1).

    (B, C, H, W) -> (B, C', H / stride, W / stride).
    """

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = gelu_(self.conv1(x))
        x = gelu_(self.conv2(x))
        return self.conv3(x)


def offset_index(window_size: int) -> torch.Tensor:
    """(N, N) index of the offset (|dy|, |dx|) between tokens i and j of a window
    of N = window_size**2 tokens in row-major order: |dy| * window_size + |dx|."""
    pos = torch.arange(window_size)
    y, x = pos.repeat_interleave(window_size), pos.repeat(window_size)  # (N,) each
    return (y[:, None] - y[None]).abs() * window_size + (x[:, None] - x[None]).abs()


class Attention(nn.Module):
    """Pre-norm multi-head self-attention over the N tokens of each window, with
    a learned bias per head and per offset (|dy|, |dx|) between query and key.

    ``attention_biases`` is (h, window_size**2): one column per offset.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size**2))
        self.register_buffer("bias_index", offset_index(window_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape  # B here counts windows
        h = self.num_heads
        qkv = self.qkv(self.norm(x))  # (B, N, 3C)
        # per head, its q, k and v lie side by side: (B, N, h, 3, d) -> 3 x (B, h, N, d)
        q, k, v = qkv.view(B, N, h, 3, C // h).permute(3, 0, 2, 1, 4).unbind(0)
        bias = self.attention_biases[None, :, self.bias_index]  # (1, h, N, N); 4-d runs the fused CPU kernel
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))  # (B, h, N, d)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class PreNormMLP(nn.Module):
    """LayerNorm -> linear -> GELU -> linear, on (..., C)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(gelu_(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Windowed attention (+ residual), depthwise convolution, MLP (+ residual).

    Works on a (B, H, W, C) token grid of any size: the grid is zero-padded to
    whole windows, and, as in MobileSAM, the padding tokens take part in attention.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, mlp_ratio: float, local_conv_size: int) -> None:
        super().__init__()
        self.window_size = window_size
        self.attn = Attention(dim, num_heads, window_size)
        self.mlp = PreNormMLP(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, local_conv_size, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # attention within windows
        x = x + self._windowed_attention(x)
        # depthwise convolution (no residual), on a (B, C, H, W) view of the grid
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        # feed-forward
        return self.mlp(x).add_(x)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        s = self.window_size
        pad_h, pad_w = -H % s, -W % s
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # (B, H', W', C), H' = nh * s
        nh, nw = (H + pad_h) // s, (W + pad_w) // s
        # partition: (B, nh, s, nw, s, C) -> (B * nh * nw, s * s, C)
        x = x.reshape(B, nh, s, nw, s, C).transpose(2, 3).reshape(B * nh * nw, s * s, C)
        x = self.attn(x)
        # and back: (B, nh, nw, s, s, C) -> (B, H', W', C), dropping the padding
        x = x.view(B, nh, nw, s, s, C).transpose(2, 3).reshape(B, nh * s, nw * s, C)
        return x[:, :H, :W]


class ConvLayer(nn.Module):
    """First stage: MBConv blocks, then patch merging. (B, C, H, W) -> (B, C', H/2, W/2)."""

    def __init__(self, dim: int, out_dim: int, depth: int, expand_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand_ratio) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class BasicLayer(nn.Module):
    """Attention stage: TinyViT blocks, then patch merging unless it is the last stage.

    (B, C, H, W) -> (B, C', H / stride, W / stride); the blocks see (B, H, W, C).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        local_conv_size: int,
        out_dim: int | None = None,
        stride: int = 2,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(dim, num_heads, window_size, mlp_ratio, local_conv_size) for _ in range(depth)
        )
        self.downsample = None if out_dim is None else PatchMerging(dim, out_dim, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C) token grid
        for block in self.blocks:
            x = block(x)
        x = x.permute(0, 3, 1, 2)  # (B, C, H, W)
        return x if self.downsample is None else self.downsample(x)


class TinyViT(nn.Module):
    """MobileSAM's image encoder: normalised (B, 3, 1024, 1024) -> (B, 256, 64, 64).

    The defaults are MobileSAM's configuration (TinyViT-5M). The merge into the
    last stage keeps the resolution (stride 1), so the output grid is 1/16 of
    the input. ``norm_head`` and ``head`` (TinyViT's ImageNet classifier) are
    kept only so that official checkpoints load strictly; they are unused.
    """

    img_size = 1024

    def __init__(
        self,
        in_chans: int = 3,
        embed_dims: tuple[int, ...] = (64, 128, 160, 320),
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (2, 4, 5, 10),
        window_sizes: tuple[int, ...] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        num_classes: int = 1000,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(in_chans, embed_dims[0])
        last = len(depths) - 1
        self.layers = nn.ModuleList([ConvLayer(embed_dims[0], embed_dims[1], depths[0], mbconv_expand_ratio)])
        for i in range(1, len(depths)):
            self.layers.append(
                BasicLayer(
                    embed_dims[i],
                    depths[i],
                    num_heads[i],
                    window_sizes[i],
                    mlp_ratio,
                    local_conv_size,
                    out_dim=embed_dims[i + 1] if i < last else None,
                    stride=1 if i + 1 == last else 2,
                )
            )
        self.norm_head = nn.LayerNorm(embed_dims[-1])  # unused (ImageNet classifier)
        self.head = nn.Linear(embed_dims[-1], num_classes)  # unused (ImageNet classifier)
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, 1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, 3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 1024, 1024) normalised, zero-padded image -> (B, 256, 64, 64) embedding."""
        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions; free (B, H, W, C) views
        x = self.patch_embed(x)  # (B, 64, 256, 256)
        for layer in self.layers:  # (B, 128, 128, 128), (B, 160, 64, 64), (B, 320, 64, 64) x 2
            x = layer(x)
        x = self.neck(x)  # (B, 256, 64, 64)
        return x.contiguous()  # the usual layout for whoever stores or reshapes it
