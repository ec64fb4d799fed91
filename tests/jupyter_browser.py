"""A real JupyterLab server on 127.0.0.1 and headless Chromium, for the widget's browser tests.

Used by tests/test_widget_browser.py and benchmarks/widget.py. What it needs
(installed by ``make install-system``, which ``make test`` runs): the Debian
package ``chromium`` and the Python packages ``jupyterlab`` and ``playwright``
(whose own browser download is never used: Chromium comes from the system).
All Jupyter and IPython settings live in a temporary folder, so nothing of
the user's configuration is read or written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    if chromium_path() is None:
        return "no Chromium found (make install-system installs the Debian package 'chromium')"
    for module in ("jupyterlab", "notebook", "playwright", "ipycanvas", "ipywidgets"):
        try:
            __import__(module)
        except ImportError:
            return f"Python package {module} missing (pip install -e '.[test,notebook]')"
    return None


class JupyterLab:
    """JupyterLab (or Notebook 7: ``app="notebook"``) serving ``root`` on a free localhost port.

    A context manager: the server stops on exit.
    """

    def __init__(self, root: Path, app: str = "lab"):
        self.root = Path(root)
        self.app = app
        self.token = secrets.token_hex(16)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.home = self.root / ".jupyter-home"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> JupyterLab:
        env = dict(os.environ)
        for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
            env[var] = str(self.home / sub)
        env["JUPYTER_PLATFORM_DIRS"] = "1"
        command = [
            sys.executable, "-m", "jupyterlab" if self.app == "lab" else "notebook", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        if self.app == "lab":
            command += ["--LabApp.expose_app_in_browser=True", "--LabApp.news_url=",
                        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        else:
            command += ["--JupyterNotebookApp.expose_app_in_browser=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self.home.mkdir(parents=True, exist_ok=True)
        labconfig = self.home / "config" / "labconfig"  # no "official Jupyter news?" pop-up over the page
        labconfig.mkdir(parents=True, exist_ok=True)
        (labconfig / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        self.log = open(self.home / "server.log", "w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: see {self.home / 'server.log'}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("JupyterLab did not start within 120 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def url(self, notebook: str) -> str:
        where = "lab/tree" if self.app == "lab" else "notebooks"
        return f"http://127.0.0.1:{self.port}/{where}/{notebook}?token={self.token}"


def write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


KERNEL = "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"

EXECUTE_JS = """async (code) => {
  const future = %s.requestExecute({code, store_history: false});
  let out = "";
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === "stream") out += msg.content.text;
    if (t === "error") out += "KERNEL ERROR " + msg.content.ename + ": " + msg.content.evalue;
  };
  await future.done;
  return out;
}""" % KERNEL


class NotebookPage:
    """A notebook open in JupyterLab in a Playwright page, with a line to its kernel."""

    def __init__(self, page, lab: JupyterLab, notebook: str):
        self.page = page
        page.goto(lab.url(notebook))
        page.wait_for_function(f"() => {{ try {{ return {KERNEL}.status === 'idle'; }} catch (e) {{ return false; }} }}",
                               timeout=180_000)

    def run_all(self) -> None:
        self.page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def execute(self, code: str) -> str:
        """Run ``code`` in the notebook's kernel; returns what it printed (errors raise)."""
        out = self.page.evaluate(EXECUTE_JS, code)
        if "KERNEL ERROR" in out:
            raise RuntimeError(out)
        return out

    def value(self, expression: str):
        """The JSON value of a Python ``expression`` evaluated in the kernel."""
        return json.loads(self.execute(f"import json as _json; print(_json.dumps({expression}, default=lambda o: o.tolist()))"))

    def restart_kernel(self) -> None:
        self.page.evaluate(f"async () => {{ await {KERNEL}.restart(); }}")
        self.page.wait_for_function(f"() => {{ try {{ return {KERNEL}.status === 'idle'; }} catch (e) {{ return false; }} }}",
                                    timeout=180_000)

    def cell_types(self) -> list[str]:
        """The type of each cell of the open notebook ("code", "markdown", ...)."""
        return self.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.model.type)")

    def dialog_open(self) -> bool:
        return self.page.evaluate("() => !!document.querySelector('.jp-Dialog')")

    def outputs_text(self) -> str:
        return self.page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n')"
        )


def launch(playwright):
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


# One click at canvas pixel (col, row), then the time until canvas pixel (check_col, check_row)
# changes: pick one inside the object but away from the click, where the prompt's dot is drawn at once.
CLICK_LATENCY_JS = """async ([selector, col, row, checkCol, checkRow]) => {
  const canvas = document.querySelector(selector);
  canvas.scrollIntoView({block: "nearest"});       // a click focuses the canvas, which may scroll the page:
  canvas.focus({preventScroll: true});             // scroll first, then read where the canvas is
  await new Promise(requestAnimationFrame);
  const rect = canvas.getBoundingClientRect();
  const ctx = canvas.getContext("2d");
  const cx = Math.round(checkCol), cy = Math.round(checkRow);
  const before = Array.from(ctx.getImageData(cx, cy, 1, 1).data);
  const t0 = performance.now();
  for (const type of ["mousedown", "mouseup"]) {
    canvas.dispatchEvent(new MouseEvent(type, {clientX: rect.left + col, clientY: rect.top + row, bubbles: true, button: 0}));
  }
  while (performance.now() - t0 < 10000) {
    await new Promise(requestAnimationFrame);
    const now = ctx.getImageData(cx, cy, 1, 1).data;
    if (now.some((v, i) => v !== before[i])) return performance.now() - t0;
  }
  return null;
}"""


def check_pixel(labels, label: int, click, zoom: float, away: float = 10.0):
    """(y, x) of object ``label`` at least ``away`` canvas pixels from ``click``, as deep inside it as possible."""
    import numpy as np
    from scipy import ndimage

    inside = labels == label
    depth = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
    ys, xs = np.indices(labels.shape)
    depth[np.hypot(ys - click[0], xs - click[1]) * zoom < away] = 0
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return (int(y), int(x)) if depth[y, x] >= 2 else None  # not on the edge: rounding to canvas pixels stays inside
