"""Every public entry point at the user's defaults, on real data with ground truth.

A user starts with ``Session(image, model)``, ``segment_all(image, model)``,
``Annotator(image, model)`` and ``samkit segment IMAGE -o OUT``: these tests
pass no tile size, halo, grid or flag beyond what the call needs, so that
what a user gets first is what is tested. Tests elsewhere vary the
parameters (small windows so that objects cross many borders, dense prompt
grids); the napari dock widget at its defaults is tested in
``plugins/napari-samkit/tests/test_napari_defaults.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy import ndimage

import samkit
import samkit.automatic
from samkit.cli import main
from samkit.metrics import evaluate
from samkit.testing import OracleModel, mosaic

from conftest import innermost, load_dsb
from test_session import assert_exact, dsb_pairs, objects_to_check

# segment_all at its defaults with the exact oracle on the 2048 x 2048 DSB2018 mosaic below (1433 nuclei), measured
# 2026-12-08: mode 'prompts' (no instance decoder), object size estimated 23 px, 1296 found exactly (recall 0.904;
# 0.335 with SAM's 32 x 32 grid of before), the 1024 prompts of every window spent. docs/content/automatic.md.
DEFAULT_RECALL = 0.904


def cut_by_a_window_border(box, grid) -> bool:
    """Whether a window's edge inside the image runs through the object's bounding box (slices)."""
    for sl, starts, size in zip(box, grid.starts, grid.window_shape):
        edges = {int(s) for s in starts[1:]} | {int(s) + size for s in starts[:-1]}
        if any(sl.start < e < sl.stop for e in edges):
            return True
    return False


@pytest.fixture(scope="module")
def scene(real_data):
    """A 2048 x 2048 mosaic of the real DSB2018 images with exact ground truth: 2 x 2 default windows at least."""
    return mosaic(dsb_pairs(real_data), (2048, 2048))


def test_session_segment_at_defaults_gives_every_clicked_object_whole(scene):
    image, truth = scene
    session = samkit.Session(image, OracleModel(truth))
    assert session.grid.tile_size == 1024 and session.grid.halo == 128 and session.grid.grid_shape == (3, 3)
    chosen, boxes = objects_to_check(truth, session.grid, limit=120)
    cut = [i for i in chosen if cut_by_a_window_border(boxes[i - 1], session.grid)]
    assert len(cut) >= 50
    for i in chosen:
        mask = session.segment(points=[innermost(truth, boxes[i - 1], i)], labels=[1])
        assert_exact(mask, truth, boxes[i - 1], i)
    query = np.array([[boxes[i - 1][0].start, boxes[i - 1][1].start, boxes[i - 1][0].stop, boxes[i - 1][1].stop] for i in cut])
    for i, mask in zip(cut, session.segment(box=query)):
        assert_exact(mask, truth, boxes[i - 1], i)


def test_segment_all_at_defaults_finds_the_nuclei_exactly(scene):
    """At its defaults (1024 px windows) segment_all places its prompts where the image has objects of the
    estimated size (mode 'prompts': the oracle has no instance decoder). The 17 DSB2018 image types of this
    mosaic (fluorescence, brightfield, H&E with many unannotated structures) hold up to 700 nuclei in a
    window: at most 1024 prompts per window find 90 % of them (measured 2026-12-08); every object returned
    is a real nucleus."""
    image, truth = scene
    result = samkit.automatic.run(image, OracleModel(truth))
    assert result.mode == "prompts" and result.decoder_calls().max() <= 1024
    scores = evaluate(truth, result.labels, thresholds=(0.5, 0.99))
    assert scores.fp[0] == 0  # no extra object
    assert scores.fp[1] <= 2  # an object cut by windows may lack the piece a window missed (1 measured)
    total = len(np.unique(truth)) - 1
    assert scores.tp[1] / total >= DEFAULT_RECALL - 0.02, f"recall {scores.tp[1] / total:.3f} at the defaults"


@pytest.fixture
def nuclei_path(real_data, tmp_path, monkeypatch):
    """A real DSB2018 image (520 x 696, 30 nuclei) as a TIFF, with no SAM checkpoint cached."""
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(tmp_path / "samkit-cache"))  # no SAM: the classical fallback
    image, truth = load_dsb(real_data, "ade080c6618c")
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    return path, image, truth


def test_cli_embed_segment_measure_at_defaults(nuclei_path, tmp_path, capsys):
    path, image, truth = nuclei_path
    cache = tmp_path / "embeddings"
    assert main(["embed", str(path), "--cache", str(cache)]) == 0
    err = capsys.readouterr().err
    assert "classical fallback" in err and "1 windows embedded" in err
    assert samkit.Session(path, "classical", cache=cache).embedded().all()  # the store a session at defaults finds

    assert main(["segment", str(path), "-o", str(tmp_path / "labels.tif"), "--cache", str(cache)]) == 0
    written = tifffile.imread(tmp_path / "labels.tif")
    expected = samkit.segment_all(path, "classical", cache=cache)  # the Python call at its defaults
    np.testing.assert_array_equal(written, np.asarray(expected))
    assert f"{len(expected.objects)} objects" in capsys.readouterr().err
    # the classical stand-in (threshold + watershed, not SAM) at its defaults: AP(0.5) 0.389, 14 of the 30 nuclei
    # with 6 false objects (measured 2026-12-03)
    assert evaluate(truth, written, thresholds=(0.5,)).ap[0] >= 0.35

    assert main(["measure", str(tmp_path / "labels.tif"), str(path), "-o", str(tmp_path / "objects.csv")]) == 0
    table = pd.read_csv(tmp_path / "objects.csv")
    reference = samkit.measure(written, image)
    assert list(table["label"]) == list(reference["label"]) == sorted(expected.objects)
    np.testing.assert_array_equal(table["area_px2"], reference["area_px2"])


def test_annotator_at_defaults_commits_the_clicked_objects(real_data):
    pytest.importorskip("ipycanvas", reason="the widget needs the notebook extra: pip install -e '.[notebook]'")
    from test_widget import Page, wait_for

    pairs = [load_dsb(real_data, i) for i in ("ade080c6618c", "1d9eacb3161f", "472b1c5ff988")]
    image, truth = mosaic(pairs, (1200, 1500))  # larger than one default window
    annotator = samkit.Annotator(image, OracleModel(truth))
    grid = annotator.session.grid
    assert grid.tile_size == 1024 and grid.grid_shape == (2, 2)
    boxes = ndimage.find_objects(truth)
    edge = grid.starts[1][0] + grid.tile_size  # the right border of the first column of windows
    crossing = next(i for i, b in enumerate(boxes, 1) if b is not None and b[1].start < edge < b[1].stop)
    corner = next(i for i, b in enumerate(boxes, 1) if b is not None and b[0].start > 1024 and b[1].start > 1100)
    page = Page(annotator)
    chosen = [5, corner, crossing]  # in the first window, only in the last one, across the column border
    for label in chosen:
        annotator.show(*innermost(truth, boxes[label - 1], label))
        page.click(*innermost(truth, boxes[label - 1], label))
        np.testing.assert_array_equal(annotator.annotation.mask.to_array(truth.shape), truth == label)
        page.key("c")  # commit (on a thread)
        wait_for(lambda: f"committed object {chosen.index(label) + 1}" in annotator.controls.status.value)
    expected = np.select([truth == label for label in chosen], [1, 2, 3], 0)
    np.testing.assert_array_equal(np.asarray(annotator.labels), expected)
    annotator.close()


def test_a_smaller_window_gets_a_fitting_default_halo(real_data):
    """tile_size alone (no halo) works: the default halo is 128 px for SAM's 1024 px windows and an
    eighth of smaller ones (a fixed 128 refused every window under 258 px)."""
    image, labels = load_dsb(real_data, "1d9eacb3161f")
    assert samkit.Session(image, OracleModel(labels)).grid.halo == 128
    assert samkit.Session(image, OracleModel(labels), tile_size=256).grid.halo == 32
    assert samkit.Session(image, OracleModel(labels), tile_size=100).grid.halo == 12
    found = np.asarray(samkit.segment_all(image, OracleModel(labels), tile_size=256))
    assert evaluate(labels, found, thresholds=(0.99,)).fp[0] == 0
