"""The annotator's model picker: the models of :func:`samkit.interaction.model_choices`, loaded on request.

Choosing a model and pressing *Load* is the user asking for it: a registry model not
yet in the cache is downloaded then (never before). Loading runs on a background
thread; the labels stay, the prompts are dropped, the new model's embeddings start afresh.
"""

from __future__ import annotations

import html
import logging
import threading

import ipywidgets as widgets

from ..errors import SamkitError
from ..interaction import describe, model_choices

log = logging.getLogger(__name__)


class ModelPicker:
    """A menu of models and a *Load* button for ``annotator``; ``label`` shows the model in use."""

    def __init__(self, annotator):
        self.annotator = annotator
        self.menu = widgets.Dropdown(options=model_choices(), description="model", layout=widgets.Layout(width="330px"),
                                     style={"description_width": "40px"})  # fmt: skip
        self.load = widgets.Button(description="Load", icon="download", tooltip="use the chosen model",
                                   layout=widgets.Layout(width="auto"))  # fmt: skip
        self.label = widgets.HTML()
        self.load.on_click(lambda _: self.start())
        self.widget = widgets.HBox([self.menu, self.load, self.label], layout=widgets.Layout(flex_flow="row wrap",
                                                                                              align_items="center"))
        self.thread: threading.Thread | None = None
        self.show()

    def show(self, note: str = "") -> None:
        text = html.escape(f"in use: {describe(self.annotator.session.model)}", quote=False)
        if note:
            text += f" · <span style='color:#b00020'>{html.escape(note, quote=False)}</span>"
        self.label.value = f"<small>{text}</small>"

    def start(self) -> None:
        """Load the chosen model in the background, then hand it to the annotator."""
        if self.thread is not None and self.thread.is_alive():
            return
        name = self.menu.value
        self.label.value = html.escape(f"loading {name}…")
        self.thread = threading.Thread(target=self._load, args=(name,), name="samkit-load-model", daemon=True)
        self.thread.start()

    def _load(self, name: str) -> None:
        try:
            self.annotator.use_model(name)
        except SamkitError as e:
            self.show(f"could not load {name}: {e}")
            return
        except Exception as e:  # a bug: keep the annotator alive, say what happened
            log.warning("loading %s failed", name, exc_info=True)
            self.show(f"could not load {name} ({type(e).__name__}: {e})")
            return
        self.show()
