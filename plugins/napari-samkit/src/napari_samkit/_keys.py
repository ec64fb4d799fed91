"""samkit's keys in napari: bound on the viewer and on the samkit layers, napari's own keys first.

napari looks a key up in the active layer's keymap, then its class's (napari's
own layer keys: ``P`` paint on a labels layer, ``R`` rectangle on a shapes
layer...), then the viewer's. samkit binds each key on the viewer, and on a
samkit layer only where that layer's class has no key of the same name: so
napari's own keys win where they clash, and every other samkit key works
whichever layer (or none) is active. :func:`clashes` lists where napari wins.
One exception: napari's undo / redo keys on the samkit labels layer are
bound to samkit's undo / redo, the same meaning through samkit's journal.
"""

from __future__ import annotations

import contextlib

from napari.utils.key_bindings import coerce_keybinding

from ._constants import KEYS, LABELS_UNDO_KEYS


def napari_keys(layer) -> set:
    """The keys napari itself binds for ``layer``'s class (and its base classes)."""
    keys = set()
    for cls in type(layer).__mro__:
        keys.update(getattr(cls, "class_keymap", {}).keys())
    return keys


def clashes(layers) -> dict[str, list[str]]:
    """samkit key -> names of the layers where napari's key of the same name wins."""
    out = {}
    for key in KEYS:
        bound = coerce_keybinding(key)
        won = [layer.name for layer in layers if bound in napari_keys(layer)]
        if won:
            out[key] = won
    return out


def bind(annotator) -> None:
    """Bind every samkit key to its Annotator method on the viewer and (where free) the samkit layers."""
    for key, (method, _) in KEYS.items():
        handler = _handler(annotator, method)
        annotator.viewer.bind_key(key, handler, overwrite=True)
        for layer in annotator.layers:
            if coerce_keybinding(key) not in napari_keys(layer):
                layer.bind_key(key, handler, overwrite=True)
    for key, method in LABELS_UNDO_KEYS.items():
        annotator.labels_layer.bind_key(key, _handler(annotator, method), overwrite=True)


def unbind(annotator) -> None:
    """Remove samkit's keys from the viewer and the samkit layers."""
    for key in (*KEYS, *LABELS_UNDO_KEYS):
        for provider in (*annotator.layers, annotator.viewer):
            with contextlib.suppress(Exception):  # a key never bound on this provider
                provider.bind_key(key, None)


def _handler(annotator, method: str):
    def handler(_provider=None) -> None:
        if not annotator.is_closed:
            getattr(annotator, method)()

    handler.__name__ = handler.__doc__ = f"samkit: {method.replace('_', ' ')}"
    return handler
