"""Per-object attributes of a :class:`~samkit.labels.LabelImage`: checked values and the diffs that change them.

An object's attributes are ``{name: value}``, ``value`` a str, int, float or bool. Names
in use: ``class_name`` (edited in both front ends), ``score`` (the model's predicted
IoU), ``stability``, ``mode`` (what made the object: ``"clicks"``, ``"box"``,
``"prompts"``, ``"grid"``, ...); any other name is allowed.

Every change is one diff ``{label: {name: (old, new)}}`` (``None``: absent) stored in the
log line of the operation that makes it (``"attributes"``): a commit's score and mode,
:meth:`~samkit.labels.LabelImage.set_attributes`, and the removal of the attributes of
objects an operation erases. Undo applies the olds, redo the news, reopening replays the
log: the attributes never need a file of their own.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .errors import InvalidLabelError

Diff = dict[int, dict[str, tuple]]


def checked(changes, objects) -> dict[int, dict]:
    """``changes`` ({label: {name: value or None}}) with plain Python values; InvalidLabelError naming what is wrong."""
    if not isinstance(changes, dict):
        raise InvalidLabelError(f"attributes: expected a dict {{label: {{name: value}}}}, not {type(changes).__name__}")
    out = {}
    for label, values in changes.items():
        if isinstance(label, (bool, np.bool_)) or not isinstance(label, (numbers.Integral, np.integer)):
            raise InvalidLabelError(f"attributes: object ids are ints, not {label!r}")
        if int(label) not in objects:
            raise InvalidLabelError(f"attributes: there is no object {label} (erased objects lose their attributes)")
        if not isinstance(values, dict):
            raise InvalidLabelError(f"attributes of object {label}: expected a dict {{name: value}}, not {values!r}")
        out[int(label)] = {_name(name): _value(name, value) for name, value in values.items()}
    return out


def _name(name) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidLabelError(f"attribute names are non-empty strings, not {name!r}")
    return name


def _value(name: str, value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return int(value)
    if isinstance(value, (numbers.Real, np.floating)) and math.isfinite(value):
        return float(value)
    raise InvalidLabelError(f"attribute {name!r}: expected a str, int, finite float, bool or None, not {value!r}")


def diff(current: dict[int, dict], changes: dict[int, dict]) -> Diff:
    """What setting ``changes`` changes in ``current``: only names whose value differs."""
    out: Diff = {}
    for label, values in changes.items():
        have = current.get(label, {})
        for name, new in values.items():
            old = have.get(name)
            if old != new or type(old) is not type(new):
                out.setdefault(label, {})[name] = (old, new)
    return out


def dropped(current: dict[int, dict], gone) -> Diff:
    """The diff that removes every attribute of the objects ``gone``."""
    return {label: {name: (value, None) for name, value in current[label].items()} for label in gone if current.get(label)}


def merged(first: Diff, second: Diff) -> Diff:
    """``first`` then ``second`` as one diff."""
    out = {label: dict(names) for label, names in first.items()}
    for label, names in second.items():
        for name, (old, new) in names.items():
            before = out.get(label, {}).get(name, (old, None))[0]
            out.setdefault(label, {})[name] = (before, new)
    return out


def apply(current: dict[int, dict], changes: Diff, forward: bool = True) -> None:
    """Apply ``changes`` to ``current`` in place (``forward=False``: undo them)."""
    for label, names in changes.items():
        values = current.setdefault(label, {})
        for name, (old, new) in names.items():
            value = new if forward else old
            if value is None:
                values.pop(name, None)
            else:
                values[name] = value
        if not values:
            del current[label]


def encode(changes: Diff) -> dict:
    """The diff as it goes into a log line (JSON: string keys, lists)."""
    return {str(label): {name: list(pair) for name, pair in names.items()} for label, names in changes.items()}


def decode(entry: dict) -> Diff:
    """The diff of a log line (empty when it has none)."""
    return {int(label): {name: tuple(pair) for name, pair in names.items()}
            for label, names in (entry.get("attributes") or {}).items()}  # fmt: skip
