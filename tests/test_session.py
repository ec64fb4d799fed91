"""Session + OracleModel on real mosaics: every object whole from one click or box, across tiles."""

import threading
import time

import numpy as np
import pytest
from scipy import ndimage

import samkit
from samkit.engine import Session, TileGrid
from samkit.errors import EmbeddingCancelled, InvalidPromptError
from samkit.testing import OracleModel, mosaic

from conftest import innermost


def dsb_pairs(real_data):
    import tifffile
    from PIL import Image

    folder = real_data / "nuclei" / "dsb2018"
    pairs = []
    for path in sorted(folder.glob("*_img.png")):
        image = np.asarray(Image.open(path).convert("RGB"))
        labels = tifffile.imread(str(path).replace("_img.png", "_labels.tif"))
        pairs.append((image, labels))
    return pairs


@pytest.fixture(scope="module")
def scene(real_data):
    return mosaic(dsb_pairs(real_data), (4096, 4096))


def objects_to_check(labels, grid: TileGrid, limit: int, seed: int = 0):
    """Ids of objects cut by a window edge (all, up to ``limit``), plus some others; their clicks and boxes."""
    boxes = ndimage.find_objects(labels)
    edges_y = {int(s) for s in grid.starts[0][1:]} | {int(s + grid.tile_size) for s in grid.starts[0][:-1]}
    edges_x = {int(s) for s in grid.starts[1][1:]} | {int(s + grid.tile_size) for s in grid.starts[1][:-1]}
    crossing, others = [], []
    for i, sl in enumerate(boxes, start=1):
        if sl is None:
            continue
        ys, xs = sl
        cut = any(ys.start < e < ys.stop for e in edges_y) or any(xs.start < e < xs.stop for e in edges_x)
        (crossing if cut else others).append(i)
    rng = np.random.default_rng(seed)
    chosen = crossing[:limit] + list(rng.choice(others, size=min(len(others), limit // 4), replace=False))
    return chosen, boxes


def assert_exact(mask, labels, sl, i):
    """The mask equals ground-truth object ``i`` pixel for pixel."""
    y0, x0, y1, x1 = sl[0].start, sl[1].start, sl[0].stop, sl[1].stop
    assert mask.bbox == (y0, x0, y1, x1), f"object {i}: bbox {mask.bbox} != {(y0, x0, y1, x1)}"
    np.testing.assert_array_equal(mask.crop, labels[sl] == i, err_msg=f"object {i}")


@pytest.mark.parametrize("tile_size, halo, stitched", [(1024, 128, False), (512, 32, False), (256, 2, True), (300, 20, True)])
def test_one_click_gives_every_object_whole(scene, tile_size, halo, stitched):
    image, labels = scene
    session = Session(image, OracleModel(labels), tile_size=tile_size, halo=halo)
    chosen, boxes = objects_to_check(labels, session.grid, limit=300)
    assert len(chosen) > 100
    crossed = 0
    for i in chosen:
        mask = session.segment(points=[innermost(labels, boxes[i - 1], i)], labels=[1])
        assert_exact(mask, labels, boxes[i - 1], i)
        crossed += len(mask.prompt["windows"]) > 1
    if stitched:  # overlaps narrower than the objects: they had to be followed across windows
        assert crossed > 20


@pytest.mark.parametrize("tile_size, halo", [(1024, 128), (256, 2)])
def test_many_boxes_in_one_call(scene, tile_size, halo):
    image, labels = scene
    session = Session(image, OracleModel(labels), tile_size=tile_size, halo=halo)
    chosen, boxes = objects_to_check(labels, session.grid, limit=200, seed=1)
    query = np.array([[boxes[i - 1][0].start, boxes[i - 1][1].start, boxes[i - 1][0].stop, boxes[i - 1][1].stop] for i in chosen])
    masks = session.segment(box=query)
    assert len(masks) == len(chosen)
    for i, mask in zip(chosen, masks):
        assert_exact(mask, labels, boxes[i - 1], i)


def test_only_needed_tiles_are_embedded(scene):
    image, labels = scene
    session = Session(image, OracleModel(labels))
    assert session.grid.grid_shape == (5, 5) and not session.embedded().any()
    boxes = ndimage.find_objects(labels)
    i = next(i for i, sl in enumerate(boxes, 1) if sl and sl[0].start > 1500 and sl[1].start > 1500)
    session.segment(points=[innermost(labels, boxes[i - 1], i)], labels=[1])
    assert 1 <= session.embedded().sum() <= 4


def test_grid_windows_cover_the_image_with_equal_sizes():
    grid = TileGrid((1000, 2500), tile_size=512, halo=64)
    assert grid.grid_shape == (3, 7)
    covered = np.zeros(grid.shape, int)
    for index in grid.indices():
        y0, x0, y1, x1 = grid.window(index)
        assert (y1 - y0, x1 - x0) == (512, 512)
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1
    assert grid.window((2, 6)) == (488, 1988, 1000, 2500)  # last windows flush with the edges
    # a pixel is deepest in the window whose centre it is nearest to
    assert grid.best_window([450], [400]) == (1, 0)
    small = TileGrid((300, 200), tile_size=1024, halo=128)
    assert small.grid_shape == (1, 1) and small.window((0, 0)) == (0, 0, 300, 200)


def test_bad_prompts_raise_clear_errors(scene):
    image, labels = scene
    session = Session(image, OracleModel(labels))
    with pytest.raises(InvalidPromptError, match="outside the image"):
        session.segment(points=[[4096, 10]], labels=[1])
    with pytest.raises(InvalidPromptError, match="outside the image"):
        session.segment(box=[-5, 0, 20, 20])
    with pytest.raises(InvalidPromptError, match="no prompt"):
        session.segment()
    with pytest.raises(InvalidPromptError, match="NaN"):
        session.segment(points=[[np.nan, 3]], labels=[1])
    with pytest.raises(InvalidPromptError, match="mask_input must be a samkit.Mask"):
        session.segment(points=[[10, 10]], labels=[1], mask_input=np.zeros((1, 256, 256)))
    background = np.argwhere(labels == 0)[0]
    assert session.segment(points=[background], labels=[1]).empty


class SlowOracle(OracleModel):
    """The oracle, taking ``delay`` seconds per window like a real encoder on a CPU; ``embedded`` lists the
    windows (level-0 boxes) in the order they were embedded."""

    def __init__(self, labels, delay):
        super().__init__(labels)
        self.delay = delay
        self.embedded = []

    def label_window(self, pixels, window):
        self.embedded.append(tuple(window))
        time.sleep(self.delay)
        return super().label_window(pixels, window)


def test_background_embedding_reports_progress_and_leaves_clicks_fast(scene):
    image, labels = scene
    session = Session(image[:2048, :2048], SlowOracle(labels[:2048, :2048], 0.05))  # 3 x 3 default windows
    seen = []
    job = session.embed_all(progress=lambda done, total, eta: seen.append((done, total)))
    job.result(timeout=60)
    assert seen[-1] == (len(session.grid), len(session.grid))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert session.embedded().all()


def test_click_jumps_the_queue_and_cancel_stops(scene):
    """256 px windows, so that 81 windows are queued and the clicked object's are near the end of the queue."""
    image, labels = scene
    crop_img, crop_lab = image[:2048, :2048], labels[:2048, :2048]
    session = Session(crop_img, SlowOracle(crop_lab, 0.2), tile_size=256, halo=8)  # 81 windows, ~16 s in all
    job = session.embed_all()
    time.sleep(0.3)
    boxes = ndimage.find_objects(crop_lab)
    i = len(boxes)  # an object near the end of the queue
    while boxes[i - 1] is None:
        i -= 1
    model = session.model
    before = len(model.embedded)  # windows taken by the background job so far (one may be in progress)
    mask = session.segment(points=[innermost(crop_lab, boxes[i - 1], i)], labels=[1], timeout=30)
    assert_exact(mask, crop_lab, boxes[i - 1], i)
    # the click's windows were embedded next, not after the ~70 queued before them: while the click decodes
    # one window and asks for the next, the worker takes at most one background window in between
    needed = [session.grid.window(tuple(w)) for w in mask.prompt["windows"]]
    order = [model.embedded.index(w) for w in needed]
    assert max(order) < before + 2 * len(needed), (before, order)
    assert not job.finished
    job.cancel()
    assert job.wait(timeout=5)
    with pytest.raises(EmbeddingCancelled):
        job.result()
    assert session.embedded().sum() < len(session.grid)


def test_waiting_click_gets_a_clear_error_when_embedding_is_cancelled(scene):
    """512 px windows, so that the click's window is queued behind the one being embedded (a 1024 px default
    window would be that one)."""
    image, labels = scene
    session = Session(image[:1024, :1024], SlowOracle(labels[:1024, :1024], 1.0), tile_size=512, halo=8)
    errors = []

    def click():
        try:
            session.segment(points=[[900, 900]], labels=[1])
        except EmbeddingCancelled as error:
            errors.append(error)

    session.embed(region=(0, 0, 10, 10))  # keeps the worker busy for a second
    thread = threading.Thread(target=click)
    thread.start()
    time.sleep(0.2)
    session.cancel()
    thread.join(timeout=10)
    assert len(errors) == 1 and "cancelled" in str(errors[0])


def test_sessions_share_one_worker_per_model(scene):
    image, labels = scene
    oracle = OracleModel(labels[:512, :512])
    a = Session(image[:512, :512], oracle)
    b = Session(image[:512, :512], oracle, tile_size=256, halo=8)  # other settings, same model: same worker
    assert a.worker is b.worker


def test_classical_fallback_segments_the_sample_image():
    image, truth = samkit.data.nuclei()
    session = Session(image, "classical")
    assert "not SAM" in session.model.name
    ious = []
    for i, sl in enumerate(ndimage.find_objects(truth), 1):
        mask = session.segment(points=[innermost(truth, sl, i)], labels=[1])
        ious.append(mask.iou(samkit.Mask.from_array(truth == i)))
    assert np.mean(ious) > 0.5


def test_an_image_changed_on_disk_is_never_served_stale_embeddings(tmp_path):
    import tifffile

    image, _ = samkit.data.nuclei()
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    first = Session(path, "classical", cache=tmp_path / "cache")
    first.embed_all().result(timeout=60)
    again = Session(path, "classical", cache=tmp_path / "cache")
    assert again.store.path == first.store.path and again.embedded().all()  # reused

    time.sleep(0.01)
    tifffile.imwrite(path, image[:, ::-1])  # same size, new content
    changed = Session(path, "classical", cache=tmp_path / "cache")
    assert changed.store.path != first.store.path and not changed.embedded().any()
    mask = changed.segment(points=[[74, 696 - 1 - 349]], labels=[1])
    expected = Session(image[:, ::-1].copy(), "classical").segment(points=[[74, 696 - 1 - 349]], labels=[1])
    assert mask.bbox == expected.bbox and np.array_equal(mask.crop, expected.crop)


def test_pyramid_level_embeds_coarser_windows_and_masks_come_back_full_size(tmp_path, scene):
    """Level 1 of a 2048 px pyramid, 512 px windows with a 4 px halo, so that objects are followed across the
    coarse windows' borders (a 1024 px window would hold the whole level)."""
    import tifffile

    image, labels = scene
    image, labels = image[:2048, :2048], labels[:2048, :2048]
    path = tmp_path / "pyramid.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, subifds=1, tile=(256, 256), metadata={"axes": "YXS"})
        tif.write(image[::2, ::2], subfiletype=1, tile=(256, 256))
    session = Session(path, OracleModel(labels), level=1, tile_size=512, halo=4)
    assert session.grid.shape == (1024, 1024) and session.scale == (2.0, 2.0)
    # what the engine sees at level 1: the oracle samples level-0 labels at the centre of each coarse pixel
    # (level pixel j covers level-0 pixels 2j and 2j + 1: sampled at 2j + 1); masks come back at level 0 by
    # nearest neighbour (level-0 pixel y takes level pixel y // 2)
    coarse = labels[1::2, 1::2]
    expected = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)
    level0_grid = TileGrid(labels.shape, 1024, 8)  # the coarse windows, in level-0 pixels
    chosen, boxes = objects_to_check(labels, level0_grid, limit=40)
    crossed = 0
    for i in chosen:
        mask = session.segment(points=[innermost(labels, boxes[i - 1], i)], labels=[1])
        np.testing.assert_array_equal(mask.to_array(labels.shape), expected == i, err_msg=f"object {i}")
        crossed += len(mask.prompt["windows"]) > 1
    assert crossed >= 5  # followed across coarse windows


def test_multichannel_ome_tiff_maps_chosen_channels_once_for_all_windows(real_data, tmp_path):
    """256 px windows, so that the 512 px image has several, mapped alike (a default window would be all of it)."""
    import tifffile

    folder = real_data / "cells" / "examplehuman"
    channels = np.stack([tifffile.imread(p) for p in sorted(folder.glob("*.tif"))])  # (3, 512, 512) uint8
    stack = (channels.astype(np.uint16) * 200)  # as a 16-bit camera would store it
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={"axes": "CYX", "Channel": {"Name": ["DNA", "PH3", "Cell"]}})
    session = Session(path, "classical", tile_size=256, halo=16, channels=[0])
    assert session.intensity.channels == (0,)
    low, high = session.intensity.low[0], session.intensity.high[0]
    np.testing.assert_allclose((low, high), np.percentile(stack[0], (0.5, 99.5)))
    window = session.grid.window((1, 1))
    rgb = session.intensity.apply(session.image.read(*window))
    assert rgb.shape == (256, 256, 3) and (rgb[..., 0] == rgb[..., 2]).all()  # one channel, as grey


@pytest.mark.slow
def test_large_mosaic_every_crossing_object_whole(real_data):
    image, labels = mosaic(dsb_pairs(real_data), (8192, 8192))
    session = Session(image, OracleModel(labels), tile_size=1024, halo=16)
    chosen, boxes = objects_to_check(labels, session.grid, limit=2000, seed=2)
    assert len(chosen) > 1000
    for i in chosen:
        assert_exact(session.segment(points=[innermost(labels, boxes[i - 1], i)], labels=[1]), labels, boxes[i - 1], i)
