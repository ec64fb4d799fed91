"""The Jupyter annotator without a browser: canvas events in, labels out (oracle model, real images).

Events are fed through the same handler the page's messages reach
(ipycanvas's ``_handle_frontend_event``), so everything from the canvas
coordinates on is what runs in a notebook.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy import ndimage

pytest.importorskip("ipycanvas", reason="the widget needs the notebook extra: pip install -e '.[notebook]'")

import samkit  # noqa: E402
from samkit.testing import OracleModel, SamLikeModel, mosaic  # noqa: E402
from samkit.widget.display import READ_BUDGET, ImageDisplay, LabelDisplay, Overview, Source  # noqa: E402
from samkit.widget.viewport import Viewport  # noqa: E402

from conftest import farthest_pixel, innermost, load_dsb, touching_pair  # noqa: E402


class Page:
    """Sends what the browser would send to an annotator's canvas."""

    def __init__(self, annotator):
        self.annotator = annotator
        self.send = annotator.canvas._canvases[-1]._handle_frontend_event

    def _event(self, name, row, col):
        self.send(None, {"event": name, "x": col, "y": row}, [])

    def canvas_xy(self, y, x):
        return self.annotator.viewport.to_canvas(y + 0.5, x + 0.5)

    def click(self, y, x, wait=True):
        row, col = self.canvas_xy(y, x)
        self._event("mouse_down", row, col)
        self._event("mouse_up", row, col)
        if wait:
            self.annotator.annotation.wait(30)

    def drag(self, start, end):
        (r0, c0), (r1, c1) = self.canvas_xy(*start), self.canvas_xy(*end)
        self._event("mouse_down", r0, c0)
        self._event("mouse_move", (r0 + r1) / 2, (c0 + c1) / 2)
        self._event("mouse_move", r1, c1)
        self._event("mouse_up", r1, c1)
        self.annotator.annotation.wait(30)

    def key(self, key, shift=False):
        self.send(None, {"event": "key_down", "key": key, "shift_key": shift, "ctrl_key": False, "meta_key": False}, [])

    def wheel(self, dy):
        self.send(None, {"event": "mouse_wheel", "x": 0, "y": dy}, [])


@pytest.fixture
def sample():
    image, truth = samkit.data.nuclei()
    return image, truth, ndimage.find_objects(truth)


# -- geometry and rendering -------------------------------------------------

def test_viewport_maps_canvas_and_image_both_ways():
    view = Viewport.fit((2000, 5000), (500, 800))
    assert view.zoom == pytest.approx(0.16) and view.visible() == (0, 0, 2000, 5000)
    for row, col in [(0, 0), (123.5, 456.25), (499, 799)]:
        assert view.to_canvas(*view.to_image(row, col)) == pytest.approx((row, col))
    view.zoom_by(4, at=(100, 200))  # the image point under the cursor stays there
    fixed = Viewport.fit((2000, 5000), (500, 800)).to_image(100, 200)
    assert view.to_image(100, 200) == pytest.approx(fixed)
    view.zoom, view.center = 1.0, (1000, 2500)
    assert view.visible() == (750, 2100, 1250, 2900)
    ys, xs = view.pixel_centres()
    np.testing.assert_array_equal(ys, np.arange(750, 1250))
    view.center_on(-500, 99999)  # clamped to the image
    assert view.center == (0, 5000)
    ys, xs = view.pixel_centres()
    assert (ys[:250] == -1).all() and (xs[400:] == -1).all()


def test_render_at_one_to_one_and_zoomed_out_is_the_image_sampled(sample):
    image, _, _ = sample
    session = samkit.Session(image, OracleModel(np.zeros(image.shape[:2], int)))
    display = ImageDisplay(session.image, session.intensity)
    view = Viewport(image.shape[:2], (200, 300), center=(150.0, 250.0), zoom=1.0)
    np.testing.assert_array_equal(display.render(view), image[50:250, 100:400])
    view.zoom = 0.5  # every other pixel; the top-left canvas pixel shows image (-49, -49): outside
    frame = display.render(view)
    np.testing.assert_array_equal(frame[25:, 25:], image[1:350:2, 1:550:2])
    assert (frame[:25] == 40).all() and (frame[:, :25] == 40).all()
    view = Viewport(image.shape[:2], (200, 320), center=(150.0, 250.0), zoom=4.0)  # each pixel 4 x 4
    frame = display.render(view)
    np.testing.assert_array_equal(frame[::4, ::4], image[125:175, 210:290])
    np.testing.assert_array_equal(frame[3::4, 3::4], image[125:175, 210:290])


