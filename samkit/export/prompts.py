"""Prompt files: boxes and points from Pascal VOC XML, COCO, CSV, GeoJSON or GeoPackage.

Every reader gives :class:`Prompts` in samkit's frame: level-0 pixels, boxes as
(y0, x0, y1, x1) with the end exclusive, points as (y, x). Files in world coordinates
(GeoJSON, GeoPackage, or CSV with ``coords="world"``) are mapped through the image's
geotransform, after reprojection when the file is in another CRS than the image.
Boxes partly outside the image are clipped to it; prompts wholly outside are dropped
and counted (``Prompts.outside``, and a warning says how many), never silently. A VOC or
COCO file stating another image size than the image's is refused.

Conventions of the formats: VOC ``xmin ymin xmax ymax`` and COCO ``bbox`` [x, y, w, h]
are pixels with x = column (VOC's corners taken as 0-based, end exclusive, as DeepForest
writes them); CSV has ``xmin, ymin, xmax, ymax`` (DeepForest) or ``y0, x0, y1, x1``
(samkit) columns for boxes, or ``y, x`` for points, and optionally ``label`` or
``class`` and ``image_path``.
"""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidPromptError, SamkitError
from .georef import Georef, as_georef

SUFFIXES = (".xml", ".json", ".csv", ".geojson", ".gpkg")


@dataclass
class Prompts:
    """Boxes and points in level-0 pixels, with a class name each.

    Attributes
    ----------
    boxes : (B, 4) float array
        (y0, x0, y1, x1), clipped to the image.
    box_classes : list of str
    points : (P, 2) float array
        (y, x).
    point_classes : list of str
    outside : int
        Prompts of the file lying wholly outside the image (not in ``boxes`` / ``points``).
    clipped : int
        Boxes that reached outside the image and were clipped to it.
    """

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    box_classes: list = field(default_factory=list)
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point_classes: list = field(default_factory=list)
    outside: int = 0
    clipped: int = 0

    def __len__(self) -> int:
        return len(self.boxes) + len(self.points)


