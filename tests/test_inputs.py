"""Bad input gets a clear samkit error naming what was wrong; good variants work."""

import numpy as np
import pytest
import torch

import samkit
from samkit.errors import CheckpointError, InvalidImageError, InvalidPromptError, NotReadyError, UnknownModelError
from samkit.models import build_sam


@pytest.fixture(scope="module")
def predictor():
    """A small random-weight model (MobileSAM layout) with a 100 x 150 image set."""
    torch.manual_seed(0)
    p = samkit.Predictor(build_sam("vit_t"))
    p.set_image(np.random.default_rng(0).integers(0, 255, (100, 150), dtype=np.uint8))
    return p


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((5, 5, 5, 3), np.uint8), "shape"),
        (np.zeros((10, 10, 2), np.uint8), "shape"),
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.full((10, 10), np.nan, np.float32), "NaN"),
        (np.array([[1.0, np.inf]]), "NaN or inf"),
        (np.array([["a", "b"]]), "dtype"),
        (np.zeros((4, 4), np.complex64), "complex"),
    ],
)
def test_bad_images(image, match):
    p = samkit.Predictor(build_sam("vit_t"))
    with pytest.raises(InvalidImageError, match=match):
        p.set_image(image)


def test_predict_before_set_image():
    with pytest.raises(NotReadyError, match="set_image"):
        samkit.Predictor(build_sam("vit_t")).predict(points=[[1, 1]], labels=[1])


@pytest.mark.parametrize(
    "prompt, match",
    [
        (dict(), "no prompt"),
        (dict(points=[[10, 10]]), "without labels"),
        (dict(labels=[1]), "without points"),
        (dict(points=[[100, 10]], labels=[1]), r"outside the image of shape \(100, 150\)"),
        (dict(points=[[10, -1]], labels=[1]), "outside"),
        (dict(points=[[np.nan, 10]], labels=[1]), "NaN"),
        (dict(points=[[10, 10]], labels=[2]), r"labels must be 1 \(object\) or 0"),
        (dict(points=[[10, 10]], labels=[1, 0]), "does not match"),
        (dict(points=[10, 10], labels=[1]), r"\(N, 2\)"),
        (dict(box=[50, 50, 10, 60]), "empty or inverted"),
        (dict(box=[10, 10, 10, 60]), "empty or inverted"),
        (dict(box=[0, 0, 101, 20]), "outside"),
        (dict(box=[0, 0, 20]), r"\(y0, x0, y1, x1\)"),
        (dict(box=[0, np.inf, 5, 5]), "NaN or inf"),
        (dict(mask_input=np.zeros((64, 64))), "low-res logits"),
        (dict(box=np.array([[0, 0, 5, 5]] * 2), mask_input=np.zeros((3, 1, 256, 256))), "batch sizes"),
    ],
)
def test_bad_prompts(predictor, prompt, match):
    with pytest.raises(InvalidPromptError, match=match):
        predictor.predict(**prompt)


def test_outputs_are_numpy_fp32_and_bool(predictor):
    single = predictor.predict(points=[[50, 75]], labels=[True])
    assert single.masks.shape == (3, 100, 150) and single.masks.dtype == bool
    assert single.scores.shape == (3,) and single.scores.dtype == np.float32
    assert single.logits.shape == (3, 256, 256) and single.logits.dtype == np.float32
    batch = predictor.predict(box=[[0, 0, 50, 50], [10, 10, 90, 140]], multimask=False)
    assert batch.masks.shape == (2, 1, 100, 150) and batch.scores.shape == (2, 1)
    one_box_batch = predictor.predict(box=[[0, 0, 50, 50]])
    assert one_box_batch.masks.shape == (1, 3, 100, 150)  # a (B, 4) box array keeps its batch axis


# --- checkpoints -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vit_t_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "mobile_sam_random.pt"
    torch.save(build_sam("vit_t").state_dict(), path)
    return path


def test_wrong_model_type_names_first_mismatching_key(vit_t_file):
    with pytest.raises(CheckpointError, match=r"SAM 'vit_b' model: key 'image_encoder\.pos_embed' is missing.*vit_h"):
        samkit.load_model(vit_t_file, model_type="vit_b", device="cpu")


def test_wrong_shape_names_the_key(tmp_path):
    state = build_sam("vit_b").state_dict()
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 128)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"'mask_decoder\.iou_token\.weight' has shape \(1, 128\), expected \(1, 256\)"):
        samkit.load_model(tmp_path / "bad.pth", device="cpu")


def test_truncated_checkpoint(vit_t_file, tmp_path):
    data = vit_t_file.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        samkit.load_model(tmp_path / "cut.pt", device="cpu")


def test_random_bytes_are_not_a_checkpoint(tmp_path):
    # garbage reaches torch's unpickler, which fails with IndexError here: still a CheckpointError
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(17).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="noise.pth"):
        samkit.load_model(tmp_path / "noise.pth", model_type="vit_b", device="cpu")


def test_checkpoint_with_code_is_refused(tmp_path):
    torch.save({"model": np.random.default_rng(0)}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        samkit.load_model(tmp_path / "pickled.pt", device="cpu")


def test_not_a_sam_checkpoint(tmp_path):
    torch.save({"backbone.weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not look like a SAM checkpoint.*'backbone.weight'"):
        samkit.load_model(tmp_path / "other.pt", device="cpu")


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        samkit.load_model(tmp_path / "nope.pth")
    with pytest.raises(UnknownModelError, match="known names: vit_b"):
        samkit.load_model("vit_q")


def test_micro_sam_container_layout(vit_t_file, tmp_path):
    """micro-sam files: {'model_state': {'sam.' + key: ...}, 'decoder_state': {...}}."""
    state = torch.load(vit_t_file, weights_only=True)
    decoder_state = {"decoder.conv.weight": torch.ones(2, 2)}
    container = {"model_state": {f"sam.{k}": v for k, v in state.items()}, "decoder_state": decoder_state}
    torch.save(container, tmp_path / "vit_t_lm.pt")
    model = samkit.load_model(tmp_path / "vit_t_lm.pt", device="cpu")
    assert model.model_type == "vit_t"
    assert torch.equal(model.extras["decoder_state"]["decoder.conv.weight"], torch.ones(2, 2))
    for key, value in state.items():
        assert torch.equal(model.state_dict()[key], value)


# --- device and precision ------------------------------------------------------------------


def test_device_and_precision_policy(vit_t_file):
    model = samkit.load_model(vit_t_file)  # auto: no GPU on CI machines
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert model.device.type == expected
    if expected == "cpu":
        assert model.precision == "fp32"
    bf16 = samkit.load_model(vit_t_file, device="cpu", precision="bf16")
    assert bf16.precision == "bf16"
    with pytest.raises(ValueError, match="fp16.*not supported on the CPU"):
        samkit.load_model(vit_t_file, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision='fp64' is unknown"):
        samkit.load_model(vit_t_file, device="cpu", precision="fp64")
    with pytest.raises(ValueError, match="not a device"):
        samkit.load_model(vit_t_file, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            samkit.load_model(vit_t_file, device="cuda")
