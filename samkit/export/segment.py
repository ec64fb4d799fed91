"""Prompt files drive a tiled :class:`samkit.Session`: every box and point becomes one object."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..errors import InvalidLabelError
from ..labels import LabelImage
from .objects import Objects
from .prompts import Prompts

log = logging.getLogger(__name__)


def segment_prompts(session, prompts: Prompts, *, labels: LabelImage | None = None, batch: int = 64,
                    progress=None) -> Objects:  # fmt: skip
    """Segment one object per box and per point of ``prompts`` and commit each into a label image.

    Boxes go to the session in batches (one decoder call per window for all the boxes
    it holds); each object is followed across tile borders, so a box on a border gives
    one whole object. Objects are committed in file order without overwriting earlier
    ones; the class of each prompt becomes the object's ``class_name`` attribute (and is
    kept in the commit's logged prompt, ``"class"``), where :func:`samkit.export.gather`
    finds it again.

    Parameters
    ----------
    session : samkit.Session
    prompts : Prompts
        From :func:`read_prompts`, in the session's level-0 pixels.
    labels : LabelImage, optional
        Where to commit (e.g. one saved on disk); default a new one in memory.
    batch : int
        Boxes per call to the session.
    progress : callable, optional
        ``progress(done, total)`` after each batch.

    Returns
    -------
    Objects
        The label image with the class and score of each object. Prompts whose mask
        added no pixel (empty, or wholly under earlier objects) are logged, not committed.
    """
    labels = LabelImage(session.shape) if labels is None else labels
    classes, scores = {}, {}
    total, done, missed = len(prompts), 0, 0
    jobs = [(prompts.boxes[i : i + batch], prompts.box_classes[i : i + batch]) for i in range(0, len(prompts.boxes), batch)]
    for boxes, names in jobs:
        masks = session.segment(box=boxes)
        masks = masks if isinstance(masks, list) else [masks]
        missed += _commit(labels, masks, names, classes, scores)
        done += len(boxes)
        if progress is not None:
            progress(done, total)
    for point, name in zip(prompts.points, prompts.point_classes):
        missed += _commit(labels, [session.segment(points=np.asarray([point]), labels=[1])], [name], classes, scores)
        done += 1
        if progress is not None:
            progress(done, total)
    if missed:
        log.warning("%d of %d prompts gave no new pixels (empty, or covered by earlier objects)", missed, total)
    return Objects(labels, classes, scores)


def _commit(labels, masks, names, classes, scores) -> int:
    missed = 0
    for mask, name in zip(masks, names):
        mask = dataclasses.replace(mask, prompt={**mask.prompt, "class": name})
        try:
            label = labels.commit(mask, attributes={"class_name": name, "mode": "prompts"})
        except InvalidLabelError:
            missed += 1
            continue
        classes[label], scores[label] = name, float(mask.score)
    return missed
