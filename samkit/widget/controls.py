"""The buttons, sliders and read-outs of the annotator: built here, wired in ``annotator.py``.

Rows wrap (CSS flex-wrap), so the toolbar fits a notebook column of any width;
every tooltip names the key of :mod:`samkit.interaction` that does the same.
"""

from __future__ import annotations

import html

import ipywidgets as widgets

from ..interaction import ACTIONS, key_help

# tool -> (button text, the interaction action whose key selects it, what a click or drag does)
MODES = {
    "point": ("point", "point_mode", "click: a point on (+) or off (−) the object; drag: a box"),
    "box": ("box", "box_mode", "drag: a box around the object"),
    "pan": ("pan", "pan_mode", "drag: move the view"),
    "brush": ("brush", "brush", "drag: paint the selected object (a new one when none is selected)"),
    "eraser": ("eraser", "eraser", "drag: set pixels to background"),
    "fill": ("fill", "fill", "click: flood the region under the mouse with the selected object"),
    "remove": ("remove", None, "click: erase the whole object"),
}
BRUSH_RADIUS = (1, 64, 6)  # min, max, start (image pixels)


def tip(text: str, action: str | None) -> str:
    """A tooltip: ``text`` and the key of ``action``."""
    return f"{text} ({ACTIONS[action].key})" if action else text


def button(description: str, tooltip: str, icon: str = "", action: str | None = None) -> widgets.Button:
    width = "auto" if description else "36px"  # an icon alone in an "auto" button is cut to an ellipsis
    return widgets.Button(description=description, tooltip=tip(tooltip, action), icon=icon,
                          layout=widgets.Layout(width=width))  # fmt: skip


def row(children, **layout) -> widgets.HBox:
    """Controls side by side, wrapping onto the next line when the column is narrow."""
    return widgets.HBox(children, layout=widgets.Layout(flex_flow="row wrap", align_items="center", **layout))


def key_help_html() -> str:
    """The always-visible key help, from the one key table."""
    items = " · ".join(f"<b>{html.escape(key)}</b> {html.escape(text)}" for key, text in key_help("jupyter"))
    return f"<div style='line-height:1.3'><small>Keys (with the mouse over the annotator or after a click in it): {items}</small></div>"


class Controls:
    """Every control of the annotator, as attributes; ``rows`` lays them out."""

    def __init__(self, channel_options: list[tuple[str, tuple[int, ...]]], value_bounds: tuple[float, float],
                 contrast: tuple[float, float], integer: bool):
        self.mode = widgets.ToggleButtons(
            options=[(label, value) for value, (label, _, _) in MODES.items()], value="point",
            tooltips=[tip(text, action) for _, action, text in MODES.values()], style={"button_width": "70px"},
        )
        self.sign = widgets.ToggleButtons(options=[("+", True), ("−", False)], value=True,
                                          tooltips=[tip("points on the object", "toggle_sign"),
                                                    tip("points off the object", "toggle_sign")],
                                          style={"button_width": "38px"})  # fmt: skip
        self.commit = button("Commit", "write the current object into the labels", "check", "commit")
        self.undo = button("Undo", "undo the last prompt, else the last change of the labels", "undo", "undo")
        self.redo = button("Redo", "redo", "repeat", "redo")
        self.clear = button("Clear", "drop the current prompts", "times", "clear")
        self.next_label = button("Next label", "start a new object", "plus", "next_label")
        self.zoom_in = button("", "zoom in", "search-plus", "zoom_in")
        self.zoom_out = button("", "zoom out", "search-minus", "zoom_out")
        self.fit = button("", "whole image", "expand", "fit")
        self.zoom = widgets.HTML(layout=widgets.Layout(width="250px"))
        self.brush_radius = widgets.IntSlider(
            value=BRUSH_RADIUS[2], min=BRUSH_RADIUS[0], max=BRUSH_RADIUS[1], description="brush px",
            tooltip="brush radius in image pixels ([ / ])", continuous_update=False, layout=widgets.Layout(width="230px"),
        )
        self.show_labels = widgets.Checkbox(value=True, description="labels", indent=False,
                                            tooltip=tip("show the committed labels", "toggle_labels"),
                                            layout=widgets.Layout(width="70px"))  # fmt: skip
        self.labels_opacity = _opacity("labels opacity")
        self.show_preview = widgets.Checkbox(value=True, description="preview", indent=False,
                                             layout=widgets.Layout(width="74px"))  # fmt: skip
        self.preview_opacity = _opacity("preview opacity")
        self.channels = widgets.Dropdown(options=channel_options, description="channels", layout=widgets.Layout(width="220px"))
        slider = widgets.IntRangeSlider if integer else widgets.FloatRangeSlider
        self.contrast = slider(
            value=contrast, min=value_bounds[0], max=value_bounds[1], description="contrast",
            continuous_update=False, layout=widgets.Layout(width="400px"),
        )
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(width="160px"))
        self.progress_text = widgets.HTML()
        self.embed_view = button("Embed view", "embed the tiles in view, in the background")
        self.embed_all = button("Embed all", "embed every tile of the image, in the background")
        self.cancel = button("Cancel", "stop embedding")
        self.status = widgets.HTML()
        self.status.add_class("samkit-status")
        self.hover = widgets.HTML(layout=widgets.Layout(min_height="20px"))
        self.hover.add_class("samkit-hover")
        self.help = widgets.HTML(key_help_html())
        self.help.add_class("samkit-keys")

    def rows(self) -> list[widgets.Widget]:
        return [
            row([self.mode, self.sign]),
            row([self.commit, self.undo, self.redo, self.clear, self.next_label, self.brush_radius]),
            row([self.zoom_in, self.zoom_out, self.fit, self.zoom, self.show_labels, self.labels_opacity,
                 self.show_preview, self.preview_opacity]),  # fmt: skip
            row([self.channels, self.contrast]),
            row([self.progress, self.progress_text, self.embed_view, self.embed_all, self.cancel]),
        ]


def _opacity(description: str) -> widgets.FloatSlider:
    return widgets.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.05, readout=False, tooltip=description,
                               continuous_update=False, layout=widgets.Layout(width="90px"))  # fmt: skip
