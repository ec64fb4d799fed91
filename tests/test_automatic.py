"""segment_all on real images: the oracle through the whole automatic pipeline reproduces ground truth.

These tests check the pipeline and the stitching, not the prompt grid: they use small windows (objects cut by
many borders) and a prompt every 2-4 px (``points_per_side = tile_size // 2``), so that every nucleus is
prompted and the result must equal the ground truth. segment_all at its defaults, which finds about a third
of these nuclei, is tested in test_defaults.py.
"""

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy import ndimage

import samkit
from samkit.automatic import Settings, segment_all
from samkit.automatic import jobs, stitch
from samkit.automatic.generate import box_nms, clean, point_grid
from samkit.engine import TileGrid
from samkit.errors import AutosaveError, InvalidImageError
from samkit.metrics import evaluate, match
from samkit.testing import OracleModel, mosaic

from test_session import dsb_pairs


@pytest.fixture(scope="module")
def scene(real_data):
    return mosaic(dsb_pairs(real_data), (2048, 2048))


def assert_reproduces(truth, labels):
    """Every ground-truth object found exactly once, pixel for pixel, and nothing else."""
    scores = evaluate(truth, labels, thresholds=(0.5, 0.99))
    assert scores.ap.tolist() == [1.0, 1.0], (scores.tp, scores.fp, scores.fn)
    assert scores.mean_iou >= 0.99
    assert scores.matches.iou.min() == 1.0  # exact, not just close


def crossing(truth, grid: TileGrid):
    """(objects cut by a window edge, those wider than the overlap among them, those at a window corner)."""
    edges = [{int(s) for s in starts[1:]} | {int(s) + size for s in starts[:-1]}
             for starts, size in zip(grid.starts, grid.window_shape)]  # fmt: skip
    cut = wide = corner = 0
    for sl in ndimage.find_objects(truth):
        if sl is None:
            continue
        on = [any(s.start < e < s.stop for e in axis) for s, axis in zip(sl, edges)]
        cut += any(on)
        corner += all(on)
        wide += any(on) and max(s.stop - s.start for s in sl) > 2 * grid.halo
    return cut, wide, corner


@pytest.mark.parametrize("tile_size, halo", [(256, 8), (300, 20), (512, 64), (1024, 128)])
def test_oracle_reproduces_the_mosaic(scene, tile_size, halo):
    image, truth = scene
    # a point every 2 px, so the smallest nuclei (4 px) are prompted too
    labels = segment_all(image, OracleModel(truth), tile_size=tile_size, halo=halo, points_per_side=tile_size // 2)
    assert_reproduces(truth, labels)
    cut, wide, corner = crossing(truth, TileGrid(truth.shape, tile_size, halo))
    assert cut > 50 and (corner > 5 or tile_size > 512)
    if halo <= 20:  # objects wider than the overlap had to be joined from pieces
        assert wide > 50
    ids = np.unique(np.asarray(labels))[1:]
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))


def test_ids_follow_raster_order_whatever_the_window_order(scene, monkeypatch):
    """256 px windows: 5 x 4 of them, so that their order can be reversed."""
    image, truth = scene
    image, truth = image[:1100, :900], truth[:1100, :900]
    first = segment_all(image, OracleModel(truth), tile_size=256, halo=8, points_per_side=128)
    flat = np.asarray(first).ravel()
    ids, where = np.unique(flat, return_index=True)
    assert np.all(np.diff(where[1:]) > 0)  # object k + 1 starts after object k in raster order
    monkeypatch.setattr(TileGrid, "indices", lambda self: [(iy, ix) for iy in range(self.grid_shape[0])[::-1]
                                                         for ix in range(self.grid_shape[1])[::-1]])  # fmt: skip
    again = segment_all(image, OracleModel(truth), tile_size=256, halo=8, points_per_side=128)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(first))


