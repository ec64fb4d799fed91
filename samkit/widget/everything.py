"""The annotator's *Segment everything* panel: :func:`samkit.segment_all` over the image or the view.

The run uses the annotator's model, windows and intensity mapping, on a background
thread with a progress bar; what it finds is added to the labels as new objects, with
their scores, in one undoable step (:func:`samkit.engine.editing.add_objects`), where
the user's own objects are kept: the results are edited like any commit (the
semi-automatic stage of a data engine). *current view* is ``segment_all(region=)``:
only the windows over the view, objects touching it kept whole; *Cancel* sets its
``cancel`` event, and the run stops after the window under way, adding nothing.
"""

from __future__ import annotations

import html
import logging
import threading

import ipywidgets as widgets

from ..engine.editing import add_objects
from ..errors import SamkitError

log = logging.getLogger(__name__)

PASSED_ON = ("cache", "channels", "percentiles", "value_range")  # session options segment_all takes too


class EverythingPanel:
    """Segment every object of ``annotator``'s image (or view) in the background."""

    def __init__(self, annotator):
        self.annotator = annotator
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.where = widgets.ToggleButtons(options=[("whole image", "image"), ("current view", "view")], value="image",
                                           style={"button_width": "110px"})  # fmt: skip
        self.start_button = widgets.Button(description="Segment everything", icon="th", layout=widgets.Layout(width="auto"))
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", layout=widgets.Layout(width="auto"),
                                            disabled=True)  # fmt: skip
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="200px"))
        self.message = widgets.HTML()
        self.start_button.on_click(lambda _: self.start())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.widget = widgets.VBox([
            widgets.HBox([self.where, self.start_button, self.cancel_button], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.progress, self.message], layout=widgets.Layout(flex_flow="row wrap")),
        ])  # fmt: skip

    def start(self) -> None:
        """Run :func:`samkit.segment_all` on a thread; the objects found join the labels when it ends."""
        if self.thread is not None and self.thread.is_alive():
            return
        self.stop.clear()
        options = self._options()
        self.start_button.disabled, self.cancel_button.disabled = True, False
        self.message.value = "segmenting…"
        self.thread = threading.Thread(target=self._run, args=(options,), name="samkit-everything", daemon=True)
        self.thread.start()

    def cancel(self) -> None:
        self.stop.set()
        self.message.value = "cancelling after the window under way…"

    def wait(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _options(self) -> dict:
        a = self.annotator
        grid = a.session.grid
        options = {"tile_size": grid.tile_size, "halo": grid.halo, "progress": self._progress, "cancel": self.stop}
        options.update({k: v for k, v in a._session_options.items() if k in PASSED_ON})
        if self.where.value == "view":
            options["region"] = a.viewport.visible()
        return options

    def _progress(self, done: int, total: int, eta) -> None:
        self.progress.max, self.progress.value = max(total, 1), done
        left = f", about {eta:.0f} s left" if eta else ""
        self.message.value = html.escape(f"windows segmented {done}/{total}{left}")

    def _run(self, options: dict) -> None:
        from ..automatic import segment_all

        a = self.annotator
        try:
            found = segment_all(a.session.image, a.session.model, **options)
            added = add_objects(a.labels, found, overwrite=a.annotation.overwrite)
            self.message.value = html.escape(f"found {len(found.objects)} object(s), added {len(added)} "
                                             f"(the others lie under objects already there); U undoes them all")  # fmt: skip
        except SamkitError as e:  # Cancelled among them
            self.message.value = html.escape(str(e))
        except Exception as e:  # a bug: say so, keep the annotator alive
            log.warning("segment everything failed", exc_info=True)
            self.message.value = html.escape(f"segment everything failed ({type(e).__name__}: {e})")
        finally:
            self.start_button.disabled, self.cancel_button.disabled = False, True
