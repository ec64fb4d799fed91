"""vit_l and vit_h: the reference's own state dict loads through samkit, and
the outputs agree with the reference on identical random weights."""

import numpy as np
import pytest
import torch

import samkit
from conftest import load_dsb, object_centres
from reference import import_segment_anything, randomize_, rel_error

TOL = 1e-4


@pytest.fixture(scope="module", params=["vit_l", "vit_h"])
def pair(request, tmp_path_factory):
    sa = import_segment_anything()
    torch.manual_seed(0)
    ref = randomize_(sa.sam_model_registry[request.param](), seed=2)
    path = tmp_path_factory.mktemp(request.param) / f"sam_{request.param}_random.pth"
    torch.save(ref.state_dict(), path)
    ours = samkit.load_model(path, device="cpu")  # model type read from the file
    yield request.param, sa, ref, ours
    path.unlink()


def test_type_detected_and_weights_identical(pair):
    model_type, _, ref, ours = pair
    assert ours.model_type == model_type
    theirs = ref.state_dict()
    assert theirs.keys() == ours.state_dict().keys()
    assert all(torch.equal(v, theirs[k]) for k, v in ours.state_dict().items())


def test_decoder_matches_on_a_shared_embedding(pair):
    _, _, ref, ours = pair
    embedding = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(3))
    xy = torch.tensor([[[500.0, 300.0], [100.0, 900.0]]])
    labels = torch.tensor([[1, 0]])
    with torch.no_grad():
        sparse, dense = ref.prompt_encoder((xy, labels), None, None)
        ref_logits, ref_iou = ref.mask_decoder(embedding, ref.prompt_encoder.get_dense_pe(), sparse, dense, True)
    logits, iou = ours.decode(embedding, xy, labels)
    assert rel_error(logits, ref_logits) <= TOL and rel_error(iou, ref_iou) <= TOL


@pytest.mark.slow
def test_embedding_and_masks_match(pair, real_data):
    _, sa, ref, ours = pair
    image, labels = load_dsb(real_data, "0ed3555a4bd4")  # 256 x 256
    ref_predictor = sa.SamPredictor(ref)
    ref_predictor.set_image(image)
    predictor = samkit.Predictor(ours)
    predictor.set_image(image)
    assert rel_error(predictor.embedding, ref_predictor.features) <= TOL
    point = object_centres(labels, 1)
    result = predictor.predict(points=point, labels=[1])
    _, ref_iou, ref_low = ref_predictor.predict(point[:, ::-1].astype(float), np.array([1]))
    assert rel_error(result.logits, ref_low) <= TOL and rel_error(result.scores, ref_iou) <= TOL