def test_min_area_cleans_masks_like_skimage(scene):
    """A prompt every 2 px, so that every nucleus is found and the expected labels are exact."""
    from skimage.morphology import remove_small_holes, remove_small_objects

    image, truth = scene
    image, truth = image[:1024, :1024], truth[:1024, :1024]
    min_area = 30
    expected = np.zeros_like(truth)
    for i, sl in enumerate(ndimage.find_objects(truth), start=1):
        if sl is None:
            continue
        mask = np.pad(truth[sl] == i, 1)  # background around the object is not a hole
        mask = remove_small_holes(mask, max_size=min_area - 1)
        mask = remove_small_objects(mask, max_size=min_area - 1, connectivity=2)[1:-1, 1:-1]
        if mask.sum() >= min_area:
            expected[sl][mask] = i
    labels = segment_all(image, OracleModel(truth), tile_size=512, halo=64, points_per_side=256, min_area=min_area)
    assert_reproduces(expected, labels)
    assert len(np.unique(expected)) < len(np.unique(truth))  # some objects were small enough to go


def test_on_disk_output_is_a_label_image(scene, tmp_path):
    """256 px windows and a prompt every 2 px: several windows written into the folder, every nucleus exact."""
    image, truth = scene
    image, truth = image[:600, :700], truth[:600, :700]
    labels = segment_all(image, OracleModel(truth), tile_size=256, halo=16, points_per_side=128, out=tmp_path / "labels")
    assert labels.path == tmp_path / "labels"
    reopened = samkit.LabelImage.open(tmp_path / "labels")
    np.testing.assert_array_equal(np.asarray(reopened), np.asarray(labels))
    assert_reproduces(truth, reopened)
    with pytest.raises(InvalidImageError, match="already holds a label image"):
        segment_all(image, OracleModel(truth), tile_size=256, halo=16, out=tmp_path / "labels")


class FailingOracle(OracleModel):
    """Dies in the embedding of one window, like a process killed mid-run."""

    def label_window(self, pixels, window):
        if window[0] > 0 and window[1] > 0:
            raise MemoryError("simulated crash")
        return super().label_window(pixels, window)


def test_a_crash_never_leaves_a_label_image_reported_as_done(scene, tmp_path, monkeypatch):
    """256 px windows, so that the crash comes after some windows are done (a default window is the whole image)."""
    image, truth = scene
    image, truth = image[:600, :700], truth[:600, :700]
    out = tmp_path / "labels"
    with pytest.raises(MemoryError):
        segment_all(image, FailingOracle(truth), tile_size=256, halo=16, points_per_side=64, out=out)
    assert not out.exists()
    calls = []

    def dying_read(self, key):  # the write of the label image itself fails halfway
        calls.append(key)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return original(self, key)

    original = stitch.Assembled.__getitem__
    monkeypatch.setattr(stitch.Assembled, "__getitem__", dying_read)
    with pytest.raises((OSError, AutosaveError)):
        segment_all(image, OracleModel(truth), tile_size=256, halo=16, points_per_side=64, out=out)
    with pytest.raises(AutosaveError, match="no saved label image"):
        samkit.LabelImage.open(out)
    monkeypatch.setattr(stitch.Assembled, "__getitem__", original)
    labels = segment_all(image, OracleModel(truth), tile_size=256, halo=16, points_per_side=128, out=out)  # same folder
    assert_reproduces(truth, samkit.LabelImage.open(out))
    assert len(labels.objects) == len(np.unique(truth)) - 1


def test_small_images_empty_windows_and_one_huge_object(scene):
    image, truth = scene
    small = segment_all(image[:200, :150], OracleModel(truth[:200, :150]), tile_size=256, halo=8, points_per_side=128)
    assert_reproduces(truth[:200, :150], small)  # one window, smaller than a tile

    sparse_truth = truth[:1024, :1024].copy()
    sparse_truth[:, 300:800] = 0  # whole windows without objects
    empty = segment_all(image[:1024, :1024], OracleModel(sparse_truth), tile_size=256, halo=8, points_per_side=128)
    assert_reproduces(sparse_truth, empty)
    nothing = segment_all(image[:512, :512], OracleModel(np.zeros((512, 512), np.int32)), tile_size=256, halo=8)
    assert nothing.objects == {} and not np.asarray(nothing).any()

    nuclei = truth[:1024, :1024]
    huge = np.where(nuclei > 0, nuclei + 1, 1)  # one object under every window, the nuclei in its holes
    huge[100:140, 600:700] = 0  # a hole of background
    huge[500:520, 0:900] = 0  # and a notch
    labels = segment_all(image[:1024, :1024], OracleModel(huge), tile_size=256, halo=8, points_per_side=128)
    assert_reproduces(huge, labels)


