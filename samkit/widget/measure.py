"""The annotator's measurements: a table that follows every change, a histogram and a scatter plot, CSV export.

The table is :func:`samkit.measure` of the labels (with the image as intensity and the
objects' attributes as columns), recomputed on a background thread after each commit,
undo, erase or edit; changes that arrive while it runs are coalesced into one more run.
The plots are :func:`samkit.measurement.plots.histogram` and ``scatter`` of the chosen columns.
"""

from __future__ import annotations

import html
import io
import logging
import threading

import ipywidgets as widgets

from ..errors import SamkitError

log = logging.getLogger(__name__)

ROWS_SHOWN = 8


class MeasurePanel:
    """Measure ``annotator``'s objects; ``widget`` is what it shows."""

    def __init__(self, annotator):
        self.annotator = annotator
        self.table = None
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self.summary = widgets.HTML("<i>no objects yet</i>")
        self.x = widgets.Dropdown(description="histogram", layout=widgets.Layout(width="260px"))
        self.y = widgets.Dropdown(description="against", layout=widgets.Layout(width="260px"))
        self.histogram = widgets.Image(format="png", layout=widgets.Layout(max_width="340px"))
        self.scatter = widgets.Image(format="png", layout=widgets.Layout(max_width="340px"))
        self.path = widgets.Text(value="objects.csv", description="CSV file", layout=widgets.Layout(width="300px"))
        self.export = widgets.Button(description="Export CSV", icon="download", layout=widgets.Layout(width="auto"))
        self.message = widgets.HTML()
        self.x.observe(lambda _: self.plot(), "value")
        self.y.observe(lambda _: self.plot(), "value")
        self.export.on_click(lambda _: self.export_csv())
        plots = widgets.HBox([self.histogram, self.scatter], layout=widgets.Layout(flex_flow="row wrap"))
        self.widget = widgets.VBox([
            self.summary, widgets.HBox([self.x, self.y], layout=widgets.Layout(flex_flow="row wrap")), plots,
            widgets.HBox([self.path, self.export, self.message], layout=widgets.Layout(flex_flow="row wrap")),
        ])  # fmt: skip
        self.widget.add_class("samkit-measure")

    def refresh(self) -> None:
        """Measure again in the background (called after every change of the labels)."""
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._run, name="samkit-measure", daemon=True).start()

    def wait(self, timeout: float = 30.0) -> None:
        """Wait until the table is up to date (for scripts and tests)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return
            time.sleep(0.02)

    def _run(self) -> None:
        while True:
            try:
                self._measure()
            except SamkitError as e:
                self.message.value = html.escape(str(e))
            except Exception as e:  # a bug: say so, keep the annotator alive
                log.warning("measuring failed", exc_info=True)
                self.message.value = html.escape(f"measuring failed ({type(e).__name__}: {e})")
            with self._lock:
                if not self._again:
                    self._running = False
                    return
                self._again = False

    def _measure(self) -> None:
        if not self.annotator.labels.objects:
            self.table = None
            self.summary.value = "<i>no objects yet</i>"
            self.histogram.value = self.scatter.value = b""
            return
        table = self.annotator.measure()
        shown = table.tail(ROWS_SHOWN).to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0)
        self.summary.value = (f"<b>{len(table)} object(s) measured</b> (newest {min(len(table), ROWS_SHOWN)} shown)"
                              f"<div style='overflow-x:auto;max-width:100%'><small>{shown}</small></div>")  # fmt: skip
        numeric = [c for c in table.columns if c != "label" and table[c].dtype.kind in "fiu"]
        self.table = None  # the menus change below: plot once, at the end
        for menu, start in ((self.x, "area"), (self.y, "mean_intensity")):
            keep = menu.value if menu.value in numeric else next((c for c in numeric if c.startswith(start)), None)
            menu.options = numeric
            menu.value = keep or (numeric[0] if numeric else None)
        self.table = table
        self.plot()

    def plot(self) -> None:
        from ..measurement.plots import histogram, scatter

        table = self.table
        if table is None or self.x.value is None:
            return
        self.histogram.value = _png(histogram(table, self.x.value))
        if self.y.value is not None:
            self.scatter.value = _png(scatter(table, self.x.value, self.y.value))

    def export_csv(self) -> None:
        from ..measurement import export_table

        self.wait()
        if self.table is None:
            self.message.value = "nothing to export yet"
            return
        try:
            path = export_table(self.table, self.path.value, overwrite=True)
        except (SamkitError, OSError) as e:
            self.message.value = html.escape(str(e))
            return
        self.message.value = html.escape(f"wrote {len(self.table)} rows to {path}")


def _png(figure) -> bytes:
    figure.set_size_inches(4.2, 3.0)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    return buffer.getvalue()