def test_a_zoomed_out_view_of_a_pyramid_reads_a_coarse_level(real_data, tmp_path):
    import tifffile

    from samkit.widget.display import pick

    level0 = np.asarray(samkit.open_image(real_data / "slide" / "cmu_small_region.svs").yxc()[:])
    levels = [level0, level0[::2, ::2], level0[::4, ::4]]
    with tifffile.TiffWriter(tmp_path / "pyramid.ome.tif") as tif:  # a pyramidal OME-TIFF of the real slide
        tif.write(levels[0], subifds=2, tile=(256, 256), photometric="rgb")
        for level in levels[1:]:
            tif.write(level, subfiletype=1, tile=(256, 256), photometric="rgb")
    slide = samkit.open_image(tmp_path / "pyramid.ome.tif").yxc()
    assert len(slide.levels) == 3
    session = samkit.Session(slide, "classical")
    display = ImageDisplay(session.image, session.intensity)
    view = Viewport.fit(session.shape, (300, 400))
    ys, xs = view.pixel_centres()
    chosen = pick(display.all_sources(), view, ys, xs)
    assert chosen.factor == pytest.approx((2967 / 742, 2220 / 555))  # the coarsest level, not level 0
    rendered = display.render(view)
    inside = (ys >= 0)[:, None] & (xs >= 0)[None, :]
    ly = np.minimum(((ys + 0.5) / chosen.factor[0]).astype(int), 741)
    lx = np.minimum(((xs + 0.5) / chosen.factor[1]).astype(int), 554)
    expected = session.intensity.apply(levels[2][np.clip(ly, 0, None)[:, None], np.clip(lx, 0, None)[None, :]])
    np.testing.assert_array_equal(rendered[inside], expected[inside])
    view.zoom, view.center = 1.0, (1000.0, 1000.0)  # 1:1 reads level 0
    np.testing.assert_array_equal(display.render(view), session.intensity.apply(level0[850:1150, 800:1200]))


