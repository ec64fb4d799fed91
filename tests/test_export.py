"""Exports of real label images (DSB2018 nuclei) to COCO, polygons, napari Shapes and WKT tables, read back exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

import samkit
from samkit.errors import InvalidImageError, InvalidLabelError, OutputExistsError
from samkit.export import (
    napari_shapes, polygons, read_coco, read_vector, to_coco, to_labels, to_table, write_coco, write_vector,
)  # fmt: skip

from conftest import load_dsb

pytest.importorskip("pycocotools", reason="COCO export needs pip install 'samkit[coco]'")
pytest.importorskip("rasterio", reason="polygons need pip install 'samkit[gis]'")
from pycocotools.coco import COCO  # noqa: E402

IDS = ["0114f484a16c", "1d9eacb3161f", "432f367a4c5b"]  # 7, 115 and 329 nuclei


@pytest.fixture(params=IDS)
def truth(request, real_data):
    return load_dsb(real_data, request.param)[1]


def with_holes(labels: np.ndarray) -> np.ndarray:
    """The labels with a 1-pixel and a 2 x 3 hole punched into the largest nucleus, and 4 pixels of it moved inside."""
    out = labels.copy()
    ids, sizes = np.unique(out[out > 0], return_counts=True)
    ys, xs = np.nonzero(out == ids[np.argmax(sizes)])
    y, x = int(np.median(ys)), int(np.median(xs))
    out[y, x] = 0
    out[y + 3 : y + 5, x - 1 : x + 2] = 0
    return out


def coco_masks(data: dict) -> dict[int, np.ndarray]:
    """Each annotation decoded by pycocotools' own COCO API, by id."""
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return {a: coco.annToMask(coco.anns[a]).astype(bool) for a in coco.getAnnIds()}


@pytest.mark.parametrize("as_polygons", [False, True], ids=["rle", "polygons"])
def test_coco_round_trip_is_exact(truth, as_polygons, tmp_path):
    truth = with_holes(truth)
    path = write_coco(truth, tmp_path / "nuclei.json", polygons=as_polygons, file_name="nuclei.png")
    data = json.loads(path.read_text())
    masks = coco_masks(data)
    ids = np.unique(truth)[1:].tolist()
    assert sorted(masks) == ids
    for i in ids:
        np.testing.assert_array_equal(masks[i], truth == i)
    kinds = {type(a["segmentation"]).__name__ for a in data["annotations"]}
    assert kinds == ({"dict", "list"} if as_polygons else {"dict"})  # the holed nucleus stays RLE
    back = read_coco(path)
    assert isinstance(back.labels, samkit.LabelImage)
    np.testing.assert_array_equal(np.asarray(back.labels), truth)
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        rows, cols = np.nonzero(truth == a["id"])
        assert (x, y, x + w, y + h) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
        assert a["area"] == len(rows)


def test_polygon_round_trip_is_exact_with_holes(truth):
    truth = with_holes(truth)
    outlines = polygons(truth)
    assert sorted(outlines) == np.unique(truth)[1:].tolist()
    np.testing.assert_array_equal(to_labels(outlines, truth.shape, dtype=truth.dtype), truth)
    holes = [len(p) - 1 for rings in outlines.values() for p in rings]
    assert sum(holes) == 2  # exactly the two holes punched in
    ring = outlines[1][0][0]
    assert ring.shape[1] == 2 and (ring[0] == ring[-1]).all()  # (y, x), closed


def test_classes_and_scores_from_label_image_and_arguments(real_data):
    image, truth = load_dsb(real_data, IDS[0])
    labels = samkit.LabelImage(truth.shape)
    for i in np.unique(truth)[1:]:
        labels.commit(samkit.Mask.from_array(truth == i, score=0.5 + i / 100), int(i), attributes={"class_name": "cell"})
    labels.set_attributes({int(i): {"class_name": "nucleus"} for i in np.unique(truth)[1::2]})  # as a front end edits them
    labels.set_attributes({5: {"class_name": None}})  # no class: the default
    data = to_coco(labels, classes={3: "mitosis"})
    names = {c["id"]: c["name"] for c in data["categories"]}
    got = {a["id"]: (names[a["category_id"]], a["score"]) for a in data["annotations"]}
    assert got[1] == ("nucleus", pytest.approx(0.51)) and got[2] == ("cell", pytest.approx(0.52))
    assert got[3][0] == "mitosis" and got[5][0] == "object"
    back = read_coco(data)
    assert back.classes[3] == "mitosis" and back.scores[2] == pytest.approx(0.52)
    with pytest.raises(InvalidLabelError, match="object ids"):
        to_coco(labels, scores={"a": 1.0})


