"""What every export starts from: the objects of a label image, their classes and scores.

:class:`Objects` bundles a label image (a :class:`samkit.LabelImage`, or any integer
array, 2D or N-D) with optional class names and scores per object id. A LabelImage
already knows them: its objects' ``class_name`` and ``score`` attributes
(:attr:`~samkit.LabelImage.attributes`: a commit records its score,
:func:`samkit.export.segment_prompts` the class of each prompt, and both front ends let
the user edit class names); explicit ``classes`` / ``scores`` arguments win over them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import InvalidImageError, InvalidLabelError, MissingExtraError, OutputExistsError
from ..labels import LabelImage

DEFAULT_CLASS = "object"


@dataclass
class Objects:
    """A label image with a class name and a score per object id.

    Parameters
    ----------
    labels : LabelImage or (..., H, W) integer array
        0 = background; each other value one object.
    classes : dict of int to str
        Class name per id; ids without one get ``"object"``.
    scores : dict of int to float
        Score per id (e.g. SAM's predicted IoU); ids without one have none.
    """

    labels: object
    classes: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.labels.shape)

    @property
    def ids(self) -> list[int]:
        """The object ids present, sorted."""
        return [i for i, _, _ in self.crops()]

    def class_of(self, label: int) -> str:
        return self.classes.get(label, DEFAULT_CLASS)

    def crops(self) -> Iterator[tuple[int, tuple[slice, ...], np.ndarray]]:
        """Each object as (id, the slices of its bounding box, its boolean mask in that box), by id."""
        if isinstance(self.labels, LabelImage):
            for label, (y0, x0, y1, x1) in sorted(self.labels.objects.items()):
                box = (slice(y0, y1), slice(x0, x1))
                yield label, box, self.labels[box] == label
            return
        array = np.asarray(self.labels)
        from scipy import ndimage

        for index, box in enumerate(ndimage.find_objects(array), start=1):
            if box is not None:
                yield index, box, array[box] == index


def gather(labels, classes=None, scores=None) -> Objects:
    """``labels`` (LabelImage, array or :class:`Objects`) as :class:`Objects`, checked once.

    Raises
    ------
    InvalidImageError
        ``labels`` is not an integer array of at least 2 dimensions.
    InvalidLabelError
        ``classes`` or ``scores`` name ids that are negative or not integers.
    """
    if isinstance(labels, Objects):
        classes = {**labels.classes, **(classes or {})}
        scores = {**labels.scores, **(scores or {})}
        labels = labels.labels
    else:
        classes, scores = dict(classes or {}), dict(scores or {})
    if isinstance(labels, LabelImage):
        found = labels.attributes
        classes = {**{k: a["class_name"] for k, a in found.items() if "class_name" in a}, **classes}
        scores = {**{k: a["score"] for k, a in found.items() if "score" in a}, **scores}
    elif not all(hasattr(labels, name) for name in ("shape", "dtype", "__getitem__")):
        raise InvalidImageError(f"expected a samkit.LabelImage or an integer array, not {type(labels).__name__}")
    if not np.issubdtype(labels.dtype, np.integer) or len(labels.shape) < 2:
        raise InvalidImageError(f"labels must be integers in 2 or more dimensions, not {labels.dtype} of shape {labels.shape}")
    for what, mapping in (("classes", classes), ("scores", scores)):
        bad = [k for k in mapping if not isinstance(k, (int, np.integer)) or k <= 0]
        if bad:
            raise InvalidLabelError(f"{what} keys must be object ids (positive ints), not {bad[:3]}")
    classes = {int(k): str(v) for k, v in classes.items()}
    scores = {int(k): float(v) for k, v in scores.items()}
    return Objects(labels, classes, scores)


def require(module: str, extra: str):
    """Import an optional dependency, or say which samkit extra installs it."""
    try:
        return import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"this export needs {module.split('.')[0]}: pip install 'samkit[{extra}]' ({e})") from e


def output_path(path, suffixes: tuple[str, ...], overwrite: bool) -> Path:
    """``path`` checked: a known suffix, a folder that exists, no file to replace unless allowed."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise InvalidImageError(f"'{path}': expected a file name ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the folder of '{path}' does not exist")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"'{path}' already exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise OutputExistsError(f"'{path}' is a folder; samkit replaces only files")
    return path


def temporary_beside(path: Path) -> Path:
    """A hidden name in ``path``'s folder to write to before renaming onto ``path``."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
