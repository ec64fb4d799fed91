"""The notebooks in notebooks/ run top to bottom (nbclient), as a user would run them."""

from __future__ import annotations

from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="executing notebooks needs nbclient (pip install -e '.[test]')")
pytest.importorskip("ipycanvas", reason="the notebooks need the notebook extra: pip install -e '.[notebook]'")
import nbformat  # noqa: E402

from conftest import REAL_DATA  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def run(path: Path, folder: Path):
    """Run the notebook at ``path`` in ``folder``; return it with its outputs."""
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0]
    return notebook


@pytest.fixture
def folder(tmp_path):
    """A copy of notebooks/ to run in, with ../../shared/data (the shipped test images) beside the repo."""
    folder = tmp_path / "repo" / "notebooks"
    folder.mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(REAL_DATA)
    return folder


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, folder):
    notebook = run(path, folder)
    texts = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    if path.stem == "02_large_image":
        assert "identical to the ground truth: True" in texts
    if path.stem == "03_measure":
        assert "µm True" in texts
    if path.stem == "04_tree_crowns":
        assert "areas = pixels x pixel area: True" in texts and "GeoPackage reads back: True" in texts


def test_the_quickstart_runs_twice_and_keeps_its_objects(folder):
    """Running a notebook again must work and lose nothing: the annotator reopens its own autosave folder, and the
    copy saved at the end replaces the first run's copy (it once failed: AutosaveError ... is not empty)."""
    import numpy as np

    import samkit

    path = next(p for p in NOTEBOOKS if p.stem == "01_quickstart")
    run(path, folder)
    first = np.asarray(samkit.LabelImage.open(folder / "quickstart-labels"))
    assert len(np.unique(first)) - 1 == 3
    run(path, folder)
    again = samkit.LabelImage.open(folder / "quickstart-labels")
    np.testing.assert_array_equal(np.asarray(again), first)
    copy = samkit.LabelImage.open(folder / "quickstart-copy")
    np.testing.assert_array_equal(np.asarray(copy), first)
    assert [e["op"] for e in again.log] == [e["op"] for e in copy.log] == ["create", "commit", "commit", "commit"]
