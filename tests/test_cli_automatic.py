"""``samkit embed``, ``samkit segment`` and ``samkit measure`` on a real image (classical model: no weights needed)."""

import numpy as np
import pandas as pd
import pytest
import tifffile

import samkit
from samkit.cli import main
from samkit.metrics import evaluate

from conftest import load_dsb


@pytest.fixture
def image_path(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(tmp_path / "cache"))  # no cached SAM: the classical fallback
    first = sorted((real_data / "nuclei" / "dsb2018").glob("*_img.png"))[0].name.split("_img")[0]
    image, truth = load_dsb(real_data, first)
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    return path, truth


# the flags are passed on: 160 px windows make the 256 x 256 image 4 windows, with a prompt every 2.5 px; the commands
# at their default flags are tested in test_defaults.py
ARGS = ["--tile-size", "160", "--halo", "16", "--points-per-side", "64", "--no-progress"]


def test_embed_segment_measure(image_path, tmp_path, capsys):
    image_path, truth = image_path
    assert main(["embed", str(image_path), "--tile-size", "160", "--halo", "16", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "classical fallback" in err and "4 windows embedded" in err
    assert any((tmp_path / "cache" / "embeddings").glob("*.zarr"))

    expected = samkit.segment_all(image_path, "classical", tile_size=160, halo=16, points_per_side=64)
    assert evaluate(truth, expected).ap[0] == 1.0  # the 7 nuclei of this image, through the classical model
    assert main(["segment", str(image_path), "-o", str(tmp_path / "labels.tif"), *ARGS]) == 0
    assert f"{len(expected.objects)} objects" in capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "labels.tif"), np.asarray(expected))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing left behind

    assert main(["segment", str(image_path), "-o", str(tmp_path / "labels.zarr"), *ARGS]) == 0
    assert main(["segment", str(image_path), "-o", str(tmp_path / "folder"), *ARGS]) == 0
    np.testing.assert_array_equal(np.asarray(samkit.LabelImage.open(tmp_path / "folder")), np.asarray(expected))

    for source in ("labels.tif", "labels.zarr", "folder"):
        table_path = tmp_path / f"{source}.csv"
        assert main(["measure", str(tmp_path / source), str(image_path), "-o", str(table_path)]) == 0
        table = pd.read_csv(table_path)
        assert len(table) == len(expected.objects)
        assert sorted(table["label"]) == sorted(expected.objects)


def test_progress_bar_and_errors(image_path, tmp_path, capsys):
    image_path, _ = image_path
    assert main(["segment", str(image_path), "-o", str(tmp_path / "a.tif"), *ARGS[:-1]]) == 0
    assert "segmenting" in capsys.readouterr().err  # the bar

    def error_of(argv):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("samkit: error: ")
        return lines[-1]

    assert "exists" in error_of(["segment", str(image_path), "-o", str(tmp_path / "a.tif"), *ARGS])
    assert "use a .tif" in error_of(["segment", str(image_path), "-o", str(tmp_path / "a.png"), *ARGS])
    assert "no such" in error_of(["segment", str(tmp_path / "missing.tif"), "-o", str(tmp_path / "b.tif")]).lower()
    assert main(["segment", str(image_path)]) == 2  # -o is required
    assert "points_per_side=0" in error_of(["segment", str(image_path), "-o", str(tmp_path / "c.tif"),
                                            "--points-per-side", "0"])  # fmt: skip
