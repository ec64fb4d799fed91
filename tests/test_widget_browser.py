"""The Jupyter annotator in a real browser: JupyterLab on 127.0.0.1 + headless Chromium (Playwright).

A notebook opens an Annotator on the shipped DSB2018 image with the oracle
model (ground truth answers); the test clicks nuclei in the page, commits
them with the button, the Enter key and a dragged box, and checks from the
kernel that the labels equal the ground-truth objects. Screenshots go to
``test-artifacts/`` (or $SAMKIT_TEST_ARTIFACTS).
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

import samkit
from jupyter_browser import CLICK_LATENCY_JS, JupyterLab, NotebookPage, check_pixel, launch, missing, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

ARTIFACTS = Path(os.environ.get("SAMKIT_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
CANVAS = ".samkit-canvas"
SETUP = """\
import numpy as np
import samkit
from samkit.testing import OracleModel

image, truth = samkit.data.nuclei()  # DSB2018 ade080c6618c and its ground truth
annotator = samkit.Annotator(image, OracleModel(truth), autosave={autosave!r}, canvas_size=(600, 800))
annotator"""
COMPARE = """\
labels = np.asarray(annotator.labels)
print(_json.dumps({int(l): int(np.bincount(truth[labels == l]).argmax()) if np.array_equal(
    labels == l, truth == np.bincount(truth[labels == l]).argmax()) else -1 for l in np.unique(labels) if l}))
"""


def _innermost(truth):
    points = {}
    for label, box in enumerate(ndimage.find_objects(truth), 1):
        if box is not None:
            depth = ndimage.distance_transform_edt(np.pad(truth[box] == label, 1))[1:-1, 1:-1]
            y, x = np.unravel_index(np.argmax(depth), depth.shape)
            points[label] = (box[0].start + int(y), box[1].start + int(x))
    return points


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, one for the module (Playwright's sync API allows one instance per thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def notebook(browser, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    write_notebook(root / "annotate.ipynb", [SETUP.format(autosave=str(root / "autosave"))])
    with JupyterLab(root) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        nb = NotebookPage(page, lab, "annotate.ipynb")
        nb.run_all()
        page.wait_for_selector(CANVAS, timeout=120_000)
        _wait(lambda: nb.value("annotator.session.embedded().all()"))
        yield nb
        page.close()


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _page_xy(nb, y, x):
    """Page coordinates of the centre of image pixel (y, x), from the kernel's view."""
    row, col = nb.value(f"annotator.viewport.to_canvas({y} + 0.5, {x} + 0.5)")
    box = nb.page.locator(CANVAS).bounding_box()
    return box["x"] + col, box["y"] + row


def _click(nb, y, x):
    nb.page.mouse.click(*_page_xy(nb, y, x))
    _wait(lambda: nb.value("annotator.annotation.mask is not None and not annotator.annotation.decoding"))


def _canvas_pixels(nb) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(nb.page.locator(CANVAS).screenshot())).convert("RGB")).astype(int)


