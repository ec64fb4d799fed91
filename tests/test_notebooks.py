"""The notebooks in notebooks/ run top to bottom (nbclient), as a user would run them."""

from __future__ import annotations

from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient", reason="executing notebooks needs nbclient (pip install -e '.[test]')")
pytest.importorskip("ipycanvas", reason="the notebooks need the notebook extra: pip install -e '.[notebook]'")
import nbformat  # noqa: E402

from conftest import REAL_DATA  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path):
    # the notebook runs in a copy of notebooks/, with ../../shared/data (the shipped test images) beside the repo
    folder = tmp_path / "repo" / "notebooks"
    folder.mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(REAL_DATA)
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}})
    client.execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    texts = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    if path.stem == "02_large_image":
        assert "identical to the ground truth: True" in texts
    if path.stem == "03_measure":
        assert "µm True" in texts
    if path.stem == "04_tree_crowns":
        assert "areas = pixels x pixel area: True" in texts and "GeoPackage reads back: True" in texts
