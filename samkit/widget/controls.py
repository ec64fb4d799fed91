"""The buttons, sliders and keys of the annotator: built here, wired in ``annotator.py``."""

from __future__ import annotations

import ipywidgets as widgets

MODES = {"positive": "+ point", "negative": "− point", "pan": "pan", "erase": "erase"}

# key -> action name (Annotator methods of the same name, without arguments)
KEYS = {
    "Enter": "commit",
    "Escape": "clear",
    "z": "undo",
    "Backspace": "undo",
    "y": "redo",
    "n": "next_label",
    "+": "zoom_in",
    "=": "zoom_in",
    "-": "zoom_out",
    "0": "fit",
    "ArrowUp": "pan_up",
    "ArrowDown": "pan_down",
    "ArrowLeft": "pan_left",
    "ArrowRight": "pan_right",
    "p": "mode_positive",
    "m": "mode_negative",
    "h": "mode_pan",
    "e": "mode_erase",
}

HELP = (
    "<b>Click</b> an object (+ point), <b>drag</b> a box around it; switch to − point to exclude a part. "
    "<b>Enter</b> commits, <b>Esc</b> clears, <b>z</b> undo, <b>y</b> redo, <b>n</b> next label, "
    "<b>+ / − / 0</b> zoom in / out / fit, <b>arrows</b> or pan mode (drag) move, mouse wheel zooms; "
    "modes: <b>p</b> + point, <b>m</b> − point, <b>h</b> pan, <b>e</b> erase (click an object)."
)


def _button(description: str, tooltip: str, icon: str = "") -> widgets.Button:
    width = "auto" if description else "36px"  # an icon alone in an "auto" button is cut to an ellipsis
    return widgets.Button(description=description, tooltip=tooltip, icon=icon, layout=widgets.Layout(width=width))


class Controls:
    """Every control of the annotator, as attributes; ``rows`` lays them out."""

    def __init__(self, channel_options: list[tuple[str, tuple[int, ...]]], value_bounds: tuple[float, float],
                 contrast: tuple[float, float], integer: bool):
        self.mode = widgets.ToggleButtons(
            options=[(label, value) for value, label in MODES.items()], value="positive",
            tooltips=["left click: object", "left click: not the object", "drag to move the view", "click an object to erase it"],
            style={"button_width": "70px"},
        )
        self.commit = _button("Commit", "write the current object into the labels (Enter)", "check")
        self.undo = _button("Undo", "undo the last prompt, else the last commit (z)", "undo")
        self.redo = _button("Redo", "redo (y)", "repeat")
        self.clear = _button("Clear", "drop the current prompts (Esc)", "times")
        self.next_label = _button("Next label", "start a new object (n)", "plus")
        self.zoom_in = _button("", "zoom in (+)", "search-plus")
        self.zoom_out = _button("", "zoom out (−)", "search-minus")
        self.fit = _button("", "whole image (0)", "expand")
        self.zoom = widgets.HTML(layout=widgets.Layout(width="260px"))
        self.channels = widgets.Dropdown(options=channel_options, description="channels", layout=widgets.Layout(width="220px"))
        slider = widgets.IntRangeSlider if integer else widgets.FloatRangeSlider
        self.contrast = slider(
            value=contrast, min=value_bounds[0], max=value_bounds[1], description="contrast",
            continuous_update=False, layout=widgets.Layout(width="420px"),
        )
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="200px"))
        self.progress_text = widgets.HTML("embeddings: none yet")
        self.embed_view = _button("Embed view", "embed the tiles in view, in the background")
        self.embed_all = _button("Embed all", "embed every tile of the image, in the background")
        self.cancel = _button("Cancel", "stop embedding")
        self.status = widgets.HTML()
        self.status.add_class("samkit-status")
        self.hover = widgets.HTML()
        self.help = widgets.HTML(f"<small>{HELP}</small>")

    def rows(self) -> list[widgets.Widget]:
        tools = widgets.HBox([self.mode, self.commit, self.undo, self.redo, self.clear, self.next_label])
        view = widgets.HBox([self.zoom_in, self.zoom_out, self.fit, self.zoom, self.channels, self.contrast])
        embedding = widgets.HBox([self.progress, self.progress_text, self.embed_view, self.embed_all, self.cancel])
        return [tools, view, embedding]
