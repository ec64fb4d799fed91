"""The layers the annotator adds to the viewer, and conversions between them and the engine.

Pixel conventions: napari puts the centre of pixel ``i`` at data coordinate
``i`` (the pixel spans ``i - 0.5 .. i + 0.5``); samkit's points are pixel
indices and its boxes are pixel edges (``y0 .. y1`` end exclusive). So a
click designates the pixel it falls in, and a rectangle's edges move by half
a pixel.
"""

from __future__ import annotations

import numpy as np
from napari.utils.colormaps import DirectLabelColormap

from . import _constants as names
from ._painting import PaintableLabels


def unwrap(obj):
    """The object behind napari's PublicOnlyProxy (napari hands plugins proxied viewers and layers)."""
    return getattr(obj, "__wrapped__", obj)


def same(a, b) -> bool:
    """Whether ``a`` and ``b`` are the same layer, proxied or not."""
    return unwrap(a) is unwrap(b)


def in_viewer(viewer, layer) -> bool:
    """Whether ``layer`` is (still) one of the viewer's layers."""
    return any(same(layer, other) for other in viewer.layers)


def add_prompt_layers(viewer, source):
    """Add the preview, box and points layers (drawn in that order: the points on top) on the image's (y, x)
    transform; returns (points, box, preview).

    The layers themselves, not napari's proxies of them (a proxy made the
    active layer would not be recognised by napari's own mouse handling: a
    drag with the rectangle tool then pans the camera and draws a speck).
    """
    transform = {"scale": source.scale, "translate": source.translate}
    preview = unwrap(viewer.add_labels(np.zeros((1, 1), np.uint8), name=names.PREVIEW, opacity=0.6, **transform))
    preview.colormap = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: names.PREVIEW_COLOR})
    preview.editable = False
    box = viewer.add_shapes(
        ndim=2, name=names.BOX, edge_color=names.BOX_COLOR, face_color="transparent",
        edge_width=max(1.0, 0.003 * max(source.shape)), **transform,
    )  # fmt: skip
    box = unwrap(box)
    box.current_edge_color = names.BOX_COLOR
    box.current_face_color = "transparent"
    points = viewer.add_points(
        np.zeros((0, 2)), ndim=2, name=names.POINTS, features={"positive": np.zeros(0, bool)},
        face_color="positive", face_color_cycle={True: names.POSITIVE_COLOR, False: names.NEGATIVE_COLOR},
        size=max(6.0, 0.02 * max(source.shape)), **transform,
    )  # fmt: skip
    points = unwrap(points)
    points.feature_defaults = {"positive": True}
    return points, box, preview


def add_labels_layer(viewer, labels, source):
    """The labels layer showing the engine's label image (not copied); returns the layer itself.

    For a single-scale image napari's labels tools may edit it: its data is a
    :class:`~napari_samkit._painting.PaintableLabels` over the label image, and
    the annotator journals each gesture. napari cannot paint a pyramid, so for
    a multiscale image it is a read-only pyramid of strided views.
    """
    if source.multiscale:  # a pyramid like the image's, read lazily from the same zarr array
        full = source.image.level_shapes[0]
        data = [labels.array] + [Strided(labels.array, max(1, round(full[0] / s[0])))
                                 for s in source.image.level_shapes[1:]]  # fmt: skip
    else:
        data = PaintableLabels(labels)
    layer = unwrap(viewer.add_labels(data, name=names.LABELS, scale=source.scale, translate=source.translate))
    layer.editable = not source.multiscale
    return layer


