"""Making values JSON-able: numpy scalars and arrays, tuples and paths, in dicts and lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def jsonable(value):
    """``value`` with numpy scalars and arrays, tuples and paths turned into JSON types.

    Raises TypeError for anything else JSON cannot hold.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    json.dumps(value)  # raises TypeError for what JSON cannot hold
    return value