class CountingArray:
    """A duck-typed 2D image that counts the pixels read from it."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.ndim = array, array.shape, array.dtype, array.ndim
        self.read = 0

    def __getitem__(self, key):
        out = self.array[key]
        self.read += out.size
        return out


def test_large_images_are_shown_from_an_overview_never_read_whole():
    rng = np.random.default_rng(0)
    big = CountingArray(rng.integers(0, 255, (6000, 7000), dtype=np.uint8))
    image = samkit.open_image(big).yxc()
    source = Source(image.shape[:2], (1.0, 1.0), lambda y0, x0, y1, x1: image.read(y0, x0, y1, x1))
    overview = Overview(source, 4, image.dtype, 1)
    overview.fill()
    np.testing.assert_array_equal(overview.array[..., 0], big.array[::4, ::4])

    from samkit.intensity import IntensityPolicy

    display = ImageDisplay(image, IntensityPolicy((0,)))
    display.overview.wait(60)
    assert display.overview.complete
    big.read = 0
    view = Viewport.fit(image.shape[:2], (600, 800))
    frame = display.render(view)
    assert big.read == 0  # the whole-image view comes from the overview alone
    step = display.overview.step
    ys, xs = view.pixel_centres()
    np.testing.assert_array_equal(frame[..., 0][50, 100], big.array[(ys[50] // step) * step, (xs[100] // step) * step])
    view.zoom, view.center = 1.0, (3000, 3500)
    np.testing.assert_array_equal(display.render(view)[..., 0], big.array[2700:3300, 3100:3900])
    assert 0 < big.read <= READ_BUDGET


def test_committed_labels_are_drawn_with_colours_and_outlines(sample):
    _, truth, _ = sample
    labels = samkit.LabelImage(truth.shape, initial=truth)
    view = Viewport(truth.shape, truth.shape, center=(truth.shape[0] / 2, truth.shape[1] / 2), zoom=1.0)
    rgba = LabelDisplay(labels).render(view)
    np.testing.assert_array_equal(rgba[..., 3] > 0, truth > 0)
    cross = ndimage.generate_binary_structure(2, 1)
    high = ndimage.maximum_filter(truth, footprint=cross, mode="nearest")
    low = ndimage.minimum_filter(truth, footprint=cross, mode="nearest")
    boundary = (truth > 0) & ((high != truth) | (low != truth))  # a 4-neighbour with another value
    assert (rgba[..., 3][boundary] == 255).all() and (rgba[..., 3][(truth > 0) & ~boundary] < 255).all()
    a, b = (truth == 1), (truth == 2)
    assert not np.array_equal(rgba[a][0, :3], rgba[b][0, :3])


# -- the annotator driven by canvas events -----------------------------------

def wait_for(condition, timeout=30.0):
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_clicks_drags_keys_and_buttons_commit_the_ground_truth(sample, tmp_path):
    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth))
    page = Page(annotator)
    page.click(*innermost(truth, boxes[4], 5))
    np.testing.assert_array_equal(annotator.annotation.mask.to_array(truth.shape), truth == 5)
    page.key("c")  # commit (on a thread: the page never waits)
    wait_for(lambda: "committed object 1" in annotator.controls.status.value)
    ys, xs = np.nonzero(truth == 9)
    page.drag((ys.min() - 1, xs.min() - 1), (ys.max() + 1, xs.max() + 1))  # a box around object 9
    assert annotator.annotation.box is not None and not annotator.annotation.points
    annotator.controls.commit.click()
    wait_for(lambda: "committed object 2" in annotator.controls.status.value)
    page.click(*innermost(truth, boxes[13], 14))
    annotator.commit()
    expected = np.select([truth == 5, truth == 9, truth == 14], [1, 2, 3], 0)
    np.testing.assert_array_equal(np.asarray(annotator.labels), expected)

    page.key("u")  # undo the last commit
    np.testing.assert_array_equal(np.asarray(annotator.labels), np.where(expected == 3, 0, expected))
    page.key("U", shift=True)  # redo
    annotator.controls.mode.value = "remove"
    page.click(*innermost(truth, boxes[8], 9))
    np.testing.assert_array_equal(np.asarray(annotator.labels), np.where(expected == 2, 0, expected))
    assert "erased object 2" in annotator.controls.status.value

    table = annotator.measure(properties=("basic",))
    reference = samkit.measure(annotator.labels, image, properties=("basic",))
    assert list(table["label"]) == [1, 3]
    assert table.equals(reference) and list(table["area_px2"]) == [(truth == 5).sum(), (truth == 14).sum()]
    assert list(table["mode"]) == ["clicks", "clicks"] and "class_name" not in table
    annotator.save(tmp_path / "saved")
    np.testing.assert_array_equal(np.asarray(samkit.LabelImage.open(tmp_path / "saved")), np.asarray(annotator.labels))
    assert annotator.labels.path is None and "saved a copy" in annotator.controls.status.value


def test_a_negative_point_cuts_the_object_and_a_box_around_two_keeps_one(real_data):
    """The SAM-like model (edge noise 0, so the expected masks are exact): a negative point must reach
    the model as negative, at the right pixel (the exact oracle ignores negative points)."""
    image, truth = load_dsb(real_data, "1d9eacb3161f")
    model = SamLikeModel(truth, noise=0)
    annotator = samkit.Annotator(image, model, canvas_size=(400, 500))
    session = samkit.Session(image, model)
    a, b = touching_pair(truth)
    inside, near_edge = innermost(truth, ndimage.find_objects(truth)[a - 1], a), farthest_pixel(truth, a)
    page = Page(annotator)
    page.click(*inside)
    page.key("g")  # new points: background
    page.click(*near_edge)
    assert annotator.annotation.point_labels == [1, 0]
    shown = annotator.annotation.mask.to_array(truth.shape)
    clicked = annotator.annotation.points  # where the clicks landed (pixel centres)
    np.testing.assert_allclose(clicked, [inside, near_edge], atol=1)
    expected = session.segment(points=clicked, labels=[1, 0]).to_array(truth.shape)
    np.testing.assert_array_equal(shown, expected)
    assert shown[inside] and not shown[near_edge] and (shown <= (truth == a)).all() and shown.sum() < (truth == a).sum()
    # a dragged box around the touching pair gives both; a negative click on one takes it away
    page.key("C", shift=True)  # clear
    assert not annotator.annotation.has_prompts and "click an object" in annotator.controls.status.value
    ys, xs = np.nonzero(np.isin(truth, [a, b]))
    annotator.controls.sign.value = True
    page.drag((ys.min(), xs.min()), (ys.max(), xs.max()))
    np.testing.assert_array_equal(annotator.annotation.mask.to_array(truth.shape), np.isin(truth, [a, b]))
    annotator.controls.sign.value = False
    page.click(*innermost(truth, ndimage.find_objects(truth)[b - 1], b))
    np.testing.assert_array_equal(annotator.annotation.mask.to_array(truth.shape), truth == a)


def test_zoom_and_pan_keep_clicks_on_the_right_pixels(real_data):
    pairs = [load_dsb(real_data, i) for i in ("ade080c6618c", "1d9eacb3161f", "472b1c5ff988")]
    image, truth = mosaic(pairs, (3000, 3000))
    annotator = samkit.Annotator(image, OracleModel(truth))
    page = Page(annotator)
    boxes = ndimage.find_objects(truth)
    for label in (50, 400, 700):
        y, x = innermost(truth, boxes[label - 1], label)
        annotator.show(y + 37, x - 21, zoom=2.5)  # the object off centre
        page.click(y, x)
        np.testing.assert_array_equal(annotator.annotation.mask.to_array(truth.shape), truth == label)
        annotator.clear()
    page.wheel(-1)  # zoom in at the cursor
    assert annotator.viewport.zoom == pytest.approx(2.5 * 1.25)
    annotator.controls.mode.value = "pan"
    before = annotator.viewport.center
    zoom = annotator.viewport.zoom
    under = annotator.viewport.to_image(300, 400)
    page._event("mouse_down", 300, 400)
    page._event("mouse_move", 260, 420)  # the view follows the drag
    assert annotator.viewport.to_image(260, 420) == pytest.approx(under)
    page._event("mouse_move", 230, 440)
    page._event("mouse_up", 200, 450)  # dragged the image up and right
    assert annotator.viewport.center == pytest.approx((before[0] + 100 / zoom, before[1] - 50 / zoom))
    assert annotator.viewport.to_image(200, 450) == pytest.approx(under)
    page._event("mouse_down", 200, 450)
    page._event("mouse_out", 150, 450)  # leaving the canvas ends the drag there
    assert annotator.viewport.to_image(150, 450) == pytest.approx(under)
    page._event("mouse_move", 300, 300)
    assert annotator.viewport.to_image(150, 450) == pytest.approx(under)
    page.key("0")
    assert annotator.viewport.visible() == (0, 0, 3000, 3000)


def test_bad_input_becomes_a_message(sample):
    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth))
    page = Page(annotator)
    annotator.zoom_out()
    page._event("mouse_down", 2, 2)  # in the margin around the image
    page._event("mouse_up", 2, 2)
    assert "outside the image" in annotator.controls.status.value
    annotator.commit()
    assert "nothing to commit" in annotator.controls.status.value
    annotator.set_box([100, 100, 100, 180])
    assert "box is empty" in annotator.controls.status.value
    annotator.controls.mode.value = "remove"
    page._event("mouse_down", 2, 2)
    page._event("mouse_up", 2, 2)
    assert "outside the image" in annotator.controls.status.value
    annotator.controls.mode.value = "point"
    page.key("F13")  # keys without a meaning are ignored
    annotator.undo()
    assert "nothing to undo" in annotator.controls.status.value
    assert not annotator.labels.objects


class SlowModel(OracleModel):
    """The oracle, with an encoder that waits until released (a long embedding)."""

    def __init__(self, labels):
        super().__init__(labels)
        self.release = threading.Event()
        self.started = threading.Event()  # set when an embedding begins (and waits for release)

    def embed(self, pixels, windows):
        self.started.set()
        self.release.wait(60)
        return super().embed(pixels, windows)


def test_clicks_during_embedding_and_cancel_never_block_or_raise(sample, monkeypatch):
    """256 px windows, so that a click can wait for a window other than the one being embedded; no prefetch, so
    that nothing is embedded before the test holds the encoder."""
    image, truth, boxes = sample
    model = SlowModel(truth)
    annotator = samkit.Annotator(image, model, tile_size=256, halo=16, prefetch=False)
    page = Page(annotator)
    page.click(*innermost(truth, boxes[2], 3), wait=False)  # returns at once: the tile is still embedding
    assert "embedding the tile" in annotator.controls.status.value
    assert annotator.annotation.decoding and annotator.annotation.mask is None
    annotator.controls.commit.click()  # the commit waits for the decode, on its own thread
    assert "committing when the object shows" in annotator.controls.status.value
    model.release.set()
    wait_for(lambda: annotator.labels.objects)
    np.testing.assert_array_equal(np.asarray(annotator.labels) == 1, truth == 3)
    wait_for(lambda: "committed object 1" in annotator.controls.status.value)

    model.release.clear()
    model.started.clear()
    annotator.clear()
    annotator.embed_all()
    assert model.started.wait(30)  # the worker is inside the first queued window (0, 0), held there
    y, x = innermost(truth, boxes[20], 21)
    assert annotator.session.windows((y, x, y + 1, x + 1)) == [(0, 2)]  # another window: queued, not started
    worker, asked = annotator.session.worker, threading.Event()
    request = worker.request

    def noted(source, indices, *, urgent=False):  # tells when the click's decode asks for its tile
        futures = request(source, indices, urgent=urgent)
        if urgent:
            asked.set()
        return futures

    monkeypatch.setattr(worker, "request", noted)
    page.click(y, x, wait=False)
    assert asked.wait(30)  # the click now waits for its tile, queued behind the held one
    annotator.cancel()
    model.release.set()
    annotator.annotation.wait(30)
    assert "cancel" in annotator.controls.status.value.lower() and annotator.annotation.mask is None
    assert "cancelled" in annotator.controls.progress_text.value


def test_autosave_survives_a_new_annotator(sample, tmp_path):
    image, truth, boxes = sample
    first = samkit.Annotator(image, OracleModel(truth), autosave=tmp_path / "labels")
    page = Page(first)
    for label in (2, 6):
        page.click(*innermost(truth, boxes[label - 1], label))
        first.commit()
    committed = np.asarray(first.labels).copy()
    first.close()
    del first  # as after a kernel restart: only the folder remains
    second = samkit.Annotator(image, OracleModel(truth), autosave=tmp_path / "labels")
    np.testing.assert_array_equal(np.asarray(second.labels), committed)
    assert second.labels.next_label == 3


def test_sixteen_bit_multichannel_display_has_contrast_and_channels(real_data):
    import tifffile

    nuclei = tifffile.imread(real_data / "nuclei" / "stardist" / "img2d.tif")
    stack = np.stack([nuclei, nuclei[::-1], nuclei[:, ::-1]], axis=0)  # (C, H, W) uint16
    image = samkit.open_image(stack, axes="CYX", channel_names=["DNA", "up-down", "left-right"])
    annotator = samkit.Annotator(image, OracleModel(np.zeros(nuclei.shape, int)))
    c = annotator.controls
    assert [label for label, _ in c.channels.options][:2] == ["DNA + up-down + left-right", "DNA"]
    assert c.contrast.min == int(nuclei.min()) and c.contrast.max == int(nuclei.max())
    c.channels.value = (0,)
    c.contrast.value = (1000, 3000)
    view = annotator.viewport
    frame = annotator.image_display.render(Viewport(nuclei.shape, nuclei.shape, (256.0, 256.0), 1.0))
    expected = np.clip((nuclei.astype(np.float32) - 1000) * 255 / 2000, 0, 255).round().astype(np.uint8)
    np.testing.assert_array_equal(frame[..., 0], expected)
    np.testing.assert_array_equal(frame[..., 1], expected)
    assert view.zoom > 0


# -- editing, objects, measurements, layout (issue 15) ---------------------------

def test_brush_eraser_and_fill_are_one_undoable_step_per_gesture(sample):
    from samkit.engine.editing import brush

    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth))
    page = Page(annotator)
    page.click(*innermost(truth, boxes[4], 5))
    annotator.commit()
    steps = len(annotator.labels.log)
    annotator.controls.mode.value = "brush"
    page.drag((20, 20), (20, 150))  # over background: a new object, selected
    new = annotator.labels.next_label - 1
    assert new == 2 and annotator.selected == 2 and len(annotator.labels.log) == steps + 1
    sent = [annotator.viewport.to_image(*page.canvas_xy(*p)) for p in [(20, 20), (20, 85), (20, 150)]]
    expected = np.zeros(truth.shape, bool)
    expected[brush(truth.shape, sent, annotator.controls.brush_radius.value)] = True
    np.testing.assert_array_equal(np.asarray(annotator.labels) == 2, expected)
    ys, xs = np.nonzero(truth == 5)
    annotator.controls.mode.value = "eraser"
    page.drag((int(ys.mean()), xs.min() - 3), (int(ys.mean()), xs.max() + 3))  # a cut through object 1
    cut = (truth == 5) & (np.asarray(annotator.labels) == 0)
    assert cut.any() and len(annotator.labels.log) == steps + 2
    annotator.controls.mode.value = "fill"
    annotator.select(None)
    page.click(ys.min() + 2, int(np.median(xs[ys == ys.min() + 2])))  # one part of the cut object becomes object 3
    assert annotator.labels.next_label == 4 and 3 in annotator.labels.objects
    page.key("u")
    page.key("u")
    page.key("u")  # fill, cut and stroke undone, one key each
    np.testing.assert_array_equal(np.asarray(annotator.labels), np.where(truth == 5, 1, 0))


def test_object_list_names_objects_and_measurements_follow_every_change(sample):
    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth))
    page = Page(annotator)
    for label in (5, 9, 14):
        page.click(*innermost(truth, boxes[label - 1], label))
        annotator.commit()
    rows = annotator.objects.rows
    assert [r.label for r in rows[:3]] == [3, 2, 1] and rows[3].box.layout.display == "none"
    assert rows[0].area.value == f"<small>{(truth == 14).sum()} px</small>"
    rows[1].name.value = "mitosis"  # typed into the row of object 2
    assert annotator.labels.attributes[2]["class_name"] == "mitosis"
    rows[2].button.click()  # shows object 1, outlined
    assert annotator.selected == 1 and annotator.painter.highlight == 1
    annotator.measurements.wait()
    table = annotator.measurements.table
    assert list(table["label"]) == [1, 2, 3] and list(table["class_name"].fillna("")) == ["", "mitosis", ""]
    assert annotator.measurements.histogram.value[:4] == b"\x89PNG"
    annotator.undo()  # the class name
    assert "class_name" not in annotator.labels.attributes[2] and rows[1].name.value == ""
    annotator.erase_at(*innermost(truth, boxes[13], 14))
    annotator.measurements.wait()
    assert list(annotator.measurements.table["label"]) == [1, 2] and annotator.objects.rows[0].label == 2
    annotator.controls.labels_opacity.value = 0.5
    assert annotator.painter.labels_opacity == 0.5
    annotator.controls.show_labels.value = False
    assert annotator.painter.labels_opacity == 0.0
    page.key("v")  # V shows them again
    assert annotator.controls.show_labels.value and annotator.painter.labels_opacity == 0.5


def test_measurements_export_csv(sample, tmp_path):
    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth))
    Page(annotator).click(*innermost(truth, boxes[4], 5))
    annotator.commit()
    annotator.measurements.path.value = str(tmp_path / "objects.csv")
    annotator.measurements.export.click()
    back = samkit.read_table(tmp_path / "objects.csv")
    assert list(back["label"]) == [1] and back["area_px2"][0] == (truth == 5).sum()
    assert "wrote 1 rows" in annotator.measurements.message.value


def test_opacity_scales_the_labels_and_the_selected_object_is_outlined(sample):
    from samkit.widget.display import EDGE_ALPHA, HIGHLIGHT_RGBA, rgba_of_ids

    _, truth, _ = sample
    full, half = rgba_of_ids(truth), rgba_of_ids(truth, opacity=0.5)
    np.testing.assert_array_equal(half[..., 3], (full[..., 3] * 0.5).astype(np.uint8))
    marked = rgba_of_ids(truth, highlight=7)
    outline = (marked == HIGHLIGHT_RGBA).all(axis=2)
    assert outline.any() and (truth[outline] == 7).all() and (full[outline][:, 3] == EDGE_ALPHA).all()


def test_status_lines_never_go_stale(sample, tmp_path):
    """After clearing, the old object's size goes; the embedding line counts windows cached by an earlier session."""
    image, truth, boxes = sample
    cache = tmp_path / "cache"
    session = samkit.Session(image, OracleModel(truth), tile_size=256, halo=16, cache=cache)
    session.embed_all().wait(60)
    annotator = samkit.Annotator(image, OracleModel(truth), tile_size=256, halo=16, cache=cache, prefetch=False)
    n = annotator.session.embedded().size
    assert annotator.controls.progress_text.value == f"windows embedded {n}/{n}"
    page = Page(annotator)
    page.click(*innermost(truth, boxes[4], 5))
    assert "px" in annotator.controls.status.value
    page.key("C", shift=True)
    assert "px" not in annotator.controls.status.value


