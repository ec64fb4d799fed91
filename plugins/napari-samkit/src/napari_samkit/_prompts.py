"""The points and box layers kept in line with the engine's prompts, both ways.

A layer event says little about what changed (napari sends the whole data),
so the layer's points replace the engine's in one call: one decode per
change, whatever the change was. Layers changed from code (after an undo, a
commit, a refused prompt) are changed inside :meth:`PromptLayers.quiet`, so
that doing so does not decode again.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
from napari.layers.base._base_constants import ActionType
from napari.utils.notifications import show_warning
from samkit.errors import InvalidPromptError, SamkitError
from samkit.interaction import check_point, clip_box

from . import _layers

DONE = (ActionType.ADDED, ActionType.CHANGED, ActionType.REMOVED)


def apply_points(annotation, wanted) -> None:
    """Change ``annotation``'s points into ``wanted``, a list of (y, x, 1 object / 0 background)."""
    have = [(y, x, label) for (y, x), label in zip(annotation.points, annotation.point_labels)]
    if list(map(tuple, wanted)) == have:
        return  # e.g. a selection change: nothing to decode
    annotation.set_prompts([w[:2] for w in wanted], [w[2] for w in wanted], annotation.box)


class PromptLayers:
    """Wires a points layer and a box (shapes) layer to a :class:`samkit.Annotation`'s prompts.

    Parameters
    ----------
    annotation : samkit.Annotation
    points, box : napari layers
    source : napari_samkit._source.Source
    status : callable
        Takes the one-line status text.
    """

    def __init__(self, annotation, points, box, source, status: Callable) -> None:
        self.annotation, self.points, self.box, self.source = annotation, points, box, source
        self.status = status
        self.positive = True  # new points mark the object
        self.closed = False
        self._quiet_depth = 0
        points.events.data.connect(self._on_points)
        box.events.data.connect(self._on_box)

    @contextlib.contextmanager
    def quiet(self):
        """Change the prompt layers from code without decoding again."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def _listening(self, event) -> bool:
        return not (self._quiet_depth or self.closed) and event.action in DONE

    def _on_points(self, event) -> None:
        if self._listening(event):
            self.sync_points()

    def sync_points(self) -> None:
        """Bring the engine's points in line with the points layer (one engine call per change)."""
        inside = []
        for point in _layers.read_points(self.points, self.source):
            try:
                inside.append((*check_point(*point[:2], self.source.shape), point[2]))
            except InvalidPromptError as error:
                show_warning(f"samkit: {error}: ignored")
        refused = len(inside) < len(self.points.data)
        try:
            apply_points(self.annotation, inside)
        except SamkitError as error:
            show_warning(f"samkit: {error}")
            refused = True
        if refused:
            self.render()
        self.status("decoding…" if self.annotation.has_prompts else "click an object")

    def _on_box(self, event) -> None:
        if not self._listening(event):
            return
        if len(self.box.data) > 1:  # one box per object: the newest replaces the others
            with self.quiet():
                self.box.selected_data = set(range(len(self.box.data) - 1))
                self.box.remove_selected()
        try:
            if len(self.box.data) == 0:
                self.annotation.set_box(None)
            else:
                raw = _layers.read_box(self.box.data[-1], self.box, self.source)
                box = clip_box(raw, self.source.shape)
                if box is None:
                    show_warning("samkit: the box is outside the image and was ignored")
                    self.render()
                    return
                self.annotation.set_box(box)
                if box != raw:
                    self.render()  # show the part inside the image
        except SamkitError as error:
            show_warning(f"samkit: {error}")
            self.render()
            return
        self.status("decoding…")

    def render(self) -> None:
        """Show the engine's prompts in the points and box layers."""
        annotation = self.annotation
        with self.quiet():
            _layers.write_points(self.points, self.source, annotation.points, annotation.point_labels, self.positive)
            _layers.write_box(self.box, self.source, annotation.box)

    def toggle_sign(self) -> None:
        """Switch new points between object and background; in select mode the selected ones too
        (in add mode napari keeps the point just added selected: it must not flip)."""
        self.positive = not self.positive
        layer = self.points
        layer.feature_defaults = {"positive": self.positive}
        selected = [i for i in sorted(layer.selected_data) if i < len(layer.data)]
        if selected and str(layer.mode) == "select":
            positive = np.asarray(layer.features["positive"], bool).copy()
            positive[selected] = self.positive
            with self.quiet():
                layer.features = {"positive": positive}
                layer.feature_defaults = {"positive": self.positive}
                layer.refresh_colors(update_color_mapping=False)
            self.sync_points()