def test_empty_labels_export_valid_empty_files(tmp_path):
    import geopandas

    empty = np.zeros((64, 48), np.uint16)
    data = json.loads(write_coco(empty, tmp_path / "empty.json").read_text())
    assert data["annotations"] == [] and data["images"][0]["height"] == 64
    assert coco_masks(data) == {}
    for suffix in (".geojson", ".gpkg"):
        path = write_vector(empty, tmp_path / f"empty{suffix}")
        assert len(geopandas.read_file(path)) == 0
        assert not np.asarray(read_vector(path, shape=empty.shape).labels).any()
    assert napari_shapes(empty)[0] == [] and len(to_table(empty)) == 0


def test_existing_output_is_kept_unless_overwrite(truth, tmp_path):
    path = tmp_path / "out.json"
    path.write_text("keep me")
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        write_coco(truth, path)
    assert path.read_text() == "keep me"
    with pytest.raises(FileExistsError):  # the builtin a user would catch
        write_vector(truth, path)  # GeoJSON may be named .json too
    write_coco(truth, path, overwrite=True)
    assert len(json.loads(path.read_text())["annotations"]) == len(np.unique(truth)) - 1
    with pytest.raises(InvalidImageError, match=r"ending in \.geojson or \.json or \.gpkg"):
        write_vector(truth, tmp_path / "out.shp")


def test_napari_shapes_outline_every_pixel(truth):
    truth = with_holes(truth)
    data, kwargs, kind = napari_shapes(truth, classes={1: "first"})
    assert kind == "shapes" and kwargs["shape_type"] == "polygon"
    features = kwargs["features"]
    assert sum(features["hole"]) == 2 and features["class"][0] == "first"
    # napari's pixel centres are integers: shifted back by half a pixel, the outlines fill the same pixels
    shapes: dict = {}
    for vertices, label, hole in zip(data, features["id"], features["hole"]):
        ring = np.vstack([vertices, vertices[:1]]) + 0.5
        (shapes.setdefault(label, []).append([ring]) if not hole else shapes[label][-1].append(ring))
    np.testing.assert_array_equal(to_labels(shapes, truth.shape, dtype=truth.dtype), truth)
    napari = pytest.importorskip("napari")
    layer = napari.layers.Shapes(data, **{k: v for k, v in kwargs.items()})
    assert layer.nshapes == len(data)


def test_napari_shapes_of_a_3d_stack(real_data):
    import tifffile

    stack = tifffile.imread(real_data / "nuclei" / "stardist" / "mask3d.tif")
    data, kwargs, _ = napari_shapes(stack)
    assert all(v.shape[1] == 3 for v in data)
    planes = {int(v[0, 0]) for v in data}
    assert planes == {z for z in range(stack.shape[0]) if stack[z].any()}
    assert set(kwargs["features"]["id"]) == set(np.unique(stack)[1:].tolist())


def test_table_with_wkt_geometry(truth, tmp_path):
    import shapely

    table = to_table(truth)
    assert list(table.columns) == ["id", "class", "score", "area_px2", "perimeter_px", "geometry"]
    areas = dict(zip(table["id"], table["area_px2"]))
    ids, counts = np.unique(truth[truth > 0], return_counts=True)
    assert areas == dict(zip(ids.tolist(), counts.astype(float).tolist()))
    samkit.export_table(table, tmp_path / "objects.csv")
    back = samkit.read_table(tmp_path / "objects.csv")
    geometries = dict(zip(back["id"], shapely.from_wkt(back["geometry"])))
    np.testing.assert_array_equal(to_labels(geometries, truth.shape, dtype=truth.dtype), truth)