def test_the_canvas_follows_the_column_and_keeps_the_side_panel_in_view(sample):
    from samkit.widget.layout import GAP, SIDE

    image, truth, _ = sample
    annotator = samkit.Annotator(image, OracleModel(truth), canvas_size=(600, 800))
    layout = annotator.layout_
    for width in (700, 1000, 1280, 1400):
        layout.page.width = width  # what the page reports
        h, w = annotator.viewport.canvas_shape
        assert w == min(800, width - SIDE - 2 * GAP) and annotator.canvas.width == w
        assert h == min(600, round(w * 520 / 696))  # no taller than the image needs
        assert annotator.canvas.layout.width == f"{w}px"  # CSS size = pixel size: mouse coordinates stay 1:1
        assert annotator.viewport.visible() == (0, 0, *truth.shape)  # the whole image stays in view
    layout.page.width = 500  # too narrow for both: the side panel goes below, the canvas takes the width
    assert annotator.viewport.canvas_shape[1] == 500 - GAP


def test_segment_everything_adds_the_objects_found_and_keeps_the_users(sample):
    """The panel runs samkit.segment_all with the annotator's model and windows (the oracle: every object), on a
    thread; the objects found join the labels in one undoable step, never over an object committed by hand."""
    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth), tile_size=256, halo=32)
    page = Page(annotator)
    page.click(*innermost(truth, boxes[4], 5))
    annotator.commit()
    panel = annotator.everything
    panel.start_button.click()
    panel.wait(120)
    found = samkit.segment_all(image, OracleModel(truth), tile_size=256, halo=32)
    expected = np.asarray(found)
    kept = [k for k in np.unique(expected) if k and ((expected == k) & (truth != 5)).any()]
    assert f"added {len(kept)}" in panel.message.value and panel.progress.value == panel.progress.max > 1
    labels = np.asarray(annotator.labels)
    assert len(annotator.labels.objects) == len(kept) + 1
    np.testing.assert_array_equal(labels == 1, truth == 5)
    for new, old in enumerate(kept, start=2):  # each found object as segment_all gives it, around the user's one
        np.testing.assert_array_equal(labels == new, (expected == old) & (truth != 5))
        assert annotator.labels.attributes[new] == found.attributes[old]  # its score, stability and mode
    annotator.undo()
    np.testing.assert_array_equal(np.asarray(annotator.labels), np.where(truth == 5, 1, 0))


def test_segment_everything_in_the_view_and_cancelled(sample):
    """API 4 through the panel: "current view" segments only the windows over the view (objects touching it are
    kept whole, as segment_all(region=) gives them); Cancel stops the run and adds nothing."""
    image, truth, boxes = sample
    annotator = samkit.Annotator(image, OracleModel(truth), tile_size=256, halo=32)
    annotator.show(130, 170, zoom=4.0)
    view = annotator.viewport.visible()
    panel = annotator.everything
    panel.where.value = "view"
    panel.start()
    panel.wait(120)
    found = np.asarray(samkit.segment_all(image, OracleModel(truth), tile_size=256, halo=32, region=view))
    assert 0 < len(annotator.labels.objects) == len(np.unique(found)) - 1 < len(np.unique(truth)) - 1
    np.testing.assert_array_equal(np.asarray(annotator.labels) > 0, found > 0)

    slow = samkit.Annotator(image, OracleModel(truth, delay=1.0), tile_size=128, halo=16, prefetch=False)
    slow.everything.start()
    slow.everything.cancel_button.click()
    slow.everything.wait(120)
    assert "cancel" in slow.everything.message.value.lower() and not slow.labels.objects
    assert not slow.everything.start_button.disabled
