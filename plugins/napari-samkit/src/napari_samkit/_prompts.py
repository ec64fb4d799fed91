"""Bringing the engine's prompts in line with the points layer.

A layer event says little about what changed (napari sends the whole data),
so the layer's points replace the engine's in one call: one decode per
change, whatever the change was. The box is kept.
"""

from __future__ import annotations


def apply_points(annotation, wanted) -> None:
    """Change ``annotation``'s points into ``wanted``, a list of (y, x, 1 object / 0 background)."""
    have = [(y, x, label) for (y, x), label in zip(annotation.points, annotation.point_labels)]
    if list(map(tuple, wanted)) == have:
        return  # e.g. a selection change: nothing to decode
    annotation.set_prompts([w[:2] for w in wanted], [w[2] for w in wanted], annotation.box)