def _save(nb, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    nb.page.screenshot(path=str(ARTIFACTS / name))


def test_three_nuclei_clicked_in_the_page_are_the_ground_truth(notebook):
    nb = notebook
    _, truth = samkit.data.nuclei()
    points = _innermost(truth)
    before = _canvas_pixels(nb)
    chosen = [3, 11, 25]
    # 1: a click and the Commit button
    _click(nb, *points[chosen[0]])
    nb.page.get_by_role("button", name="Commit").click()
    # 2: a click and the Enter key (the canvas has the focus after the click)
    _click(nb, *points[chosen[1]])
    nb.page.keyboard.press("Enter")
    # 3: a box dragged around the object
    ys, xs = np.nonzero(truth == chosen[2])
    start, end = _page_xy(nb, ys.min() - 2, xs.min() - 2), _page_xy(nb, ys.max() + 2, xs.max() + 2)
    nb.page.mouse.move(*start)
    nb.page.mouse.down()
    nb.page.mouse.move(*end, steps=5)
    nb.page.mouse.up()
    _wait(lambda: nb.value("annotator.annotation.mask is not None and not annotator.annotation.decoding"))
    nb.page.get_by_role("button", name="Commit").click()
    _wait(lambda: nb.value("int(annotator.labels.next_label)") == 4)

    found = {int(k): v for k, v in json.loads(nb.execute("import json as _json\n" + COMPARE)).items()}
    assert found == {1: chosen[0], 2: chosen[1], 3: chosen[2]}

    time.sleep(0.5)  # let the page draw the last commit
    after = _canvas_pixels(nb)
    _save(nb, "widget-three-nuclei.png")
    origin, zoom = nb.value("[annotator.viewport.origin, annotator.viewport.zoom]")
    changed = np.abs(after - before).sum(axis=2)
    for label in chosen:
        ys, xs = np.nonzero(ndimage.binary_erosion(truth == label, iterations=2))
        rows = ((ys + 0.5 - origin[0]) * zoom).astype(int)
        cols = ((xs + 0.5 - origin[1]) * zoom).astype(int)
        assert (changed[rows, cols] > 30).mean() > 0.95, f"overlay not drawn over object {label}"
    far = ndimage.binary_dilation(truth > 0, iterations=6)
    ys, xs = np.nonzero(~far)
    rows = np.clip(((ys + 0.5 - origin[0]) * zoom).astype(int), 0, changed.shape[0] - 1)
    cols = np.clip(((xs + 0.5 - origin[1]) * zoom).astype(int), 0, changed.shape[1] - 1)
    assert (changed[rows, cols] > 30).mean() < 0.01, "the canvas changed away from the committed objects"


def test_zoomed_in_click_maps_to_the_right_object(notebook):
    nb = notebook
    _, truth = samkit.data.nuclei()
    points = _innermost(truth)
    committed = set(nb.value("[int(v) for v in np.unique(np.asarray(annotator.labels)) if v]"))
    label = 7
    # zoom in with the button, then move the view onto the object by clicking it on the minimap
    nb.page.locator("button[title='zoom in (+)']").click()
    _wait(lambda: nb.value("annotator.viewport.zoom") > 2)
    y, x = points[label]
    row, col = nb.value(f"samkit.widget.viewport.Viewport.fit(annotator.session.shape, "
                        f"(annotator.minimap.height, annotator.minimap.width)).to_canvas({y}, {x})")
    box = nb.page.locator(".samkit-minimap").bounding_box()
    nb.page.mouse.click(box["x"] + col, box["y"] + row)
    _wait(lambda: abs(nb.value("annotator.viewport.center[0]") - y) < 5)
    y0, x0, y1, x1 = nb.value("annotator.viewport.visible()")
    assert y1 - y0 < 300 and y0 < y < y1 and x0 < x < x1
    _click(nb, *points[label])
    mask = nb.value("annotator.annotation.mask.bbox")
    ys, xs = np.nonzero(truth == label)
    assert mask == [int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1]
    nb.page.get_by_role("button", name="Commit").click()
    _wait(lambda: len(nb.value("[int(v) for v in np.unique(np.asarray(annotator.labels)) if v]")) == len(committed) + 1)
    new = nb.value("int(annotator.labels.next_label) - 1")
    assert nb.value(f"bool(np.array_equal(np.asarray(annotator.labels) == {new}, truth == {label}))")
    _save(nb, "widget-zoomed.png")
    nb.execute("annotator.fit()")


def test_click_to_overlay_latency(notebook):
    """Click -> overlay updated, measured in the page (printed: a benchmark, not an assert on time)."""
    nb = notebook
    _, truth = samkit.data.nuclei()
    points = _innermost(truth)
    nb.execute("annotator.fit(); annotator.clear()")
    zoom = nb.value("annotator.viewport.zoom")
    latencies = []
    for label in list(points)[:24]:
        check = check_pixel(truth, label, points[label], zoom)
        if check is None:
            continue
        row, col = nb.value(f"annotator.viewport.to_canvas({points[label][0]} + 0.5, {points[label][1]} + 0.5)")
        check_row, check_col = nb.value(f"annotator.viewport.to_canvas({check[0]} + 0.5, {check[1]} + 0.5)")
        time.sleep(0.15)
        latencies.append(nb.page.evaluate(CLICK_LATENCY_JS, [CANVAS, col, row, check_col, check_row]))
        _wait(lambda: nb.value("annotator.annotation.mask is not None and not annotator.annotation.decoding"))
        nb.execute("annotator.clear()")
    assert len(latencies) >= 20
    assert all(v is not None for v in latencies), "some clicks never changed the canvas"
    print(f"\nclick -> overlay in the browser (oracle, cached tile, {len(latencies)} clicks): "
          f"p50 {np.median(latencies):.0f} ms, p95 {np.percentile(latencies, 95):.0f} ms")


def test_bad_clicks_give_messages_not_tracebacks(notebook):
    nb = notebook
    nb.page.locator("button[title='zoom out (−)']").click()
    _wait(lambda: nb.value("annotator.viewport.zoom") < 1)
    box = nb.page.locator(CANVAS).bounding_box()
    nb.page.mouse.click(box["x"] + 3, box["y"] + 3)  # the margin around the zoomed-out image
    _wait(lambda: "outside the image" in nb.value("annotator.controls.status.value"))
    nb.page.get_by_role("button", name="Commit").click()  # nothing to commit
    _wait(lambda: "nothing to commit" in nb.value("annotator.controls.status.value"))
    assert "Traceback" not in nb.outputs_text()
    assert "nothing to commit" in nb.page.locator(".samkit-status").inner_text()
    nb.execute("annotator.fit()")


def test_kernel_restart_reopens_the_autosaved_objects(notebook):
    nb = notebook
    before = nb.value("{int(v): int((np.asarray(annotator.labels) == v).sum()) for v in np.unique(np.asarray(annotator.labels)) if v}")
    assert len(before) == 4
    nb.restart_kernel()
    nb.run_all()
    _wait(lambda: nb.value("'annotator' in globals()"), timeout=120)
    after = nb.value("{int(v): int((np.asarray(annotator.labels) == v).sum()) for v in np.unique(np.asarray(annotator.labels)) if v}")
    assert after == before
    assert "Traceback" not in nb.outputs_text()


def test_notebook_7_runs_the_annotator_too(browser, tmp_path):
    """The same widget in Notebook 7 (not JupyterLab): one click, one commit, the exact object."""
    _, truth = samkit.data.nuclei()
    points = _innermost(truth)
    write_notebook(tmp_path / "annotate.ipynb", [SETUP.format(autosave=str(tmp_path / "autosave"))])
    with JupyterLab(tmp_path, app="notebook") as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        nb = NotebookPage(page, server, "annotate.ipynb")
        nb.run_all()
        page.wait_for_selector(CANVAS, timeout=120_000)
        _wait(lambda: nb.value("annotator.session.embedded().all()"))
        _click(nb, *points[17])
        page.get_by_role("button", name="Commit").click()
        _wait(lambda: nb.value("int(annotator.labels.next_label)") == 2)
        assert nb.value("bool(np.array_equal(np.asarray(annotator.labels) == 1, truth == 17))")
        _save(nb, "widget-notebook7.png")
        page.close()
