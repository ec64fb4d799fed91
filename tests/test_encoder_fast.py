"""The encoder's fast paths: batched windows, bias built a few heads at a time, the explicit
(bf16 CPU) attention, bf16 tolerance."""

import numpy as np
import pytest
import torch

import samkit
from samkit.models import image_encoder
from samkit.models.image_encoder import ImageEncoderViT
from samkit.models.sam import build_sam
from reference import rel_error


def small_vit(num_heads: int = 4) -> ImageEncoderViT:
    """The ViT code path (windowed + global blocks, relative positions) at a size tests can afford.

    512 px input: a 32 x 32 grid, padded to 42 x 42 for the 14 x 14 windows.
    """
    torch.manual_seed(0)
    encoder = ImageEncoderViT(dim=64, depth=3, num_heads=num_heads, global_attn_indexes=(1,), img_size=512)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "rel_pos" in name or "pos_embed" in name:
                p.normal_(0, 0.5)
    return encoder.eval()


def test_batch_equals_one_by_one():
    encoder = small_vit()
    x = torch.randn(3, 3, 512, 512)
    with torch.inference_mode():
        batch = encoder(x)
        single = torch.cat([encoder(x[i : i + 1]) for i in range(3)])
    assert batch.shape == (3, 256, 32, 32)
    assert rel_error(batch, single) <= 1e-5


def test_bias_head_groups_do_not_change_results(monkeypatch):
    encoder = small_vit()
    x = torch.randn(2, 3, 512, 512)
    with torch.inference_mode():
        whole = encoder(x)  # all heads at once at this size
        monkeypatch.setattr(image_encoder, "BIAS_ELEMENTS", 1)  # one head at a time
        grouped = encoder(x)
        monkeypatch.setattr(image_encoder, "BIAS_ELEMENTS", 2 * 2 * 1024 * 1024 + 5)  # uneven groups (3 + 1)
        uneven = encoder(x)
        monkeypatch.setattr(image_encoder, "BIAS_ELEMENTS", 3 * 2 * 32 * 1024)  # 3 query rows of one head (32 = 10 x 3 + 2)
        rows = encoder(x)
    assert rel_error(grouped, whole) <= 1e-6 and rel_error(uneven, whole) <= 1e-6 and rel_error(rows, whole) <= 1e-6


@pytest.mark.parametrize("num_heads", [4, 2])  # head dim 16: windows' bias added; 32: folded into q . k
def test_explicit_attention_equals_fused_kernel(monkeypatch, num_heads):
    """The explicit path (bf16 on the CPU) computes the same attention as the fused kernel, in float32."""
    encoder = small_vit(num_heads)
    x = torch.randn(2, 3, 512, 512)
    with torch.inference_mode():
        fused = encoder(x)
        monkeypatch.setattr(image_encoder, "explicit_attention", lambda q: True)
        explicit = encoder(x)
        # chunks of 3 query rows (the 32-row grid ends on a short one), 2 window-heads at a time
        monkeypatch.setattr(image_encoder, "SCORE_ELEMENTS", 3 * 32 * 1024)
        chunked = encoder(x)
    assert rel_error(explicit, fused) <= 1e-5 and rel_error(chunked, fused) <= 1e-5


def test_explicit_attention_is_the_bf16_cpu_path():
    q = torch.zeros(1, 1, 4, 8)
    assert not image_encoder.explicit_attention(q)
    assert image_encoder.explicit_attention(q.bfloat16())


def test_vit_bf16_close_to_fp32():
    """bf16 autocast through both attention paths stays close to float32."""
    encoder = small_vit(2)
    x = torch.randn(1, 3, 512, 512)
    with torch.inference_mode():
        fp32 = encoder(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = encoder(x).float()
    assert rel_error(bf16, fp32) <= 0.03


@pytest.mark.parametrize("model_type", ["vit_t"])
def test_model_batch_embed(model_type):
    torch.manual_seed(0)
    model = build_sam(model_type)
    x = torch.rand(2, 3, 1024, 1024) * 255
    batch = model.embed(x)
    assert rel_error(batch[1:], model.embed(x[1:])) <= 1e-5


def test_bf16_close_to_fp32_on_a_real_image():
    """bf16 (CPU autocast) embeddings and the masks decoded from them stay close to fp32."""
    torch.manual_seed(0)
    model = build_sam("vit_t")
    image, truth = samkit.data.nuclei()
    from samkit.demo import click_points

    clicks = click_points(truth)[:8]
    results = {}
    for precision in ("fp32", "bf16"):
        model.precision = precision
        predictor = samkit.Predictor(model)
        predictor.set_image(image)
        assert predictor.embedding.dtype == torch.float32
        results[precision] = (predictor.embedding, [predictor.predict(points=[c], labels=[1]) for c in clicks])
    assert rel_error(results["bf16"][0], results["fp32"][0]) <= 0.05
    for fp32, bf16 in zip(results["fp32"][1], results["bf16"][1]):
        assert bf16.masks.dtype == bool and bf16.scores.dtype == np.float32
        a, b = fp32.masks, bf16.masks
        assert (a & b).sum() / max((a | b).sum(), 1) >= 0.95
        np.testing.assert_allclose(bf16.scores, fp32.scores, atol=0.05)
