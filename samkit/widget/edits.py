"""The annotator's edits of committed objects: erase, brush and eraser strokes, fill, selection, class names.

A mixin of :class:`~samkit.widget.annotator.Annotator`: each action is one undoable step
of its :class:`~samkit.LabelImage` through :mod:`samkit.engine.editing`, done once per
gesture (on mouse up).
"""

from __future__ import annotations

from .. import interaction
from ..engine import editing
from .guard import guarded


class EditActions:
    """Erase, paint, fill, select and name objects (needs ``labels``, ``annotation``, ``viewport``, ``controls``)."""

    selected: int | None = None  # the object the brush and the fill write

    @guarded
    def erase_at(self, y: float, x: float) -> int:
        """Erase the object at image (y, x); returns its id (0: none there)."""
        interaction.check_point(y, x, self.session.shape)
        label = self.annotation.erase_at(y, x)
        self.say(f"erased object {label}" if label else "no object there to erase")
        return label

    @guarded
    def erase_object(self) -> None:
        """Erase the object under the mouse."""
        self.erase_at(*self.viewport.to_image(*self.gestures.hover))

    def _target(self) -> int:
        """The object the brush and the fill write: the selected one, else a new one (then selected)."""
        if self.selected not in self.labels.objects:
            self.select(None)
            self.selected = self.labels.next_label
        return self.selected

    @guarded
    def edit_stroke(self, points_yx, erase: bool = False) -> None:
        """One brush (or eraser) stroke through image points ``points_yx``, as one undoable step."""
        radius = self.controls.brush_radius.value
        if erase:
            box = editing.erase_pixels(self.labels, points_yx, radius)
        else:
            box = editing.paint(self.labels, points_yx, radius, self._target(), preserve=not self.annotation.overwrite)
        self.say("nothing changed under the stroke" if box is None else
                 f"{'erased pixels' if erase else f'painted object {self.selected}'} in y {box[0]}–{box[2]}, x {box[1]}–{box[3]}")
        if not erase:
            self.select(self.selected, move=False)

    @guarded
    def fill_at(self, y: float, x: float) -> None:
        """Flood the region under image (y, x) (in view) with the selected object."""
        interaction.check_point(y, x, self.session.shape)
        box = editing.fill(self.labels, int(y), int(x), self._target(), region=self.viewport.visible())
        self.say("nothing to fill there" if box is None else f"filled {self.selected} in y {box[0]}–{box[2]}, x {box[1]}–{box[3]}")

    @guarded
    def select(self, label: int | None, move: bool = True) -> None:
        """Select object ``label`` (outlined; the brush paints it) and show it; None: no selection."""
        self.selected = self.painter.highlight = label
        self.painter.labels_layer()
        if label is not None and move and label in self.labels.objects:
            y0, x0, y1, x1 = self.labels.objects[label]
            if not _inside((y0, x0, y1, x1), self.viewport.visible()):
                self.viewport.center_on((y0 + y1) / 2, (x0 + x1) / 2)
                self.view_changed()
            self.say(f"object {label} selected: the brush and the fill paint it")

    @guarded
    def set_class(self, label: int, name: str) -> None:
        """Set the class name of object ``label`` (empty: none), as one undoable step."""
        self.labels.set_attributes({label: {"class_name": name.strip() or None}})
        self.say(f"object {label}: class {name.strip() or '(none)'}")


def _inside(box, view) -> bool:
    return view[0] <= box[0] and view[1] <= box[1] and box[2] <= view[2] and box[3] <= view[3]
