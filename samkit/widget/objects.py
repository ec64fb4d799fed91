"""The annotator's object list: id and colour, editable class name, area; a click shows the object.

One page of rows at a time (newest objects first), so a label image with 100 000
objects costs no more than one with ten. The rows are fixed widgets refilled on
every change of the labels or of their attributes; a class name typed in goes to
:meth:`samkit.LabelImage.set_attributes` (journaled, undoable, exported).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .display import colour_of

PAGE = 8  # rows shown at once


class ObjectRow:
    """One row: a button in the object's colour (its id; click: show it), its class name, its area."""

    def __init__(self, panel):
        self.panel, self.label = panel, None
        self.button = widgets.Button(layout=widgets.Layout(width="58px", height="26px"), tooltip="show this object")
        self.name = widgets.Text(placeholder="class", continuous_update=False, layout=widgets.Layout(width="110px"))
        self.area = widgets.HTML(layout=widgets.Layout(width="70px"))
        self.box = widgets.HBox([self.button, self.name, self.area], layout=widgets.Layout(align_items="center"))
        self.button.on_click(lambda _: self.label and panel.select(self.label))
        self.name.observe(self._renamed, "value")
        self._filling = False

    def show(self, label: int | None, class_name: str, area: int | None) -> None:
        self._filling = True
        try:
            self.label = label
            self.box.layout.display = "none" if label is None else "flex"
            if label is not None:
                self.button.description = str(label)
                self.button.style.button_color = colour_of(label)
                self.name.value = class_name
                self.area.value = f"<small>{area} px</small>" if area is not None else ""
        finally:
            self._filling = False

    def _renamed(self, change) -> None:
        if not self._filling and self.label is not None:
            self.panel.rename(self.label, change["new"])


class ObjectList:
    """The list of committed objects of ``annotator.labels``."""

    def __init__(self, annotator):
        self.annotator = annotator
        self.page = 0
        self.rows = [ObjectRow(self) for _ in range(PAGE)]
        self.title = widgets.HTML()
        self.previous = widgets.Button(icon="chevron-left", tooltip="newer objects", layout=widgets.Layout(width="36px"))
        self.next = widgets.Button(icon="chevron-right", tooltip="older objects", layout=widgets.Layout(width="36px"))
        self.previous.on_click(lambda _: self.turn(-1))
        self.next.on_click(lambda _: self.turn(1))
        header = widgets.HBox([self.title, self.previous, self.next], layout=widgets.Layout(align_items="center"))
        self.widget = widgets.VBox([header, *(r.box for r in self.rows)])
        self.widget.add_class("samkit-objects")

    def refresh(self) -> None:
        """Fill the rows from the labels as they are now."""
        labels = self.annotator.labels
        objects, attributes = labels.objects, labels.attributes
        ids = sorted(objects, reverse=True)
        pages = max(1, -(-len(ids) // PAGE))
        self.page = min(self.page, pages - 1)
        shown = ids[self.page * PAGE : (self.page + 1) * PAGE]
        for row, label in zip(self.rows, shown + [None] * (PAGE - len(shown))):
            name = attributes.get(label, {}).get("class_name", "") if label else ""
            row.show(label, str(name), _area(labels, label, objects[label]) if label else None)
        self.title.value = f"<b>{len(ids)} object(s)</b> · page {self.page + 1}/{pages}"

    def turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        self.refresh()

    def select(self, label: int) -> None:
        self.annotator.select(label)

    def rename(self, label: int, name: str) -> None:
        self.annotator.set_class(label, name)


def _area(labels, label: int, box) -> int:
    """Pixels of object ``label`` (reads its bounding box only)."""
    return int(np.count_nonzero(labels.read(box) == label))
