"""SAM's two-way transformer: prompt tokens and image tokens attend to each other.

A decode has a few prompt tokens (N ~ 7) and 64 x 64 = 4096 image tokens, so
the work is in projecting image tokens. Two things keep it small:

- What does not depend on the prompt is projected once per image
  (:meth:`TwoWayTransformer.prepare`): the positional encoding's share of
  every image-side projection, and all image-side projections of the first
  block, whose image (embedding + no-mask embedding) is the same for every
  point or box prompt.
- Later blocks never project the image: a projection is linear, so it moves
  to the token side, ``q . (x Wk^T) = (q Wk) . x`` and ``a (x Wv^T) = (a x) Wv^T``,
  and the image meets only products with the hN = 8 x N head-tokens.

Products with image tokens run in the precision of the image tokens (bf16
when the model's precision is), the prompt tokens in the weights' (float32).

Parameter names follow Meta's official checkpoints (``mask_decoder.transformer.*``).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLPBlock


def _sam1_mlp(dim: int, hidden: int) -> nn.Module:
    return MLPBlock(dim, hidden, act=nn.ReLU)


class Attention(nn.Module):
    """Multi-head attention whose inner width may be ``dim / downsample``."""

    def __init__(self, dim: int, num_heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = dim // downsample
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(dim, inner)
        self.v_proj = nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.reshape(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, h, N, d)

    def _head_weight(self, proj: nn.Linear) -> torch.Tensor:
        return proj.weight.view(self.num_heads, -1, proj.in_features)  # (h, d, C)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Plain attention: (B, Nq, C) queries over (B, Nk, C) keys and values -> (B, Nq, C)."""
        q, k, v = self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, Nq, d)
        B, h, N, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(B, N, h * d))

    def tokens_to_image(
        self, tokens: torch.Tensor, image: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor | None
    ) -> torch.Tensor:
        """Tokens (B, N, C) attend to the image (1 or B, HW, C) -> (B, N, C).

        Keys are ``k_proj(image + pe)``, values ``v_proj(image)``. Known in
        advance: ``keys_t`` (1 or B, h, d, HW, transposed) and ``values``
        (1 or B, h, HW, d) when the image was, else only pe's share of the
        keys; then the image's share is folded into the queries and the values
        into the output (attention weights sum to 1, so v's bias passes).
        """
        q = self._heads(self.q_proj(tokens))  # (B, h, N, d)
        B, h, N, d = q.shape
        q, dtype = q * d**-0.5, image.dtype
        scores = _per_head(q.to(dtype), keys_t)  # (B, hN, HW)
        if values is not None:
            attn = scores.softmax(-1).view(B, h, N, -1)  # (B, h, N, HW)
            out = _per_head(attn, values).view(B, h, N, d).transpose(1, 2)  # (B, N, h, d)
            return self.out_proj(out.reshape(B, N, h * d).to(q.dtype))
        # q . (x Wk^T) = (q Wk) . x
        q_image = torch.einsum("bhnd,hdc->bhnc", q, self._head_weight(self.k_proj)).reshape(B, h * N, -1)
        attn = torch.baddbmm(scores, q_image.to(dtype), image.expand(B, -1, -1).mT).softmax(-1)  # (B, hN, HW)
        mixed = torch.bmm(attn, image.expand(B, -1, -1)).view(B, h, N, -1).to(q.dtype)  # (B, h, N, C)
        out = torch.einsum("bhnc,hdc->bnhd", mixed, self._head_weight(self.v_proj))  # a (x Wv^T) = (a x) Wv^T
        return self.out_proj(out.reshape(B, N, h * d) + self.v_proj.bias)  # (B, N, C)

    def image_to_tokens(
        self,
        image: torch.Tensor,
        queries_t: torch.Tensor,
        tokens_k: torch.Tensor,
        tokens_v: torch.Tensor,
        fold_image: bool,
    ) -> torch.Tensor:
        """The image (1 or B, HW, C) attends to tokens (B, N, C) -> image + attention output (B, HW, C).

        Queries are ``q_proj(image + pe)``: ``queries_t`` (1 or B, h, d, HW) is
        all of them (transposed) when the image was known in advance, else
        ``q_proj(pe)`` and ``fold_image`` adds the image's share, folded into
        the token keys. ``out_proj`` is folded into the token values.
        """
        k = self._heads(self.k_proj(tokens_k))  # (B, h, N, d)
        v = self._heads(self.v_proj(tokens_v))  # (B, h, N, d)
        B, h, N, d = k.shape
        k, dtype = k * d**-0.5, image.dtype
        scores = _per_head(k.to(dtype), queries_t)  # (B, hN, HW)
        if fold_image:  # (x Wq^T) . k = x . (k Wq)
            k_image = torch.einsum("bhnd,hdc->bhnc", k, self._head_weight(self.q_proj)).reshape(B, h * N, -1)
            scores = torch.baddbmm(scores, k_image.to(dtype), image.expand(B, -1, -1).mT)
        attn = scores.view(B, h, N, -1).softmax(2).view(B, h * N, -1)  # softmax over each head's N tokens
        # out_proj(sum_n a_n v_n) = sum_n a_n (v_n Wo^T) + bo; each head's weights sum to 1, so bo / h per head
        wo = self.out_proj.weight.view(-1, h, d)  # (C, h, d)
        v_out = torch.einsum("bhnd,chd->bhnc", v, wo) + self.out_proj.bias / h  # (B, h, N, C)
        return torch.baddbmm(image.expand(B, -1, -1), attn.mT, v_out.reshape(B, h * N, -1).to(dtype))  # (B, HW, C)


