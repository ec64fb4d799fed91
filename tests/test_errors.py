"""One error contract: what a user can get wrong raises a ``samkit.errors`` type naming the value and the fix.

Each type also derives from the built-in a Python user expects (``ValueError``,
``TypeError``, ``OSError``), so existing ``except`` clauses keep working.
"""

import re

import numpy as np
import pytest
import torch

import samkit
from samkit.automatic import Settings
from samkit.engine.grid import TileGrid
from samkit.engine.models import window_model
from samkit.errors import (
    CheckpointError,
    InvalidImageError,
    InvalidLabelError,
    InvalidSettingError,
    SamkitError,
    UnsupportedModelError,
)
from samkit.models import build_sam
from samkit.models.registry import ModelInfo

from conftest import load_dsb


@pytest.fixture(scope="module")
def state():
    """A vit_t (MobileSAM) state dict in the official layout, random weights."""
    torch.manual_seed(0)
    return build_sam("vit_t").state_dict()


@pytest.fixture(scope="module")
def nuclei(real_data):
    name = sorted((real_data / "nuclei" / "dsb2018").glob("*_img.png"))[0].name.split("_img")[0]
    return load_dsb(real_data, name)[0]


# --- D9: weights that are not finite ------------------------------------------------------------

KEY = "mask_decoder.iou_prediction_head.layers.0.weight"


@pytest.mark.parametrize(
    "layout, value, dtype",
    [("official", np.nan, torch.float32), ("official", np.inf, torch.float16), ("official", np.nan, torch.bfloat16),
     ("official", -np.inf, torch.bfloat16), ("micro-sam", -np.inf, torch.float32)],
)  # fmt: skip
def test_checkpoint_with_non_finite_weights_is_refused(state, tmp_path, layout, value, dtype):
    bad = {k: v.to(dtype, copy=True) for k, v in state.items()}
    bad[KEY][3, 5] = value
    if layout == "micro-sam":
        bad = {"model_state": {f"sam.{k}": v for k, v in bad.items()}}
    torch.save(bad, tmp_path / "diverged.pt")
    with pytest.raises(CheckpointError, match=f"diverged.pt: weight '{KEY}' holds NaN or infinite values"):
        samkit.load_model(tmp_path / "diverged.pt", device="cpu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_finite_checkpoint_still_loads(state, tmp_path, dtype):
    big = {k: v.to(dtype, copy=True) for k, v in state.items()}
    big[KEY][0, 0] = torch.finfo(dtype).max  # the largest finite value is no NaN or inf
    torch.save(big, tmp_path / "fine.pt")
    model = samkit.load_model(tmp_path / "fine.pt", device="cpu")
    assert torch.equal(model.state_dict()[KEY], big[KEY].float())


@pytest.mark.parametrize("model_state", [torch.zeros(3), [1, 2], "weights"])
def test_micro_sam_container_whose_model_state_is_not_a_dict(tmp_path, model_state):
    torch.save({"model_state": model_state, "decoder_state": {}}, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError, match=r"odd.pt: its 'model_state' holds a \w+, not a state dict"):
        samkit.load_model(tmp_path / "odd.pt", device="cpu")


# --- images, settings, models -------------------------------------------------------------------


def test_predictor_refuses_too_elongated_images():
    predictor = samkit.Predictor(build_sam("vit_t"))
    for shape in [(1, 2049), (3000, 1), (2, 5000, 3)]:
        with pytest.raises(InvalidImageError, match=re.escape(f"shape {shape[:2]} is too elongated")) as err:
            predictor.set_image(np.zeros(shape, np.uint8))
        assert "aspect ratio above 2048:1" in str(err.value) and "samkit.Session" in str(err.value)
        assert predictor.embedding is None


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(tile_size=0), "tile_size=0, halo=1: need tile_size >= 16"),  # refused, not the default
        (dict(tile_size=8, halo=1), "tile_size=8"),
        (dict(tile_size=256, halo=128), r"2 \* halo < tile_size"),
        (dict(halo=0), r"halo=0: windows must overlap \(halo >= 1\)"),
        (dict(level=1), r"level=1: the image has 1 pyramid level\(s\), 0..0"),
    ],
)
def test_session_settings(nuclei, options, match):
    with pytest.raises(InvalidSettingError, match=match) as err:
        samkit.Session(nuclei, "classical", **options)
    assert isinstance(err.value, ValueError)


def test_grid_and_generation_settings():
    with pytest.raises(InvalidSettingError, match="tile_size=1024, halo=512"):
        TileGrid((100, 100), 1024, 512)
    with pytest.raises(InvalidSettingError, match="points_per_batch=0: must be a positive int"):
        Settings(points_per_batch=0)
    with pytest.raises(InvalidSettingError, match="box_nms_thresh=0"):
        Settings(box_nms_thresh=0)
    with pytest.raises(InvalidSettingError, match=r"IoU threshold 2 must lie in \(0, 1\]"):
        samkit.metrics.evaluate(np.zeros((4, 4), int), np.zeros((4, 4), int), thresholds=2)


def test_device_precision_and_registry_settings(state, tmp_path):
    from samkit.device import resolve_device, resolve_precision

    with pytest.raises(InvalidSettingError, match="device='gpu0' is not a device"):
        resolve_device("gpu0")
    with pytest.raises(InvalidSettingError, match="precision='fp64' is unknown"):
        resolve_precision("fp64", torch.device("cpu"))
    with pytest.raises(InvalidSettingError, match="url='ftp://x/y.pt' must be an http"):
        ModelInfo(name="mine", model_type="vit_b", url="ftp://x/y.pt", size_bytes=1)
    torch.save(state, tmp_path / "fine.pt")
    with pytest.raises(samkit.errors.UnknownModelError, match="model_type='vit_x' is unknown"):
        samkit.load_model(tmp_path / "fine.pt", model_type="vit_x", device="cpu")


def test_objects_that_are_not_models():
    with pytest.raises(UnsupportedModelError, match="int is not a model samkit can use") as err:
        window_model(42)
    assert isinstance(err.value, TypeError)


def test_malformed_mask_and_mismatched_labels(nuclei):
    from samkit.widget.inputs import label_image

    with pytest.raises(InvalidLabelError, match=r"crop \(2, 2\) bool does not match bbox"):
        samkit.Mask((0, 0, 3, 3), np.ones((2, 2), bool))
    with pytest.raises(InvalidLabelError, match=r"labels of shape \(5, 5\) do not fit an image of shape \(6, 6\)"):
        label_image(samkit.LabelImage((5, 5)), None, (6, 6))


def test_every_error_type_is_a_samkit_error_and_a_builtin():
    for error in vars(samkit.errors).values():
        if isinstance(error, type) and issubclass(error, Exception) and error is not SamkitError:
            assert issubclass(error, SamkitError)
            assert issubclass(error, (ValueError, TypeError, OSError, RuntimeError, ImportError)), error
