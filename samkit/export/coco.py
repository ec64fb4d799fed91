"""COCO instance annotations: RLE masks (or polygons on request), read and written with pycocotools.

One image per file. Each object is one annotation whose ``id`` is its label id, with
``category_id`` from its class name (categories numbered 1, 2, ... in order of first
appearance), ``bbox`` = [x, y, width, height] and ``area`` in pixels as pycocotools
computes them, ``iscrowd`` 0 and ``score`` when the object has one. COCO is (x, y):
column first, pixel corners at integers, like samkit's pixel-edge frame.

``segmentation`` is compressed RLE (column-major, as COCO defines it); with
``polygons=True`` it is a list of outer rings traced along pixel edges, except for
objects with holes, which COCO polygons cannot hold: those stay RLE.

pycocotools encodes whole images, so each object costs H x W bytes of work: fine for
images of a few thousand pixels a side; for whole-slide label images prefer GeoPackage.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import _durable
from ..errors import InvalidImageError, InvalidLabelError
from ..labels import LabelImage
from .objects import Objects, gather, output_path, require
from .polygons import _require_2d, mask_geometry, parts


def to_coco(labels, *, classes=None, scores=None, polygons: bool = False, file_name: str = "", image_id: int = 1) -> dict:
    """A 2D label image as a COCO instances dictionary (one image).

    Parameters
    ----------
    labels : LabelImage, (H, W) integer array or Objects
    classes : dict of int to str, optional
        Class name per object id (default: the label image's, else "object").
    scores : dict of int to float, optional
        Score per object id (default: the label image's, if any).
    polygons : bool
        Polygons instead of RLE for objects without holes (needs ``samkit[gis]``).
    file_name, image_id
        The ``images`` entry.

    Returns
    -------
    dict
        With ``images``, ``categories`` and ``annotations``; ``json.dump`` it as is.
    """
    mask_utils = require("pycocotools.mask", "coco")
    objects = gather(labels, classes, scores)
    _require_2d(objects.shape)
    height, width = objects.shape
    categories: dict[str, int] = {}
    annotations = []
    full = np.zeros((height, width), np.uint8, order="F")  # pycocotools encodes whole, column-major images
    for label, box, crop in objects.crops():
        full[box] = crop
        rle = mask_utils.encode(full)
        full[box] = 0
        name = objects.class_of(label)
        annotation = {
            "id": label, "image_id": image_id, "category_id": categories.setdefault(name, len(categories) + 1),
            "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
            "area": float(mask_utils.area(rle)), "bbox": [float(v) for v in mask_utils.toBbox(rle)], "iscrowd": 0,
        }  # fmt: skip
        if label in objects.scores:
            annotation["score"] = objects.scores[label]
        if polygons:
            shapes = parts(mask_geometry(crop, (box[0].start, box[1].start)))
            if not any(p.interiors for p in shapes):
                annotation["segmentation"] = [np.asarray(p.exterior.coords).ravel().tolist() for p in shapes]
        annotations.append(annotation)
    return {
        "info": {"description": "samkit label image", "version": "1.0"},
        "images": [{"id": image_id, "width": width, "height": height, "file_name": str(file_name)}],
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in categories.items()],
        "annotations": annotations,
    }


def write_coco(labels, path, *, classes=None, scores=None, polygons: bool = False, file_name: str = "",
               overwrite: bool = False) -> Path:  # fmt: skip
    """Write a 2D label image as a COCO instances JSON file (see :func:`to_coco`).

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is False.
    """
    path = output_path(path, (".json",), overwrite)
    data = to_coco(labels, classes=classes, scores=scores, polygons=polygons, file_name=file_name)
    _durable.write_file(path, json.dumps(data).encode())
    return path


def read_coco(path_or_dict, *, image_id: int | None = None) -> Objects:
    """The annotations of one image of a COCO instances file, as a label image.

    Parameters
    ----------
    path_or_dict : str, Path or dict
    image_id : int, optional
        Which image; needed when the file holds several.

    Returns
    -------
    Objects
        ``labels`` a :class:`samkit.LabelImage` (annotation ids become object ids;
        where annotations overlap the later one wins), ``classes`` the category names,
        ``scores`` where annotations carry one.
    """
    mask_utils = require("pycocotools.mask", "coco")
    data = _load(path_or_dict)
    image = _pick_image(data, image_id, path_or_dict)
    height, width = int(image["height"]), int(image["width"])
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    mine = [a for a in data.get("annotations", []) if a.get("image_id") == image["id"]]
    ids = [int(a["id"]) for a in mine]
    if len(set(ids)) != len(ids) or any(i <= 0 for i in ids):
        ids = list(range(1, len(mine) + 1))  # unusable ids: number the objects in file order
    array = np.zeros((height, width), np.uint32)
    classes, scores = {}, {}
    for label, annotation in zip(ids, mine):
        segmentation = annotation["segmentation"]
        if isinstance(segmentation, list):  # polygons
            rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
        elif isinstance(segmentation.get("counts"), list):  # uncompressed RLE
            rle = mask_utils.frPyObjects(segmentation, height, width)
        else:
            rle = dict(segmentation, counts=segmentation["counts"].encode("ascii"))
        array[mask_utils.decode(rle).astype(bool)] = label
        classes[label] = names.get(annotation.get("category_id"), str(annotation.get("category_id")))
        if "score" in annotation:
            scores[label] = float(annotation["score"])
    present = set(np.unique(array).tolist())
    return Objects(LabelImage((height, width), initial=array),
                   {k: v for k, v in classes.items() if k in present},
                   {k: v for k, v in scores.items() if k in present})  # fmt: skip


def _load(path_or_dict) -> dict:
    if isinstance(path_or_dict, dict):
        return path_or_dict
    try:
        with open(path_or_dict, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise InvalidImageError(f"'{path_or_dict}' is not a JSON file: {e}") from e
    if not isinstance(data, dict) or "images" not in data:
        raise InvalidImageError(f"'{path_or_dict}' is not a COCO file: it has no 'images' list")
    return data


def _pick_image(data: dict, image_id, source) -> dict:
    images = data.get("images", [])
    if image_id is None:
        if len(images) != 1:
            raise InvalidLabelError(f"{source} holds {len(images)} images; pass image_id= (one of "
                                    f"{[i.get('id') for i in images][:10]})")  # fmt: skip
        return images[0]
    for image in images:
        if image.get("id") == image_id:
            return image
    raise InvalidLabelError(f"{source} has no image with id {image_id}")