def _per_head(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, h, N, K) @ (1 or B, h, K, M) -> (B, hN, M), one batched matmul over B * h heads."""
    B, h, N, K = a.shape
    b = b.expand(B, -1, -1, -1).reshape(B * h, K, -1)  # a view when B is 1
    return torch.bmm(a.reshape(B * h, N, K), b).view(B, h * N, -1)


def _heads_t(attn: Attention, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Projected image tokens (B, HW, hd) -> per-head, transposed (B, h, d, HW), contiguous, in ``dtype``."""
    return attn._heads(x).transpose(2, 3).to(dtype).contiguous()


def _layer_norm_as_input(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` in the precision of ``x`` (CUDA's kernel wants its parameters in that precision too)."""
    return F.layer_norm(x, norm.normalized_shape, norm.weight.to(x.dtype), norm.bias.to(x.dtype), norm.eps)


class ImageProjections(NamedTuple):
    """One block's image-side projections made before the prompt is known.

    First block, whose image is known in advance: ``keys_t`` and ``values``
    are ``k_proj(image + pe)`` and ``v_proj(image)`` of the token-to-image
    attention, ``queries_t`` is ``q_proj(image + pe)`` of the image-to-token
    attention. Later blocks: the positional encoding's share only,
    ``k_proj(pe)`` and ``q_proj(pe)``, and no values. ``*_t`` are transposed
    per head, (1 or B, h, d, HW); ``values`` is (1 or B, h, HW, d).
    """

    keys_t: torch.Tensor
    queries_t: torch.Tensor
    values: torch.Tensor | None

    @property
    def complete(self) -> bool:
        """Whether the image's share is included (the image was known in advance)."""
        return self.values is not None


class ImageContext(NamedTuple):
    """The prompt-independent part of a decode, from :meth:`TwoWayTransformer.prepare`.

    image : (1 or B, HW, C) image embedding + dense prompt embedding, as tokens,
        in the precision of products with image tokens
    image_pe : (1, HW, C) their positional encoding, in the weights' precision
    blocks : one :class:`ImageProjections` per block
    final_keys_t : (1, h, d, HW) ``k_proj(pe)`` of the final token-to-image attention, transposed
    """

    image: torch.Tensor
    image_pe: torch.Tensor
    blocks: tuple[ImageProjections, ...]
    final_keys_t: torch.Tensor


class TwoWayBlock(nn.Module):
    """Tokens self-attend, attend to the image, MLP; then the image attends to tokens."""

    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, skip_first_pe: bool, mlp: Callable[[int, int], nn.Module] = _sam1_mlp
    ) -> None:
        super().__init__()
        self.skip_first_pe = skip_first_pe
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = mlp(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample=2)

    def project_image(
        self, image: torch.Tensor | None, image_pe: torch.Tensor, dtype: torch.dtype
    ) -> ImageProjections:
        """This block's :class:`ImageProjections` of a known image (1 or B, HW, C), or of pe alone (image None)."""
        to_image, to_tokens = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        x = image_pe if image is None else image + image_pe
        keys, queries = _heads_t(to_image, to_image.k_proj(x), dtype), _heads_t(to_tokens, to_tokens.q_proj(x), dtype)
        values = None if image is None else to_image._heads(to_image.v_proj(image)).to(dtype).contiguous()
        return ImageProjections(keys, queries, values)

    def forward(
        self, tokens: torch.Tensor, image: torch.Tensor, token_pe: torch.Tensor, projected: ImageProjections
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens, token_pe (B, N, C); image (1 or B, HW, C) and its ``projected`` parts -> tokens, image."""
        # 1. tokens attend to themselves (the first block replaces instead of adding)
        if self.skip_first_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)
        # 2. tokens attend to the image
        q = tokens + token_pe
        attended = self.cross_attn_token_to_image.tokens_to_image(q, image, projected.keys_t, projected.values)
        tokens = self.norm2(tokens + attended)
        # 3. MLP on tokens
        tokens = self.norm3(tokens + self.mlp(tokens))
        # 4. the image attends to the tokens (residual included)
        q = tokens + token_pe
        fold_image = not projected.complete
        image = self.cross_attn_image_to_token.image_to_tokens(image, projected.queries_t, q, tokens, fold_image)
        return tokens, _layer_norm_as_input(self.norm4, image)  # (B, N, C), (B, HW, C)


class TwoWayTransformer(nn.Module):
    """``mlp(dim, mlp_dim)`` makes each block's feed-forward: SAM's ``lin1``/``lin2``
    by default; SAM 2 names the same ReLU MLP ``layers.0``/``layers.1``."""

    def __init__(
        self,
        dim: int = 256,
        depth: int = 2,
        num_heads: int = 8,
        mlp_dim: int = 2048,
        mlp: Callable[[int, int], nn.Module] = _sam1_mlp,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayBlock(dim, num_heads, mlp_dim, skip_first_pe=(i == 0), mlp=mlp) for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def prepare(self, image: torch.Tensor, image_pe: torch.Tensor, dtype: torch.dtype) -> ImageContext:
        """The prompt-independent part of a decode: image (1 or B, C, H, W), image_pe (1, C, H, W).

        Products with image tokens will run in ``dtype``; the few prompt
        tokens stay in the weights' precision.
        """
        pe = image_pe.flatten(2).transpose(1, 2).contiguous()  # (1, HW, C)
        final = self.final_attn_token_to_image
        final_keys = _heads_t(final, final.k_proj(pe), dtype)  # (1, h, d, HW)
        later = tuple(layer.project_image(None, pe, dtype) for layer in self.layers[1:])
        image, first = self._first_block(image, pe, dtype)
        return ImageContext(image, pe, (first, *later), final_keys)

    def with_image(self, context: ImageContext, image: torch.Tensor) -> ImageContext:
        """``context`` for another image (1 or B, C, H, W) on the same grid, e.g. with a mask prompt added."""
        image, first = self._first_block(image, context.image_pe, context.image.dtype)
        return context._replace(image=image, blocks=(first, *context.blocks[1:]))

    def _first_block(
        self, image: torch.Tensor, image_pe: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, ImageProjections]:
        """Image (B, C, H, W) -> its tokens (B, HW, C) in ``dtype`` and the first block's projections."""
        image = image.flatten(2).transpose(1, 2).contiguous()  # (B, HW, C)
        return image.to(dtype), self.layers[0].project_image(image, image_pe, dtype)

    def forward(self, context: ImageContext, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image from :meth:`prepare`, tokens (B, N, C) -> tokens (B, N, C), image (B, HW, C)."""
        image, token_pe = context.image, tokens
        for layer, projected in zip(self.layers, context.blocks):
            tokens, image = layer(tokens, image, token_pe, projected)
        q = tokens + token_pe
        attended = self.final_attn_token_to_image.tokens_to_image(q, image, context.final_keys_t, None)
        tokens = self.norm_final_attn(tokens + attended)
        return tokens, image
