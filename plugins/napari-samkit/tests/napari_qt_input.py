"""Real Qt mouse and key events on napari's canvas, as a user's hand makes them.

The events go to the canvas's own Qt widget (``QApplication.sendEvent``), so
they pass through vispy and napari's mouse and key handling exactly as a
physical mouse's do: the active layer's mode, its drag callbacks, the
camera's panning and napari's keymap all take part. Positions are given in
world coordinates and mapped to canvas pixels with the scene's own transform.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QEvent, QPoint, QPointF, Qt
from qtpy.QtGui import QKeyEvent, QMouseEvent
from qtpy.QtWidgets import QApplication

LEFT, NONE = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
MODIFIERS = {"Shift": Qt.KeyboardModifier.ShiftModifier, "Control": Qt.KeyboardModifier.ControlModifier,
             "Alt": Qt.KeyboardModifier.AltModifier}  # fmt: skip
SPECIAL = {"Enter": (Qt.Key.Key_Return, "\r"), "Escape": (Qt.Key.Key_Escape, "\x1b"),
           "Backspace": (Qt.Key.Key_Backspace, "\b"), "Space": (Qt.Key.Key_Space, " ")}  # fmt: skip


def _canvas(viewer):
    """napari's vispy canvas (of the viewer itself, also when given the proxy a plugin holds)."""
    return getattr(viewer, "__wrapped__", viewer).window._qt_viewer.canvas


def canvas_widget(viewer):
    """The Qt widget that receives the canvas's mouse and key events."""
    return _canvas(viewer).native


def to_canvas(viewer, world) -> tuple[float, float]:
    """A world (y, x) position -> (x, y) pixels of the canvas widget (Qt's order)."""
    transform = _canvas(viewer).view.scene.transform
    x, y = transform.map(list(np.asarray(world, float)[-2:][::-1]))[:2]
    return float(x), float(y)


def _mouse(widget, kind, xy, button, buttons, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    local = QPointF(*xy)
    glob = QPointF(widget.mapToGlobal(QPoint(round(xy[0]), round(xy[1]))))
    QApplication.sendEvent(widget, QMouseEvent(kind, local, glob, button, buttons, modifiers))
    QApplication.processEvents()


def move(viewer, world) -> None:
    """Move the mouse (no button) to ``world``."""
    _mouse(canvas_widget(viewer), QEvent.Type.MouseMove, to_canvas(viewer, world), NONE, NONE)


def click(viewer, world) -> None:
    """A left click at the world (y, x) position: move there, press, release."""
    widget, xy = canvas_widget(viewer), to_canvas(viewer, world)
    move(viewer, world)
    _mouse(widget, QEvent.Type.MouseButtonPress, xy, LEFT, LEFT)
    _mouse(widget, QEvent.Type.MouseButtonRelease, xy, LEFT, NONE)


def drag(viewer, start, end, steps: int = 8) -> None:
    """Press the left button at ``start``, move in ``steps`` to ``end`` holding it, release (world (y, x))."""
    widget = canvas_widget(viewer)
    a, b = np.array(to_canvas(viewer, start)), np.array(to_canvas(viewer, end))
    move(viewer, start)
    _mouse(widget, QEvent.Type.MouseButtonPress, a, LEFT, LEFT)
    for t in np.linspace(0, 1, steps + 1)[1:]:
        _mouse(widget, QEvent.Type.MouseMove, a + (b - a) * t, NONE, LEFT)
    _mouse(widget, QEvent.Type.MouseButtonRelease, b, LEFT, NONE)


def key(viewer, name: str) -> None:
    """Press and release a key on the canvas, e.g. ``"C"``, ``"Shift-U"``, ``"Enter"``, ``"1"``."""
    *mods, base = name.split("-")
    modifiers = Qt.KeyboardModifier.NoModifier
    for mod in mods:
        modifiers |= MODIFIERS[mod]
    if base in SPECIAL:
        code, text = SPECIAL[base]
    else:
        code = getattr(Qt.Key, f"Key_{base.upper()}" if base.isalnum() else _symbol(base))
        text = base.upper() if "Shift" in mods else base.lower()
    widget = canvas_widget(viewer)
    for kind in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease):
        QApplication.sendEvent(widget, QKeyEvent(kind, code, modifiers, text))
        QApplication.processEvents()


def _symbol(char: str) -> str:
    return {"[": "Key_BracketLeft", "]": "Key_BracketRight", "-": "Key_Minus", "=": "Key_Equal"}[char]


def double_click(widget, pos) -> None:
    """A left double click on a Qt widget at ``pos`` (QPoint), as Qt delivers one: press, release, double-click, release."""
    xy = (pos.x(), pos.y())
    for kind, buttons in ((QEvent.Type.MouseButtonPress, LEFT), (QEvent.Type.MouseButtonRelease, NONE),
                          (QEvent.Type.MouseButtonDblClick, LEFT), (QEvent.Type.MouseButtonRelease, NONE)):  # fmt: skip
        _mouse(widget, kind, xy, LEFT, buttons)
