"""GeoPackage / GeoJSON with the CRS of a real GeoTIFF (DeepForest OSBS_029), prompt files driving segmentation, the CLI."""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import samkit
from samkit.cli import main
from samkit.errors import CRSError, InvalidPromptError
from samkit.export import Georef, read_prompts, read_vector, segment_prompts, to_geodataframe, write_coco, write_vector
from samkit.testing import OracleModel

geopandas = pytest.importorskip("geopandas", reason="GIS exports need pip install 'samkit[gis]'")
shapely = pytest.importorskip("shapely")
pytest.importorskip("rasterio")


def voc_boxes(path) -> np.ndarray:
    """(B, 4) (y0, x0, y1, x1) boxes of a Pascal VOC file, read independently of samkit."""
    return np.array([[float(o.find("bndbox").find(k).text) for k in ("ymin", "xmin", "ymax", "xmax")]
                     for o in ET.parse(path).getroot().iter("object")])  # fmt: skip


def crowns(boxes: np.ndarray, shape) -> np.ndarray:
    """Crown truth from boxes alone: the ellipse inscribed in each box, small ones in front; id = box index + 1."""
    truth = np.zeros(shape, np.int32)
    for i in np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"):
        y0, x0, y1, x1 = boxes[i].astype(int)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = ((yy - (y0 + y1 - 1) / 2) / ((y1 - y0) / 2)) ** 2 + ((xx - (x0 + x1 - 1) / 2) / ((x1 - x0) / 2)) ** 2 <= 1
        truth[y0:y1, x0:x1][inside] = i + 1
    return truth


@pytest.fixture
def osbs(real_data):
    folder = real_data / "ecology" / "deepforest"
    boxes = voc_boxes(folder / "OSBS_029.xml")
    return folder / "OSBS_029.tif", folder / "OSBS_029.xml", boxes, crowns(boxes, (400, 400))


def world_boxes_file(path, boxes, georef: Georef, crs=None):
    """A GeoJSON / GPKG of the boxes as world-coordinate rectangles (optionally reprojected to ``crs``)."""
    rectangles = [shapely.box(*georef.to_world([[y1, x0]])[0], *georef.to_world([[y0, x1]])[0]) for y0, x0, y1, x1 in boxes]
    frame = geopandas.GeoDataFrame({"label": ["Tree"] * len(boxes)}, geometry=rectangles, crs=georef.crs)
    (frame if crs is None else frame.to_crs(crs)).to_file(path, engine="pyogrio")
    return path


def test_georef_of_the_geotiff(osbs):
    georef = Georef.from_image(osbs[0])
    assert georef.same_crs("EPSG:32617") and georef.unit == "m" and georef.shape == (400, 400)
    assert georef.pixel_area == pytest.approx(0.01)
    np.testing.assert_allclose(georef.to_world([[0, 0], [400, 400]]), [[404211.9, 3285142.9], [404251.9, 3285102.9]])
    np.testing.assert_allclose(georef.to_pixel(georef.to_world([[12.5, 300.25]])), [[12.5, 300.25]])


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson"])
def test_vector_export_has_crs_areas_and_reads_back(osbs, tmp_path, suffix):
    image, _, boxes, truth = osbs
    path = write_vector(truth, tmp_path / f"crowns{suffix}", georef=image, classes={1: "pine"})
    frame = geopandas.read_file(path)
    assert frame.crs.to_epsg() == 32617 and len(frame) == len(boxes)
    ids, counts = np.unique(truth[truth > 0], return_counts=True)
    np.testing.assert_allclose(frame.set_index("id").loc[ids, "area_m2"], counts * 0.01, rtol=1e-9)
    assert (frame["perimeter_m"] > 0).all() and frame.loc[frame.id == 1, "class"].item() == "pine"
    # the shapes lie on the image's footprint in UTM 17N
    x0, y0, x1, y1 = frame.total_bounds
    assert 404211.9 <= x0 < x1 <= 404251.9 and 3285102.9 <= y0 < y1 <= 3285142.9
    back = read_vector(path, georef=image)
    np.testing.assert_array_equal(np.asarray(back.labels), truth)
    assert back.classes[1] == "pine"


def test_vector_read_reprojects_from_another_crs(osbs, tmp_path):
    image, _, _, truth = osbs
    lonlat = to_geodataframe(truth, georef=image).to_crs("EPSG:4326")
    lonlat.to_file(tmp_path / "wgs84.gpkg", engine="pyogrio")
    back = np.asarray(read_vector(tmp_path / "wgs84.gpkg", georef=image).labels)
    assert (back == truth).mean() > 0.999  # edges reprojected twice: within float error of pixel centres
    with pytest.raises(CRSError, match=r"EPSG:4326.*EPSG:32617"):
        read_vector(tmp_path / "wgs84.gpkg", georef=image, reproject=False)