def test_bad_arguments_give_clear_errors(scene):
    image, truth = scene
    oracle = OracleModel(truth[:300, :300])
    with pytest.raises(ValueError, match="points_per_side=0"):
        segment_all(image[:300, :300], oracle, points_per_side=0)
    with pytest.raises(ValueError, match=r"pred_iou_thresh=1.5: must lie in \[0, 1\]"):
        segment_all(image[:300, :300], oracle, pred_iou_thresh=1.5)
    with pytest.raises(ValueError, match="min_area=-1"):
        segment_all(image[:300, :300], oracle, min_area=-1)
    with pytest.raises(ValueError, match="halo=0"):
        segment_all(image[:300, :300], oracle, halo=0)

    class ClicksOnly:  # a window model that can decode clicks but not many points at once
        is_sam, name = False, "clicks-only model"

        def embedding_spec(self, shape):
            return shape, "int32"

        def signature(self):
            return {"model": "clicks-only"}

        def embed(self, pixels, windows):
            return np.zeros(pixels.shape[:3], np.int32)

        def decoder(self, embedding, window):
            raise NotImplementedError

    with pytest.raises(TypeError, match="clicks-only model cannot segment automatically"):
        segment_all(image[:300, :300], ClicksOnly())


class UnsureOracle(OracleModel):
    """The oracle, with a predicted IoU of 0.5 for every third object (by ground-truth id)."""

    def point_decoder(self, embedding, window):
        decode = super().point_decoder(embedding, window)

        def unsure(points, *, min_score=0.0, **options):
            found = decode(points, **options)
            ys, xs = np.asarray(points, int)[found.point].T
            score = np.where(np.asarray(embedding)[ys, xs] % 3 == 0, 0.5, 1.0).astype(np.float32)
            keep = np.flatnonzero(score >= min_score)
            return found._replace(point=found.point[keep], score=score[keep], stability=found.stability[keep],
                                  crops=[found.crops[k] for k in keep], offsets=found.offsets[keep])  # fmt: skip

        return unsure


