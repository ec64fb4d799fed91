"""Objects as napari Shapes layer data (polygons), 2D or one plane at a time in N-D.

napari puts pixel centres at integer coordinates, so the pixel-edge outlines are
shifted by half a pixel: pixel (0, 0) is the square from (-0.5, -0.5) to (0.5, 0.5).
A Shapes polygon cannot have holes: each hole is one more polygon, with ``hole`` True
in the layer's features (drawn with no fill), so that nothing of the outline is lost.
"""

from __future__ import annotations

import numpy as np

from .objects import gather
from .polygons import mask_geometry, parts


def napari_shapes(labels, *, classes=None, scores=None, name: str = "objects") -> tuple:
    """A napari Shapes layer data tuple ``(data, kwargs, "shapes")`` of the objects' outlines.

    Parameters
    ----------
    labels : LabelImage, (..., H, W) integer array or Objects
        N-D label images give the polygons of each (H, W) plane, their vertices
        prefixed by the plane's leading indices, e.g. (z, y, x).
    classes, scores : dict of int, optional
        Class name and score per object id (default: the label image's).
    name : str
        The layer name.

    Returns
    -------
    tuple
        ``viewer.add_shapes(data, **kwargs)`` shows it, as does returning it from a
        napari reader; ``kwargs["features"]`` holds ``id``, ``class``, ``score``, ``hole``.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((4, 4), np.uint8); labels[1:3, 1:3] = 2
    >>> data, kwargs, kind = napari_shapes(labels)
    >>> data[0].tolist(), kwargs["features"]["id"]
    ([[0.5, 0.5], [2.5, 0.5], [2.5, 2.5], [0.5, 2.5]], [2])
    """
    objects = gather(labels, classes, scores)
    array = objects.labels
    data, features = [], {"id": [], "class": [], "score": [], "hole": []}
    leading = objects.shape[:-2]
    for index in np.ndindex(*leading):
        plane = gather(np.asarray(array[index]) if leading else array, objects.classes, objects.scores)
        for label, box, crop in plane.crops():
            for polygon in parts(mask_geometry(crop, (box[0].start, box[1].start))):
                for hole, ring in [(False, polygon.exterior)] + [(True, r) for r in polygon.interiors]:
                    yx = np.asarray(ring.coords)[:-1, ::-1] - 0.5
                    data.append(np.concatenate([np.broadcast_to(np.array(index, float), (len(yx), len(index))), yx], 1))
                    features["id"].append(label)
                    features["class"].append(objects.class_of(label))
                    features["score"].append(objects.scores.get(label, np.nan))
                    features["hole"].append(hole)
    colours = ["transparent" if h else "#ffff0040" for h in features["hole"]]
    kwargs = {"name": name, "shape_type": "polygon", "features": features, "face_color": colours,
              "edge_color": "yellow", "edge_width": 1}  # fmt: skip
    return data, kwargs, "shapes"
