"""Click -> overlay latency of the Jupyter annotator, measured in a real browser.

    python benchmarks/widget.py                 # all cases, 30 clicks each
    python benchmarks/widget.py --cases oracle --clicks 50

JupyterLab runs on 127.0.0.1 and headless Chromium opens a notebook with an
annotator (the harness of tests/test_widget_browser.py). For each click, the
page dispatches mousedown + mouseup on the canvas and times, with
``performance.now()``, until a canvas pixel of the object changes (one away
from the click: the prompt's dot there is drawn before decoding): the whole
round trip (browser -> kernel -> decode -> render -> browser -> paint).
The tile is embedded before the clicks (cached tile).

Cases, all on real DSB2018 nuclei:

* ``oracle``: the shipped 520 x 696 image, the oracle model (ground truth);
* ``sam``: the same image, SAM ViT-B (random weights) decoding every click on
  CPU; the mask shown is the ground-truth nucleus, so it has a real size
  (``_models.SamDecoderOracle``: SAM's cost, real objects);
* ``huge``: a 20480 x 20480 image (the DSB mosaic repeated, read lazily),
  SAM ViT-B decoder as in ``sam``, the view at 1:1 in its middle.

For comparison, the same clicks decoded in the kernel alone (``Session.segment``
without the browser) are timed in the same run. Prints p50 / p95 per case and
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from jupyter_browser import CLICK_LATENCY_JS, JupyterLab, NotebookPage, launch, missing, write_notebook  # noqa: E402

COMMON = f"""\
import sys, time
import numpy as np
import torch
from scipy import ndimage
sys.path.insert(0, {str(HERE)!r})
sys.path.insert(0, {str(HERE.parent / "tests")!r})
from jupyter_browser import check_pixel
import samkit
from samkit.testing import OracleModel
torch.set_num_threads({{threads}})
image, truth = samkit.data.nuclei()
"""
CASES = {
    "oracle": "model = OracleModel(truth)\n",
    "sam": (
        "from _models import SamDecoderOracle\nfrom samkit.models.sam import build_sam\n"
        "torch.manual_seed(0)\nmodel = SamDecoderOracle(build_sam('vit_b').eval(), truth)\n"
    ),
    "huge": (
        "from _models import SamDecoderOracle\nfrom _data import Repeated, dsb_mosaic\n"
        "from samkit.models.sam import build_sam\n"
        "base, base_truth = dsb_mosaic((4096, 4096))\n"
        "image, truth = Repeated(base, (20480, 20480)), Repeated(base_truth, (20480, 20480))\n"
        "torch.manual_seed(0)\nmodel = SamDecoderOracle(build_sam('vit_b').eval(), truth)\n"
    ),
}
START = """\
annotator = samkit.Annotator(image, model, prefetch=False, canvas_size=(600, 800))
annotator.show(image.shape[0] / 2, image.shape[1] / 2, zoom=1.0 if image.shape[0] > 4096 else annotator.viewport.zoom)
y0, x0, y1, x1 = annotator.viewport.visible()
annotator.session.embed((y0 + (y1 - y0) // 2, x0 + (x1 - x0) // 2, y0 + (y1 - y0) // 2 + 1, x0 + (x1 - x0) // 2 + 1))
annotator"""
TARGETS = """\
def _targets():
    y0, x0, y1, x1 = annotator.viewport.visible()
    view = np.asarray(truth[y0:y1, x0:x1])
    index = annotator.session.windows(((y0 + y1) // 2, (x0 + x1) // 2, (y0 + y1) // 2 + 1, (x0 + x1) // 2 + 1))[0]
    wy0, wx0, wy1, wx1 = annotator.session.grid.window(index)
    out = []
    for label, box in enumerate(ndimage.find_objects(view), 1):
        if box is None:
            continue
        depth = ndimage.distance_transform_edt(np.pad(view[box] == label, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(np.argmax(depth), depth.shape)
        y, x = y0 + box[0].start + int(y), x0 + box[1].start + int(x)
        h, w = annotator.session.shape  # away from interior window edges: decoded in the embedded window alone
        if (wy0 + 140 * (wy0 > 0) <= y < wy1 - 140 * (wy1 < h)) and (wx0 + 140 * (wx0 > 0) <= x < wx1 - 140 * (wx1 < w)):
            check = check_pixel(view, label, (y - y0, x - x0), annotator.viewport.zoom)  # off the prompt's dot
            if check is not None:
                out.append((y, x, *annotator.viewport.to_canvas(y + 0.5, x + 0.5),
                            *annotator.viewport.to_canvas(y0 + check[0] + 0.5, x0 + check[1] + 0.5)))
    return out
"""
REDRAW = """\
def _redraw_ms(zooms, repeats=5):
    # one frame at each zoom: render from the best source, encode, send (the overview may still be filling)
    out = {}
    cy, cx = annotator.viewport.center
    for zoom in zooms:
        annotator.viewport.zoom = max(zoom, annotator.viewport.min_zoom)
        annotator.viewport.center_on(cy, cx)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            annotator.redraw()
            times.append((time.perf_counter() - t0) * 1000)
        out[str(zoom)] = round(float(np.median(times)), 1)
    return out
"""
KERNEL_ONLY = """\
def _kernel_ms(points):
    times = []
    for y, x in points:
        t0 = time.perf_counter()
        annotator.session.segment(points=[[y, x]], labels=[1])
        times.append((time.perf_counter() - t0) * 1000)
    return times
"""


def run_case(browser, root: Path, name: str, clicks: int, threads: int) -> dict:
    root = root / name  # a server of its own: no tab of another case restored in the page
    root.mkdir()
    notebook = f"{name}.ipynb"
    write_notebook(root / notebook, [COMMON.format(threads=threads) + CASES[name] + START])
    with JupyterLab(root) as lab:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        nb = NotebookPage(page, lab, notebook)
        nb.run_all()
        page.wait_for_selector(".samkit-canvas", timeout=600_000)
        deadline = time.monotonic() + 900
        while not nb.value("bool(annotator.session.embedded().any())"):
            if time.monotonic() > deadline:
                raise RuntimeError("the tile was not embedded within 15 minutes")
            time.sleep(1)
        nb.execute(TARGETS + KERNEL_ONLY)
        targets = nb.value("_targets()")
        if not targets:
            raise RuntimeError(f"{name}: no object to click in the view")
        browser_ms = []
        for k in range(clicks + 3):  # 3 warm-up clicks
            y, x, row, col, check_row, check_col = targets[k % len(targets)]
            nb.execute("annotator.clear()")
            time.sleep(0.2)
            ms = page.evaluate(CLICK_LATENCY_JS, [".samkit-canvas", col, row, check_col, check_row])
            if ms is None:
                raise RuntimeError(f"{name}: a click did not change the canvas within 10 s")
            if k >= 3:
                browser_ms.append(ms)
            deadline = time.monotonic() + 30
            while not nb.value("annotator.annotation.mask is not None and not annotator.annotation.decoding"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name}: decoding did not finish")
                time.sleep(0.05)
        points = [[t[0], t[1]] for t in targets[:clicks]]
        kernel_ms = nb.value(f"_kernel_ms({points})")
        nb.execute(REDRAW)
        redraw_ms = nb.value("_redraw_ms([1.0, 0.25, 0.05, 0.0])")  # 0: the whole image
        page.close()
    return {
        "case": name, "clicks": clicks,
        "browser_p50_ms": round(float(np.median(browser_ms)), 1),
        "browser_p95_ms": round(float(np.percentile(browser_ms, 95)), 1),
        "kernel_segment_p50_ms": round(float(np.median(kernel_ms)), 1),
        "redraw_ms_by_zoom": redraw_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    why = missing()
    if why:
        sys.exit(f"cannot run: {why}")
    from playwright.sync_api import sync_playwright

    results = []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = launch(playwright)
        for name in args.cases:
            result = run_case(browser, Path(folder), name, args.clicks, args.threads)
            results.append(result)
            print(f"{name:>7}: click -> overlay in the browser p50 {result['browser_p50_ms']} ms, "
                  f"p95 {result['browser_p95_ms']} ms; Session.segment alone in the kernel p50 "
                  f"{result['kernel_segment_p50_ms']} ms ({args.clicks} clicks); one frame (render + send) "
                  f"by zoom: {result['redraw_ms_by_zoom']} ms", flush=True)
        browser.close()
    print(json.dumps({"benchmark": "widget", "machine": platform.machine(), "threads": args.threads,
                      "results": results}))


if __name__ == "__main__":
    main()
