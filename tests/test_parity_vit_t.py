"""Numerical parity of samkit's ``vit_t`` (MobileSAM) with MobileSAM's reference code.

The reference gets fixed random weights (BatchNorm running statistics and the
attention biases included), its state dict is saved in the layout of the
official ``mobile_sam.pt``, and that FILE is read back through samkit's
checkpoint functions. Both models then see the same real image (DSB2018 nuclei)
and the same point prompt.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reference import randomize_, rel_error
from reference_mobilesam import import_mobile_sam, randomize_tinyvit_
from samkit.errors import CheckpointError
from samkit.models.checkpoint import detect_model_type, load_weights, read_checkpoint
from samkit.models.sam import build_sam
from samkit.models.tinyvit import TinyViT

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGE = DATA / "nuclei" / "dsb2018" / "1879f4f4f05e_img.png"  # 512 x 640, wide
TOL = 1e-4  # max relative error, fp32


@pytest.fixture(scope="module")
def reference():
    mobile_sam = import_mobile_sam()
    torch.manual_seed(0)
    return randomize_tinyvit_(randomize_(mobile_sam.build_sam_vit_t(), seed=1), seed=2)


@pytest.fixture(scope="module")
def checkpoint(reference, tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam_random.pt"
    torch.save(reference.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def ours(checkpoint):
    state, _ = read_checkpoint(checkpoint)
    model = build_sam(detect_model_type(state, checkpoint.name))
    load_weights(model, state, checkpoint.name)
    return model


@pytest.fixture(scope="module")
def image():
    """(1, 3, h, w) float RGB in [0, 255]: a DSB2018 image resized to a 1024 long side."""
    if not IMAGE.is_file():
        pytest.skip(f"real test image not found at {IMAGE} (a fresh clone has no ../shared/data)")
    pil = Image.open(IMAGE).convert("RGB")
    scale = 1024 / max(pil.size)
    pil = pil.resize((round(pil.width * scale), round(pil.height * scale)), Image.BILINEAR)
    return torch.from_numpy(np.array(pil)).permute(2, 0, 1)[None].float()


@pytest.fixture(scope="module")
def embeddings(ours, reference, image):
    """(ours, reference) image embeddings, each (1, 256, 64, 64)."""
    with torch.no_grad():
        ref = reference.image_encoder(reference.preprocess(image))
    return ours.embed(image), ref


def test_encoder_state_dict_is_the_reference_layout(reference):
    ref = [(k, tuple(v.shape)) for k, v in reference.image_encoder.state_dict().items()]
    mine = [(k, tuple(v.shape)) for k, v in TinyViT().state_dict().items()]
    assert mine == ref  # same keys, same order, same shapes: no persistent extras


def test_checkpoint_loads_as_vit_t(checkpoint, ours):
    state, _ = read_checkpoint(checkpoint)
    assert detect_model_type(state) == "vit_t"
    assert ours.model_type == "vit_t"
    assert isinstance(ours.image_encoder, TinyViT) and ours.image_encoder.img_size == 1024


def test_embeddings_match(embeddings):
    mine, ref = embeddings
    assert mine.shape == ref.shape == (1, 256, 64, 64)
    assert rel_error(mine, ref) <= TOL


@pytest.mark.parametrize("multimask", [True, False])
def test_decoder_outputs_match(ours, reference, embeddings, image, multimask):
    mine_emb, ref_emb = embeddings
    # one foreground point on the brightest pixel (a nucleus), (x, y) in model-input pixels
    y, x = np.unravel_index(int(image[0].sum(0).argmax()), image.shape[-2:])
    points, labels = torch.tensor([[[x + 0.5, y + 0.5]]]), torch.tensor([[1]])
    logits, iou = ours.decode(mine_emb, points, labels, multimask=multimask)
    with torch.no_grad():
        sparse, dense = reference.prompt_encoder(points=(points, labels), boxes=None, masks=None)
        ref_logits, ref_iou = reference.mask_decoder(
            image_embeddings=ref_emb,
            image_pe=reference.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
    assert logits.shape == ref_logits.shape == (1, 3 if multimask else 1, 256, 256)
    assert rel_error(logits, ref_logits) <= TOL
    assert rel_error(iou, ref_iou) <= TOL


def test_wrong_shape_is_named(checkpoint):
    state, _ = read_checkpoint(checkpoint)
    key = "image_encoder.layers.2.blocks.0.attn.attention_biases"
    assert state[key].shape == (5, 196)
    state[key] = torch.zeros(5, 49)
    with pytest.raises(CheckpointError, match=re.escape(key)):
        load_weights(build_sam("vit_t"), state, "mobile_sam.pt")