def test_prompts_from_every_format_agree(osbs, tmp_path):
    image, xml, boxes, truth = osbs
    georef = Georef.from_image(image)
    from_voc = read_prompts(xml, image)
    np.testing.assert_array_equal(from_voc.boxes, boxes)
    assert from_voc.box_classes == ["Tree"] * len(boxes) and from_voc.outside == 0
    coco = tmp_path / "boxes.json"
    write_coco(truth, coco, classes={int(i): "Tree" for i in np.unique(truth)[1:]})
    ends = {int(i): box for i, box in enumerate(boxes, 1)}
    got = read_prompts(coco, image).boxes
    # COCO boxes are the crowns' tight pixel boxes: inside the VOC boxes, one per crown
    assert len(got) == len(boxes) and all((b[:2] >= ends[i][:2]).all() and (b[2:] <= ends[i][2:]).all()
                                          for i, b in zip(np.unique(truth)[1:], got))  # fmt: skip
    csv = tmp_path / "boxes.csv"
    csv.write_text("image_path,xmin,ymin,xmax,ymax,label\n" + "".join(
        f"OSBS_029.tif,{x0:g},{y0:g},{x1:g},{y1:g},Tree\n" for y0, x0, y1, x1 in boxes))  # fmt: skip
    np.testing.assert_array_equal(read_prompts(csv, image).boxes, boxes)
    for suffix in (".geojson", ".gpkg"):
        path = world_boxes_file(tmp_path / f"world{suffix}", boxes, georef)
        np.testing.assert_allclose(read_prompts(path, image).boxes, boxes, atol=1e-6)
    other = world_boxes_file(tmp_path / "lonlat.gpkg", boxes, georef, crs="EPSG:4326")
    np.testing.assert_allclose(read_prompts(other, image).boxes, boxes, atol=1e-3)
    with pytest.raises(CRSError, match=r"EPSG:4326 \(WGS 84\).*EPSG:32617 \(WGS 84 / UTM zone 17N\)"):
        read_prompts(other, image, reproject=False)
    with pytest.raises(CRSError, match="EPSG:32617.*the image has no CRS"):
        read_prompts(tmp_path / "world.gpkg", (400, 400))  # an image without georeferencing