def read_prompts(path, image, *, georef="auto", coords: str = "auto", reproject: bool = True,
                 image_name: str | None = None) -> Prompts:  # fmt: skip
    """Read boxes and points for ``image`` from a prompt file.

    Parameters
    ----------
    path : str or Path
        ``.xml`` (Pascal VOC), ``.json`` (COCO instances or keypoint-free boxes),
        ``.csv``, ``.geojson`` or ``.gpkg`` (polygons give their bounding box, points a point).
    image : str, Path, array-like, Image or (H, W)
        The image the prompts are for (its size; a GeoTIFF path also gives ``georef``).
    georef : "auto", Georef, path or None
        The image's georeferencing; "auto" reads it from ``image`` when that is a
        georeferenced file.
    coords : "auto", "pixel" or "world"
        CSV numbers are pixels unless "world". GeoJSON / GeoPackage are in world
        coordinates when the image is georeferenced, else (or with "pixel") in pixels,
        x = column and y = row. VOC and COCO are always pixels.
    reproject : bool
        Reproject a vector file in another CRS than the image's (default); False
        refuses it with a :class:`~samkit.errors.CRSError` naming both.
    image_name : str, optional
        Keep only the rows / images of this file name (COCO ``file_name``, CSV
        ``image_path``); by default the COCO file must hold one image.

    Returns
    -------
    Prompts
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidPromptError(f"'{path}': prompt files are {', '.join(SUFFIXES)}, not {suffix or 'no suffix'}")
    if not path.is_file():
        raise FileNotFoundError(f"no such prompt file: {path}")
    shape, georef = _image(image, georef)
    if coords not in ("auto", "pixel", "world"):
        raise InvalidPromptError(f"coords={coords!r}: use 'auto', 'pixel' or 'world'")
    if suffix == ".xml":
        boxes, classes, points, point_classes = _voc(path, shape) + ([], [])
    elif suffix == ".json" and not _is_geojson(path):
        boxes, classes = _coco(path, image_name, shape)
        points, point_classes = [], []
    elif suffix == ".csv":
        boxes, classes, points, point_classes = _csv(path, image_name, coords == "world", georef)
    else:
        boxes, classes, points, point_classes = _vector(path, None if coords == "pixel" else georef, reproject)
    return _inside(np.asarray(boxes, float).reshape(-1, 4), classes, np.asarray(points, float).reshape(-1, 2),
                   point_classes, shape, path)  # fmt: skip


def _image(image, georef):
    if isinstance(image, tuple) and len(image) == 2 and all(isinstance(n, (int, np.integer)) for n in image):
        shape = tuple(int(n) for n in image)
    else:
        from ..io import open_image

        shape = tuple(int(n) for n in open_image(image).yxc().shape[:2])
    if isinstance(georef, str) and georef == "auto":
        georef = None
        if isinstance(image, (str, Path)) and Path(image).suffix.lower() in (".tif", ".tiff"):
            georef = georef_or_none(image)
    return shape, as_georef(georef)


def georef_or_none(image) -> Georef | None:
    """The georeferencing of the file ``image``, or None (not georeferenced, or no rasterio)."""
    with warnings.catch_warnings():  # rasterio warns of files without georeferencing
        warnings.simplefilter("ignore")
        try:
            return Georef.from_image(image)
        except SamkitError:
            return None


def _voc(path: Path, shape):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise InvalidPromptError(f"'{path}' is not valid XML: {e}") from e
    size = root.find("size")
    if size is not None and size.findtext("height") and size.findtext("width"):
        _same_size(path, (int(float(size.findtext("height"))), int(float(size.findtext("width")))), shape)
    boxes, classes = [], []
    for obj in root.iter("object"):
        bnd = obj.find("bndbox")
        try:
            xmin, ymin, xmax, ymax = (float(bnd.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError) as e:
            raise InvalidPromptError(f"'{path}': an <object> lacks a numeric <bndbox> xmin/ymin/xmax/ymax") from e
        boxes.append((ymin, xmin, ymax, xmax))
        classes.append((obj.findtext("name") or "object").strip())
    return boxes, classes


def _coco(path: Path, image_name, shape):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    images = data.get("images", [])
    if image_name is not None:
        images = [i for i in images if Path(i.get("file_name", "")).name == Path(image_name).name]
    if len(images) != 1:
        raise InvalidPromptError(f"'{path}' holds {len(images)} images{'' if image_name is None else ' named ' + image_name}; "
                                 "pass image_name= with one file_name of its images")  # fmt: skip
    if "height" in images[0] and "width" in images[0]:
        _same_size(path, (int(images[0]["height"]), int(images[0]["width"])), shape)
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    boxes, classes = [], []
    for annotation in data.get("annotations", []):
        if annotation.get("image_id") == images[0]["id"] and "bbox" in annotation:
            x, y, w, h = annotation["bbox"]
            boxes.append((y, x, y + h, x + w))
            classes.append(names.get(annotation.get("category_id"), "object"))
    return boxes, classes


def _same_size(path, stated, shape) -> None:
    if tuple(stated) != tuple(shape):
        raise InvalidPromptError(f"'{path}' is for an image of (H, W) = {tuple(stated)}, not {tuple(shape)}: "
                                 "is it the prompt file of another image?")  # fmt: skip


def _csv(path: Path, image_name, world: bool, georef):
    import pandas as pd

    table = pd.read_csv(path)
    table.columns = [str(c).strip().lower() for c in table.columns]
    if image_name is not None and "image_path" in table:
        table = table[table["image_path"].map(lambda p: Path(str(p)).name) == Path(image_name).name]
    name = next((c for c in ("class", "label", "name") if c in table), None)
    classes = table[name].astype(str).tolist() if name else ["object"] * len(table)
    columns = next((c for c in (["ymin", "xmin", "ymax", "xmax"], ["y0", "x0", "y1", "x1"], ["y", "x"])
                    if set(c) <= set(table)), None)  # fmt: skip
    if columns is None:
        raise InvalidPromptError(f"'{path}' has columns {list(table.columns)}; a prompt CSV needs xmin, ymin, "
                                 "xmax, ymax (or y0, x0, y1, x1) for boxes, or y, x for points")  # fmt: skip
    try:
        values = table[columns].to_numpy(float)
    except ValueError as e:
        raise InvalidPromptError(f"'{path}': the columns {columns} must hold numbers ({e})") from e
    boxes = values if len(columns) == 4 else np.zeros((0, 4))
    points = values if len(columns) == 2 else np.zeros((0, 2))
    if world:
        if georef is None:
            raise InvalidPromptError(f"'{path}': coords='world' needs the image's georeferencing (a GeoTIFF)")
        boxes, points = _world_boxes(boxes, georef), georef.to_pixel(points[:, ::-1]) if len(points) else points
    box_classes = classes if len(boxes) else []
    return boxes, box_classes, points, ([] if len(boxes) else classes)


def _vector(path: Path, georef, reproject: bool):
    from .gis import read_frame

    frame = read_frame(path, georef=georef, reproject=reproject)
    name = next((c for c in ("class", "label", "name") if c in frame), None)
    classes = frame[name].astype(str).tolist() if name else ["object"] * len(frame)
    boxes, box_classes, points, point_classes = [], [], [], []
    for geometry, cls in zip(frame.geometry, classes):
        if geometry is None or geometry.is_empty:
            continue
        if geometry.geom_type == "Point":
            points.append((geometry.y, geometry.x))
            point_classes.append(cls)
        else:
            x0, y0, x1, y1 = geometry.bounds
            boxes.append((y0, x0, y1, x1))
            box_classes.append(cls)
    boxes, points = np.asarray(boxes, float).reshape(-1, 4), np.asarray(points, float).reshape(-1, 2)
    if georef is not None:  # world (Y, X) -> pixels
        boxes, points = _world_boxes(boxes, georef), georef.to_pixel(points[:, ::-1]) if len(points) else points
    return boxes, box_classes, points, point_classes


def _world_boxes(boxes: np.ndarray, georef: Georef) -> np.ndarray:
    """World (Y0, X0, Y1, X1) boxes to pixel boxes (the pixel bounds of their four corners)."""
    if not len(boxes):
        return boxes
    corners = np.stack([boxes[:, [1, 0]], boxes[:, [3, 0]], boxes[:, [1, 2]], boxes[:, [3, 2]]], 1)  # (B, 4, XY)
    yx = georef.to_pixel(corners.reshape(-1, 2)).reshape(-1, 4, 2)
    return np.concatenate([yx.min(1), yx.max(1)], 1)


def _inside(boxes, classes, points, point_classes, shape, path) -> Prompts:
    height, width = shape
    if len(boxes) and not (boxes[:, 2] > boxes[:, 0]).all() & (boxes[:, 3] > boxes[:, 1]).all():
        bad = boxes[(boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])][0]
        raise InvalidPromptError(f"'{path}' has an empty or inverted box {bad.tolist()} (y0, x0, y1, x1)")
    limit = np.array([height, width, height, width], float)
    keep = (boxes[:, 0] < height) & (boxes[:, 1] < width) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    clipped_boxes = np.clip(boxes[keep], 0, limit)
    clipped = int((clipped_boxes != boxes[keep]).any(1).sum())
    inside = (points[:, 0] >= 0) & (points[:, 1] >= 0) & (points[:, 0] < height) & (points[:, 1] < width)
    outside = int((~keep).sum() + (~inside).sum())
    if outside:
        warnings.warn(f"{outside} of {len(boxes) + len(points)} prompts in '{path}' lie outside the image "
                      f"of shape {(height, width)} and were skipped", UserWarning, stacklevel=3)  # fmt: skip
    return Prompts(clipped_boxes, [c for c, k in zip(classes, keep) if k], points[inside],
                   [c for c, k in zip(point_classes, inside) if k], outside, clipped)  # fmt: skip


def _is_geojson(path: Path) -> bool:
    with open(path, encoding="utf-8") as f:
        head = f.read(4096)
    return '"FeatureCollection"' in head or '"Feature"' in head and '"images"' not in head
