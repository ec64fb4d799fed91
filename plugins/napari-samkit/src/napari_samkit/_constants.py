"""Names, colours and napari-only keys of the plugin, in one place (the keys both front ends share:
:mod:`samkit.interaction`)."""

POINTS = "samkit points"
BOX = "samkit box"
PREVIEW = "samkit preview"
LABELS = "samkit labels"

POSITIVE_COLOR = "lime"
NEGATIVE_COLOR = "red"
PREVIEW_COLOR = "cyan"
BOX_COLOR = "yellow"

# napari's own undo keys on the samkit labels layer: the same meaning, through samkit's journal (which
# holds the paint edits, commits and erases alike), instead of napari's separate history of that layer
LABELS_UNDO_KEYS = {"Control-Z": "undo", "Control-Shift-Z": "redo"}