class Strided:
    """A read-only ``array[::factor, ::factor]`` view, read on demand (fresh after every commit)."""

    ndim = 2

    def __init__(self, array, factor: int) -> None:
        self.array, self.factor = array, factor
        self.shape = tuple(-(-n // factor) for n in array.shape)
        self.dtype = array.dtype

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if Ellipsis in key:
            at = key.index(Ellipsis)
            key = key[:at] + (slice(None),) * (2 - len(key) + 1) + key[at + 1 :]
        key = key + (slice(None),) * (2 - len(key))
        f = self.factor
        full = []
        for k, n in zip(key, self.shape):
            if isinstance(k, slice):
                start, stop, step = k.indices(n)
                full.append(slice(start * f, stop * f, step * f))
            else:
                full.append(int(k) * f)
        return np.asarray(self.array[tuple(full)])

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)


def viewer_camera(viewer):
    """The viewer's camera (``viewer.scene.camera`` from napari 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def visible_region(viewer, source):
    """The (y0, x0, y1, x1) image pixels in the 2D view (camera centre, zoom, canvas size); None if unknown."""
    camera = viewer_camera(viewer)
    size = np.asarray(viewer.canvas.size, float)[-2:]
    if camera.zoom <= 0 or not (size > 1).all():
        return None
    centre, half = np.asarray(camera.center, float)[-2:], size / camera.zoom / 2
    low, high = source.world_to_pixels(centre - half), source.world_to_pixels(centre + half)
    (y0, x0), (y1, x1) = np.minimum(low, high), np.maximum(low, high)
    h, w = source.shape
    y0, x0 = max(0, int(np.floor(y0 + 0.5))), max(0, int(np.floor(x0 + 0.5)))
    y1, x1 = min(h, int(np.ceil(y1 + 0.5))), min(w, int(np.ceil(x1 + 0.5)))
    return (y0, x0, y1, x1) if y1 > y0 and x1 > x0 else None


def look_at(viewer, source, box, fill: float = 0.4) -> None:
    """Centre the 2D view on ``box`` (y0, x0, y1, x1 pixels), zoomed so that it spans ``fill`` of the canvas."""
    y0, x0, y1, x1 = box
    low, high = (np.asarray(p, float) * source.scale + source.translate for p in ((y0 - 0.5, x0 - 0.5), (y1 - 0.5, x1 - 0.5)))
    camera = viewer_camera(viewer)
    camera.center = tuple((low + high) / 2)
    size = np.asarray(viewer.canvas.size, float)[-2:]
    if (size > 1).all():
        camera.zoom = float(fill * np.min(size / np.maximum(np.abs(high - low), 1e-9)))


# -- prompts: layer <-> engine ------------------------------------------------


def read_points(layer, source) -> list[tuple[float, float, int]]:
    """The points layer as engine prompts: (y, x pixel index, 1 object / 0 background)."""
    if len(layer.data) == 0:
        return []
    pixels = np.floor(source.to_pixels(layer, layer.data) + 0.5)
    features = layer.features
    positive = np.asarray(features["positive"], bool) if "positive" in features else np.ones(len(pixels), bool)
    return [(float(y), float(x), int(p)) for (y, x), p in zip(pixels, positive)]


def write_points(layer, source, points, labels, positive: bool) -> None:
    """Show the engine's points (pixel indices) in the layer; new points get ``positive``."""
    coords = source.from_pixels(layer, points) if len(points) else np.zeros((0, 2))
    layer.data = coords
    layer.features = {"positive": np.asarray(labels, int).astype(bool)}
    layer.feature_defaults = {"positive": positive}  # setting features resets the defaults
    layer.refresh_colors(update_color_mapping=False)


def read_box(data, layer, source):
    """A rectangle's vertices -> the (y0, x0, y1, x1) box in pixel edges, not clipped."""
    pixels = source.to_pixels(layer, np.asarray(data)[:, -2:]) + 0.5
    (y0, x0), (y1, x1) = pixels.min(0), pixels.max(0)
    return float(y0), float(x0), float(y1), float(x1)


def write_box(layer, source, box) -> None:
    """Show the engine's box (or none) in the shapes layer."""
    if box is None:
        layer.data = []
        return
    y0, x0, y1, x1 = box
    corners = source.from_pixels(layer, [[y0 - 0.5, x0 - 0.5], [y1 - 0.5, x1 - 0.5]])
    layer.data = [corners]
    layer.shape_type = ["rectangle"]


def show_mask(layer, source, mask) -> None:
    """Show a samkit Mask (or nothing) in the preview layer: its crop, placed at its bbox."""
    if mask is None or mask.empty:
        layer.data = np.zeros((1, 1), np.uint8)
        layer.translate = source.translate
        return
    layer.data = mask.crop.astype(np.uint8)
    layer.translate = np.asarray(source.translate) + np.asarray(mask.bbox[:2]) * np.asarray(source.scale)


def preview_array(layer, source) -> np.ndarray:
    """The preview as a full (H, W) bool array in image pixels (small images, tests)."""
    out = np.zeros(source.shape, bool)
    data = np.asarray(layer.data) > 0
    if not data.any():
        return out
    y0, x0 = np.round((np.asarray(layer.translate) - source.translate) / source.scale).astype(int)
    out[y0 : y0 + data.shape[0], x0 : x0 + data.shape[1]] = data
    return out