def test_prompts_outside_the_image_are_counted(osbs, tmp_path):
    image, xml, boxes, _ = osbs
    text = xml.read_text().replace("</annotation>", "".join(
        f"<object><name>Tree</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for x0, y0, x1, y1 in [(500, 10, 520, 30), (10, 450, 30, 470), (-40, -40, -10, -10), (390, 390, 420, 410)]) + "</annotation>")  # fmt: skip
    (tmp_path / "more.xml").write_text(text)
    with pytest.warns(UserWarning, match=r"3 of 65 prompts .* outside the image of shape \(400, 400\)"):
        prompts = read_prompts(tmp_path / "more.xml", image)
    assert prompts.outside == 3 and prompts.clipped == 1 and len(prompts.boxes) == len(boxes) + 1
    np.testing.assert_array_equal(prompts.boxes[-1], [390, 390, 400, 400])
    with pytest.raises(InvalidPromptError, match=r"for an image of \(H, W\) = \(400, 400\), not \(1035, 1249\)"):
        read_prompts(xml, xml.with_name("2019_YELL_2_541000_4977000_image_crop.png"))
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InvalidPromptError, match="xmin, ymin, xmax, ymax"):
        read_prompts(tmp_path / "bad.csv", image)


def test_voc_boxes_segment_the_yell_scene_across_tiles(real_data):
    """279 crown boxes of the 1035 x 1249 scene, many on window borders, give the crowns exactly."""
    from PIL import Image

    folder = real_data / "ecology" / "deepforest"
    name = "2019_YELL_2_541000_4977000_image_crop"
    image = np.asarray(Image.open(folder / f"{name}.png"))[..., :3]
    prompts = read_prompts(folder / f"{name}.xml", image)
    truth = crowns(voc_boxes(folder / f"{name}.xml"), image.shape[:2])
    session = samkit.Session(image, OracleModel(truth), tile_size=512, halo=32)
    starts = set(session.grid.starts[1].tolist()[1:])
    on_border = [b for b in prompts.boxes if any(b[1] < s < b[3] for s in starts)]
    assert len(on_border) > 10
    calls = []
    result = segment_prompts(session, prompts, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_array_equal(np.asarray(result.labels), truth)  # commit order = file order = truth ids
    assert calls[-1] == (279, 279) and len(calls) == 5
    assert set(result.classes.values()) == {"Tree"} and result.labels.log[-1]["prompt"]["class"] == "Tree"


@pytest.mark.parametrize("kind", ["gpkg", "geojson", "coco"])
def test_prompt_files_segment_the_geotiff(osbs, tmp_path, kind):
    """World-coordinate GPKG / GeoJSON boxes and COCO pixel boxes give the crowns exactly, over 2 x 2 windows."""
    image, _, boxes, truth = osbs
    if kind == "coco":
        path = write_coco(truth, tmp_path / "crowns.json", classes={int(i): "Tree" for i in np.unique(truth)[1:]})
    else:
        path = world_boxes_file(tmp_path / f"crowns.{kind}", boxes, Georef.from_image(image))
    session = samkit.Session(image, OracleModel(truth), tile_size=256, halo=32)
    result = segment_prompts(session, read_prompts(path, image))
    np.testing.assert_array_equal(np.asarray(result.labels), truth)
    assert set(result.classes.values()) == {"Tree"}


def test_cli_segment_with_prompts_and_export(osbs, tmp_path, capsys):
    image, xml, boxes, _ = osbs
    out = tmp_path / "crowns.gpkg"
    args = ["segment", str(image), "--prompts", str(xml), "-o", str(out), "--model", "classical",
            "--tile-size", "256", "--halo", "32", "--cache", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    assert "61 boxes, 0 points" in capsys.readouterr().err
    frame = geopandas.read_file(out)
    assert frame.crs.to_epsg() == 32617 and 50 <= len(frame) <= 61
    folder = tmp_path / "labels"
    assert main(args[:5] + [str(folder)] + args[6:] + ["--no-progress"]) == 0
    assert main(["export", str(folder), "-o", str(tmp_path / "crowns.json")]) == 0
    assert main(["export", str(folder), "-o", str(tmp_path / "crowns.json")]) == 2  # never overwritten
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(["export", str(folder), "-o", str(tmp_path / "crowns.json"), "--overwrite", "--polygons"]) == 0
    data = json.loads((tmp_path / "crowns.json").read_text())
    assert len(data["annotations"]) == len(samkit.LabelImage.open(folder).objects)
    assert main(["export", str(folder), "-o", str(tmp_path / "c.csv"), "--georef", str(image)]) == 0
    assert main(["segment", str(image), "--prompts", str(tmp_path / "none.xml"), "-o", str(tmp_path / "x.gpkg")]) == 2


def test_point_prompts_in_pixels_segment_nuclei(real_data, tmp_path):
    """CSV points and a pixel-coordinate GeoJSON (no CRS, an image without georeferencing) drive segmentation."""
    from conftest import load_dsb, object_centres

    image, truth = load_dsb(real_data, "1d9eacb3161f")
    points = object_centres(truth, 12)
    (tmp_path / "points.csv").write_text("y,x,class\n" + "".join(f"{y},{x},nucleus\n" for y, x in points))
    prompts = read_prompts(tmp_path / "points.csv", image)
    np.testing.assert_array_equal(prompts.points, points)
    session = samkit.Session(image, OracleModel(truth), tile_size=128, halo=16)
    result = segment_prompts(session, prompts)
    got = np.asarray(result.labels)
    for i, (y, x) in enumerate(points, 1):
        np.testing.assert_array_equal(got == i, truth == truth[y, x])
    frame = geopandas.GeoDataFrame({"class": ["nucleus"] * len(points)},
                                   geometry=shapely.points(points[:, 1] + 0.5, points[:, 0] + 0.5))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no CRS: pixels
        frame.to_file(tmp_path / "points.geojson", engine="pyogrio")
    np.testing.assert_array_equal(read_prompts(tmp_path / "points.geojson", image).points, points + 0.5)
    np.testing.assert_array_equal(read_prompts(tmp_path / "points.geojson", image, coords="pixel").points, points + 0.5)


def test_world_csv_and_bad_inputs(osbs, tmp_path):
    image, _, boxes, _ = osbs
    georef = Georef.from_image(image)
    world = np.concatenate([georef.to_world(boxes[:, [2, 1]]), georef.to_world(boxes[:, [0, 3]])], 1)
    (tmp_path / "utm.csv").write_text("xmin,ymin,xmax,ymax\n" + "".join(",".join(f"{v:.17g}" for v in r) + "\n" for r in world))
    np.testing.assert_allclose(read_prompts(tmp_path / "utm.csv", image, coords="world").boxes, boxes, atol=1e-6)
    with pytest.raises(InvalidPromptError, match="coords='world' needs the image's georeferencing"):
        read_prompts(tmp_path / "utm.csv", (400, 400), coords="world")
    with pytest.raises(InvalidPromptError, match=r"prompt files are .xml, .json, .csv, .geojson, .gpkg, not .txt"):
        read_prompts(tmp_path / "boxes.txt", image)
    with pytest.raises(samkit.errors.InvalidImageError, match="LabelImage or an integer array"):
        write_vector([[1, 2]], tmp_path / "x.gpkg")
    with pytest.raises(samkit.errors.InvalidImageError, match="integers in 2 or more dimensions"):
        write_vector(np.zeros((4, 4)), tmp_path / "x.gpkg")
    with pytest.raises(CRSError, match="no georeferencing"):
        Georef.from_image(real_png := image.with_suffix(".png"))
    assert real_png.is_file()
    (tmp_path / "words.csv").write_text("xmin,ymin,xmax,ymax\n1,2,three,4\n")
    with pytest.raises(InvalidPromptError, match=r"must hold numbers"):
        read_prompts(tmp_path / "words.csv", image)
