"""Bringing the engine's prompts in line with what the user did to the points layer.

A layer event says little about what changed (napari sends the whole data),
so the points are compared: appended points are added, moved points moved,
removed points removed, each with one engine call (one decode); anything
else (e.g. signs flipped) starts the object's prompts over.
"""

from __future__ import annotations


def apply_points(annotation, wanted) -> None:
    """Change ``annotation``'s points into ``wanted``, a list of (y, x, 1 object / 0 background)."""
    have = [(y, x, label) for (y, x), label in zip(annotation.points, annotation.point_labels)]
    n, m = len(have), len(wanted)
    if m >= n and wanted[:n] == have:
        for y, x, label in wanted[n:]:
            annotation.add_point(y, x, bool(label))
    elif m == n and [p[2] for p in have] == [p[2] for p in wanted]:
        for i, (old, new) in enumerate(zip(have, wanted)):
            if old != new:
                annotation.move_point(i, new[0], new[1])
    elif m < n and (removed := removed_indices(have, wanted)) is not None:
        for i in reversed(removed):
            annotation.remove_point(i)
    else:  # several changes at once: start over, keeping the box
        box = annotation.box
        annotation.clear()
        for y, x, label in wanted:
            annotation.add_point(y, x, bool(label))
        if box is not None:
            annotation.set_box(box)


def removed_indices(have, wanted):
    """Indices of ``have`` whose removal leaves ``wanted``; None if removing cannot give it."""
    removed, j = [], 0
    for i, item in enumerate(have):
        if j < len(wanted) and wanted[j] == item:
            j += 1
        else:
            removed.append(i)
    return removed if j == len(wanted) else None
