"""segment_all at its defaults with a model without instance decoder (plain SAM): size-aware prompts.

Real images with real ground truth, the exact oracle for exactness and the SAM-like model for robustness;
no setting is passed unless the test says why. Recall figures measured 2026-12-08 (docs/content/automatic.md).
"""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile
from PIL import Image

import samkit
from samkit.automatic import run
from samkit.automatic.scale import blob_size
from samkit.errors import InvalidSettingError
from samkit.metrics import evaluate
from samkit.testing import OracleModel, SamLikeModel


def stardist_scene(real_data):
    """The StarDist nuclei image (512 x 512, 125 nuclei) 2 x 2 times: one default window, 500 nuclei."""
    folder = real_data / "nuclei" / "stardist"
    image, labels = tifffile.imread(folder / "img2d.tif"), tifffile.imread(folder / "mask2d.tif").astype(np.int32)
    truth = np.block([[labels + k * (labels > 0) * int(labels.max()) for k in (2 * row, 2 * row + 1)] for row in (0, 1)])
    return np.tile(image, (2, 2)), truth


def crowns(real_data, name="OSBS_029"):
    """A DeepForest aerial image and crown truth from its boxes (the ellipse in each box, small ones on top)."""
    folder = real_data / "ecology" / "deepforest"
    image = np.asarray(Image.open(folder / f"{name}.png"))[..., :3]
    boxes = np.array([[int(float(o.find("bndbox").find(k).text)) for k in ("ymin", "xmin", "ymax", "xmax")]
                      for o in ET.parse(folder / f"{name}.xml").getroot().iter("object")])  # fmt: skip
    truth = np.zeros(image.shape[:2], np.int32)
    for i in np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"):
        y0, x0, y1, x1 = boxes[i]
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = ((yy - (y0 + y1 - 1) / 2) / ((y1 - y0) / 2)) ** 2 + ((xx - (x0 + x1 - 1) / 2) / ((x1 - x0) / 2)) ** 2 <= 1
        truth[y0:y1, x0:x1][inside] = i + 1
    return image, truth


def median_diameter(truth) -> float:
    _, areas = np.unique(truth[truth > 0], return_counts=True)
    return float(np.median(2 * np.sqrt(areas / np.pi)))


def recall(truth, labels, iou=0.99):
    scores = evaluate(truth, labels, thresholds=(iou,))
    return scores.tp[0] / (len(np.unique(truth)) - 1), scores


def test_dense_nuclei_at_defaults_with_the_oracle(real_data):
    image, truth = stardist_scene(real_data)
    result = run(image, OracleModel(truth))
    assert result.mode == "prompts" and len(result.windows) == 1
    assert 0.75 < result.object_size / median_diameter(truth) < 1.33  # estimated, never given
    found, scores = recall(truth, result.labels)
    assert found >= 0.97, f"recall {found:.3f}"  # measured 0.984 (492 of 500): the 1024 prompts ran out
    assert scores.fp[0] == 0 and scores.matches.iou.min() == 1.0  # whatever is found is exact
    assert result.decoder_calls().max() <= 1024
    assert "mode prompts" in result.summary() and "decoder calls per window" in result.summary()


def test_dense_nuclei_at_defaults_with_the_sam_like_model(real_data):
    """Noisy edges (IoU 0.99 is out of reach by design), competing candidates, blobs on background."""
    image, truth = stardist_scene(real_data)
    scores = evaluate(truth, samkit.segment_all(image, SamLikeModel(truth)), thresholds=(0.5, 0.75))
    assert scores.ap[0] >= 0.95 and scores.ap[1] >= 0.92, scores.ap  # measured 0.976, 0.953


def test_tree_crowns_at_defaults(real_data):
    image, truth = crowns(real_data)
    found, scores = recall(truth, samkit.segment_all(image, OracleModel(truth)))
    assert found == 1.0 and scores.fp[0] == 0  # all 61 crowns, exact
    ap = evaluate(truth, samkit.segment_all(image, SamLikeModel(truth)), thresholds=(0.5,)).ap[0]
    assert ap >= 0.95  # measured 1.0


def test_object_size_in_physical_units(real_data):
    """The crowns image at 10 cm per pixel: 3.5 m is 35 px (a size given, so nothing is estimated)."""
    image, truth = crowns(real_data)
    opened = samkit.open_image(image, spacing=0.1, unit="m")
    by_pixels = run(opened, OracleModel(truth), object_size=35.0)
    by_metres = run(opened, OracleModel(truth), object_size=(3.5, "m"))
    assert by_metres.object_size == pytest.approx(35.0)
    np.testing.assert_array_equal(np.asarray(by_metres.labels), np.asarray(by_pixels.labels))
    with pytest.raises(InvalidSettingError, match="pixel size"):
        run(image, OracleModel(truth), object_size=(3.5, "m"))  # an array has no pixel size
    with pytest.raises(InvalidSettingError, match="object_size=-2"):
        run(image, OracleModel(truth), object_size=-2)


def test_blob_size_follows_the_objects(real_data):
    """Step 1 of the estimate alone (the image, no model): about the nuclei's size, for small and large ones."""
    image, truth = stardist_scene(real_data)
    assert 0.6 < blob_size(image[:512, :512].astype(np.float32)) / median_diameter(truth) < 1.2
    small = image[:512, :512].astype(np.float32)[::2, ::2]  # the same nuclei at half the size
    assert 0.6 < blob_size(small) / (median_diameter(truth) / 2) < 1.4
