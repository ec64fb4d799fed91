"""Names, colours and keys of the plugin, in one place."""

POINTS = "samkit points"
BOX = "samkit box"
PREVIEW = "samkit preview"
LABELS = "samkit labels"

POSITIVE_COLOR = "lime"
NEGATIVE_COLOR = "red"
PREVIEW_COLOR = "cyan"
BOX_COLOR = "yellow"

# key -> (Annotator method, what it does); bound on the viewer and the samkit layers (see _keys.py)
KEYS = {
    "R": ("box_mode", "box: the next drag draws a box around an object (then back to points)"),
    "C": ("commit", "commit the current object as a new label"),
    "N": ("next_label", "start a new object (drop the prompts)"),
    "U": ("undo", "undo the last prompt, else the last commit or erase"),
    "Shift-U": ("redo", "redo"),
    "Shift-C": ("clear", "clear the prompts and the preview"),
    "G": ("toggle_sign", "switch new (and selected) points between object and background"),
    "Shift-E": ("erase_under_cursor", "erase the object under the mouse"),
}

# napari's own undo keys on the samkit labels layer: the same meaning, through samkit's journal (which
# holds the paint edits, commits and erases alike), instead of napari's separate history of that layer
LABELS_UNDO_KEYS = {"Control-Z": "undo", "Control-Shift-Z": "redo"}


def keys_help() -> str:
    """The keybindings as an HTML table for the dock widget."""
    rows = "".join(f"<tr><td><b>{key}</b></td><td>{text}</td></tr>" for key, (_, text) in KEYS.items())
    return (
        "<table>"
        "<tr><td><b>click</b></td><td>add a point (points layer in add mode)</td></tr>"
        "<tr><td><b>drag</b></td><td>draw a box (in box mode)</td></tr>"
        f"{rows}</table>"
    )
