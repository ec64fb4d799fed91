"""segment_all from a user interface: a region of the image only, and cancelling (shared-api.md, API 4)."""

import threading

import numpy as np
import pytest

import samkit
from samkit.automatic import run
from samkit.errors import Cancelled, InvalidPromptError
from samkit.testing import OracleModel, mosaic

from test_automatic import assert_reproduces
from test_session import dsb_pairs


@pytest.fixture(scope="module")
def scene(real_data):
    image, truth = mosaic(dsb_pairs(real_data), (1024, 1280))
    return image, truth


def touching(truth, region):
    y0, x0, y1, x1 = region
    ids = np.unique(truth[y0:y1, x0:x1])
    return np.where(np.isin(truth, ids[ids > 0]), truth, 0)


def test_a_region_gives_the_objects_touching_it_whole(scene):
    """256 px windows and a prompt every 2 px (the grid mode), so that the expected labels are exact: every
    object with a pixel in the region, whole even where it reaches into windows outside the region."""
    image, truth = scene
    region = (300, 410, 520, 700)
    result = run(image, OracleModel(truth), tile_size=256, halo=16, points_per_side=128, region=region)
    labels = np.asarray(result.labels)
    assert labels.shape == truth.shape
    expected = touching(truth, region)
    assert_reproduces(expected, labels)
    grid = samkit.Session(image, OracleModel(truth), tile_size=256, halo=16).grid
    assert len(result.windows) < len(grid)  # only the windows the region's objects need
    outside = (labels > 0) & ~(expected > 0)
    assert not outside.any()
    # objects crossing the region's edge reach beyond the windows covering it: they were followed
    y0, x0, y1, x1 = region
    assert (expected[:y0] > 0).any() and (expected[:, x1:] > 0).any()


def test_cancel_stops_after_the_window_in_progress_and_writes_nothing(scene, tmp_path):
    image, truth = scene
    cancel = threading.Event()
    seen = []

    def progress(done, total, eta):
        seen.append(done)
        if done == 2:
            cancel.set()

    out = tmp_path / "labels"
    with pytest.raises(Cancelled, match="cancelled"):
        samkit.segment_all(image, OracleModel(truth), tile_size=256, halo=16, out=out, cancel=cancel, progress=progress)
    assert seen == [1, 2]
    assert not out.exists()
    assert issubclass(Cancelled, samkit.errors.SamkitError)
    cancel.clear()  # the same folder works afterwards
    samkit.segment_all(image[:300, :300], OracleModel(truth[:300, :300]), out=out, cancel=cancel)
    assert samkit.LabelImage.open(out).shape == (300, 300)


def test_bad_regions_are_refused(scene):
    image, truth = scene
    with pytest.raises(InvalidPromptError, match="holds no pixel"):
        samkit.segment_all(image, OracleModel(truth), region=(2000, 0, 2100, 50))
    with pytest.raises(InvalidPromptError, match="give \\(y0, x0, y1, x1\\)"):
        samkit.segment_all(image, OracleModel(truth), region=(1, 2, 3))
