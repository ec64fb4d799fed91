"""samkit's keys in napari (:mod:`samkit.interaction`), bound on the viewer and the samkit layers.

The keys are those of :data:`samkit.interaction.ACTIONS` that the plugin binds
(``napari == "bind"``); for the others napari's own key does the same (``P``
paint, ``E`` eraser, ``F`` fill on a labels layer). Each is bound to the
Annotator method of the action's name. napari looks a key up in the active
layer's keymap, then its class's (napari's own layer keys), then the
viewer's: samkit binds each key on the viewer, and on a samkit layer only
where that layer's class has no key of the same name, so napari's own keys
win wherever they clash (e.g. ``C`` on an image layer: napari's auto-contrast).
One exception: napari's undo / redo keys on the samkit labels layer are bound
to samkit's undo / redo, the same meaning through samkit's journal.
"""

from __future__ import annotations

import contextlib

from napari.utils.key_bindings import coerce_keybinding
from samkit.interaction import ACTIONS, BIND

from ._constants import LABELS_UNDO_KEYS

BOUND = {action.key: name for name, action in ACTIONS.items() if action.napari == BIND}  # key -> Annotator method


def napari_keys(layer) -> set:
    """The keys napari itself binds for ``layer``'s class (and its base classes)."""
    keys = set()
    for cls in type(layer).__mro__:
        keys.update(getattr(cls, "class_keymap", {}).keys())
    return keys


def bind(annotator) -> None:
    """Bind every samkit key to its Annotator method on the viewer and (where free) the samkit layers."""
    for key, method in BOUND.items():
        handler = _handler(annotator, method)
        annotator.viewer.bind_key(key, handler, overwrite=True)
        for layer in annotator.layers:
            if coerce_keybinding(key) not in napari_keys(layer):
                layer.bind_key(key, handler, overwrite=True)
    for key, method in LABELS_UNDO_KEYS.items():
        annotator.labels_layer.bind_key(key, _handler(annotator, method), overwrite=True)


def unbind(annotator) -> None:
    """Remove samkit's keys from the viewer and the samkit layers."""
    for key in (*BOUND, *LABELS_UNDO_KEYS):
        for provider in (*annotator.layers, annotator.viewer):
            with contextlib.suppress(Exception):  # a key never bound on this provider
                provider.bind_key(key, None)


def _handler(annotator, method: str):
    def handler(_provider=None) -> None:
        if not annotator.is_closed:
            getattr(annotator, method)()

    handler.__name__ = handler.__doc__ = f"samkit: {method.replace('_', ' ')}"
    return handler