def test_semi_automatic_keeps_confident_objects_and_hands_the_rest_to_the_user(scene, tmp_path):
    """The data engine's middle stage: confident objects automatically, then the user clicks what is missing.

    A prompt every 2 px, so that the only objects missing are the unsure ones."""
    image, truth = scene
    image, truth = image[:1024, :1024], truth[:1024, :1024]
    auto = segment_all(image, UnsureOracle(truth), tile_size=256, halo=16, points_per_side=128, pred_iou_thresh=0.88,
                       out=tmp_path / "labels")  # fmt: skip
    missing = match(truth, auto).unmatched_truth
    ids = np.unique(truth)[1:]
    np.testing.assert_array_equal(missing, ids[ids % 3 == 0])  # exactly the unsure ones are left to the user
    session = samkit.Session(image, OracleModel(truth), tile_size=256, halo=16)
    annotation = samkit.Annotation(session, auto)  # the interactive front ends take the label image as it is
    for i in missing:
        ys, xs = np.nonzero(truth == i)
        annotation.add_point(ys[len(ys) // 2], xs[len(xs) // 2])
        assert annotation.commit() is not None
    assert_reproduces(truth, samkit.LabelImage.open(tmp_path / "labels"))


def test_deepforest_crowns_from_boxes(real_data):
    """Every crown box of the 1035 x 1249 YELL scene gives one object, across windows; so does segment_all."""
    from PIL import Image

    folder = real_data / "ecology" / "deepforest"
    name = "2019_YELL_2_541000_4977000_image_crop"
    image = np.asarray(Image.open(folder / f"{name}.png"))[..., :3]
    boxes = np.array([[int(float(o.find("bndbox").find(k).text)) for k in ("ymin", "xmin", "ymax", "xmax")]
                      for o in ET.parse(folder / f"{name}.xml").getroot().iter("object")])  # fmt: skip
    assert len(boxes) == 279
    # ground truth from the boxes alone: each crown the ellipse inscribed in its box, small ones in front
    truth = np.zeros(image.shape[:2], np.int32)
    for i in np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable"):
        y0, x0, y1, x1 = boxes[i]
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = ((yy - (y0 + y1 - 1) / 2) / ((y1 - y0) / 2)) ** 2 + ((xx - (x0 + x1 - 1) / 2) / ((x1 - x0) / 2)) ** 2 <= 1
        truth[y0:y1, x0:x1][inside] = i + 1
    session = samkit.Session(image, OracleModel(truth), tile_size=512, halo=32)
    labels = samkit.LabelImage(truth.shape)
    for mask in session.segment(box=boxes):  # one batched call through the engine
        labels.commit(mask)
    assert len(labels.objects) == len(boxes)
    assert_reproduces(truth, labels)
    auto = segment_all(image, OracleModel(truth), tile_size=512, halo=32, points_per_side=256)
    assert len(auto.objects) == len(boxes)
    assert_reproduces(truth, auto)


# -- the parts ------------------------------------------------------------------


def test_point_grid_and_nms():
    grid = point_grid((100, 60), 4)
    assert grid.shape == (16, 2)
    np.testing.assert_allclose(grid[:4], [[12.5, 7.5], [12.5, 22.5], [12.5, 37.5], [12.5, 52.5]])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 4]])
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.2])
    # box 1 (best) suppresses 0 and 2 (IoU 0.81 and 0.81 > 0.7); 3 and 4 overlap nothing above 0.7
    assert box_nms(boxes, scores, 0.7).tolist() == [1, 4, 3]
    # 0 has 2's box and a lower score: dropped as its duplicate; 2 stays next to 1 (IoU 0.81 <= 0.85)
    assert box_nms(boxes, scores, 0.85).tolist() == [1, 2, 4, 3]


def test_clean_keeps_islands_on_inner_window_edges():
    crop = np.zeros((20, 20), bool)
    crop[5:15, 5:15] = True
    crop[9, 9] = False  # a one-pixel hole
    crop[0:2, 0:2] = True  # a 4-pixel island touching the crop's top-left
    cleaned = clean(crop, (0, 0), 10, (None, None, None, None))
    assert cleaned[9, 9] and not cleaned[0:2, 0:2].any()
    kept = clean(crop, (0, 0), 10, (0, None, None, None))  # the window's top edge is inside the image
    assert kept[0:2, 0:2].all()


def test_cores_partition_the_image():
    for shape, tile, halo in [((1000, 2500), 512, 64), ((300, 200), 1024, 128), ((777, 1025), 256, 1)]:
        grid = TileGrid(shape, tile, halo)
        count = np.zeros(shape, int)
        for index in grid.indices():
            y0, x0, y1, x1 = stitch.core(grid, index)
            wy0, wx0, wy1, wx1 = grid.window(index)
            assert wy0 <= y0 <= y1 <= wy1 and wx0 <= x0 <= x1 <= wx1
            count[y0:y1, x0:x1] += 1
        assert (count == 1).all()


def test_grid_mode_has_sams_defaults():
    grid = Settings(mode="grid")
    assert (grid.points_per_side, grid.points_per_batch, grid.pred_iou_thresh, grid.stability_score_thresh,
            grid.stability_score_offset, grid.box_nms_thresh, grid.min_area) == (32, 64, 0.88, 0.95, 1.0, 0.7, 0)  # fmt: skip
    assert Settings(points_per_side=16).mode == "grid"  # a point grid asked for is the grid mode
    assert jobs.default_tile("vit_b") == 1024
