"""The README's main job: `samkit demo` on the shipped real image."""

import numpy as np
import tifffile
import torch
from PIL import Image
from scipy import ndimage

import samkit
import samkit.data
from samkit.cli import main
from samkit.demo import click_points, run_demo
from samkit.models import build_sam


def test_click_points_fall_inside_their_objects():
    _, truth = samkit.data.nuclei()
    clicks = click_points(truth)
    assert len(clicks) == len(np.unique(truth)) - 1 == 30
    assert len({truth[y, x] for y, x in clicks}) == 30 and all(truth[y, x] > 0 for y, x in clicks)


def test_demo_without_checkpoint_uses_classical_fallback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "no SAM checkpoint" in printed and "not SAM" in printed
    labels = tifffile.imread(tmp_path / "out" / "labels.tif")
    image, truth = samkit.data.nuclei()
    assert labels.shape == truth.shape and labels.dtype == np.uint16
    assert len(np.unique(labels)) - 1 >= 20  # one click per nucleus; some clicks merge into earlier objects
    overlay = np.asarray(Image.open(tmp_path / "out" / "overlay.png"))
    assert overlay.shape == image.shape
    assert not np.array_equal(overlay[labels > 0], image[labels > 0])  # objects are tinted
    marked = labels > 0
    marked[tuple(click_points(truth).T)] = True
    far = ~ndimage.binary_dilation(marked, iterations=3)  # away from outlines and click marks
    np.testing.assert_array_equal(overlay[far], image[far])


def test_demo_measures_against_ground_truth(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(tmp_path))
    summary = run_demo(tmp_path / "out", echo=lambda *a: None)
    assert summary["clicks"] == 30
    assert 0.5 <= summary["mean_iou_vs_ground_truth"] <= 1.0  # classical fallback: 0.53 on this image
    table = samkit.read_table(tmp_path / "out" / "objects.csv")
    labels = tifffile.imread(tmp_path / "out" / "labels.tif")
    assert len(table) == summary["objects"] == len(np.unique(labels)) - 1
    np.testing.assert_array_equal(table["area_px2"], np.bincount(labels.ravel())[table["label"]])


def test_demo_with_a_sam_checkpoint_file(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "mobile_sam_random.pt"
    torch.save(build_sam("vit_t").state_dict(), path)  # random weights: the path, not the quality, is tested
    summary = run_demo(tmp_path / "out", model=str(path), device="cpu", echo=lambda *a: None)
    assert summary["model"] == "SAM vit_t (mobile_sam_random.pt)" and summary["clicks"] == 30
    assert (tmp_path / "out" / "overlay.png").is_file()
