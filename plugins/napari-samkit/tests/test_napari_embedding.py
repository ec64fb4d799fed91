"""Embedding never blocks napari: the event loop runs during a long embed, a click jumps the queue, cancel stops it."""

import threading
import time

import numpy as np
from qtpy.QtCore import QTimer
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, widget  # noqa: F401 (fixtures)
from napari_helpers import click, innermost, largest, no_traceback, start, wait_for_preview

IMAGE_ID = "472b1c5ff988"


class SlowOracle(OracleModel):
    """The oracle, with an encoder that takes ``delay`` seconds per window (like SAM on a CPU)."""

    def __init__(self, labels, delay):
        super().__init__(labels)
        self.delay = delay
        self.embedded = 0

    def embed(self, pixels, windows):
        time.sleep(self.delay)
        self.embedded += len(windows)
        return super().embed(pixels, windows)


def test_first_click_embeds_only_the_windows_of_its_object(widget, qtbot, dsb):
    """128 px windows, so that the image has over 20 and embedding only the clicked ones shows."""
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, OracleModel(truth), tile_size=128, halo=8)
    grid = annotator.session.grid.grid_shape
    assert grid[0] * grid[1] > 20 and not annotator.session.embedded().any()
    target = largest(truth, 1)[0]
    click(annotator, *innermost(truth, target))
    wait_for_preview(qtbot, annotator, truth == target)
    used = {tuple(w) for w in annotator.preview_mask.prompt["windows"]}
    assert {tuple(i) for i in np.argwhere(annotator.session.embedded())} == used  # nothing else was embedded


def test_event_loop_runs_while_embedding_and_cancel_stops_it(widget, qtbot, dsb, notes):
    """128 px windows (over 20, 0.25 s each), so that the embedding runs long enough to click and cancel during it."""
    image, truth = dsb(IMAGE_ID)
    widget.viewer.add_image(image, rgb=True)
    model = SlowOracle(truth, delay=0.25)
    annotator = start(widget, qtbot, model, tile_size=128, halo=8)
    total = int(np.prod(annotator.session.grid.grid_shape))

    widget.form.embed_all_button.click()
    (job, worker), = annotator.embedder.jobs
    assert job.total == total and not job.finished
    ticks, unfinished_ticks = [], []
    timer = QTimer()
    timer.timeout.connect(lambda: (ticks.append(job.done), job.finished or unfinished_ticks.append(job.done)))
    timer.start(10)
    qtbot.waitUntil(lambda: job.done >= 2, timeout=20_000)
    assert len(set(unfinished_ticks)) >= 2  # Qt kept running timers while windows were being embedded
    assert worker.pbar.total == total  # napari's progress bar follows the job

    target = largest(truth, 1)[0]  # a click while embedding: its windows jump the queue
    click(annotator, *innermost(truth, target))
    wait_for_preview(qtbot, annotator, truth == target)
    assert not job.finished

    main = threading.main_thread()
    assert all(t is not main for t in threading.enumerate() if t.name.startswith("samkit-embed"))
    widget.form.cancel_button.click()
    qtbot.waitUntil(lambda: job.finished, timeout=10_000)
    qtbot.waitUntil(lambda: not annotator.embedder.jobs, timeout=10_000)  # the worker ended and was forgotten
    timer.stop()
    stopped_at = model.embedded
    assert job.cancelled and job.done < total
    qtbot.wait(600)  # more than two windows' time: nothing else is embedded
    assert model.embedded == stopped_at < total
    assert "embedding stopped" in widget.status.text() or "cancelled" in widget.status.text()
    no_traceback(notes)


def test_embed_view_embeds_the_windows_in_view(widget, qtbot, dsb):
    """128 px windows, so that the view holds only some of them."""
    image, truth = dsb(IMAGE_ID)
    viewer = widget.viewer
    viewer.add_image(image, rgb=True, scale=(2.0, 2.0))
    annotator = start(widget, qtbot, OracleModel(truth), tile_size=128, halo=8)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (2 * 100, 2 * 150)  # world coordinates: image pixel (100, 150)
    camera.zoom = 4 * max(viewer.canvas.size) / 2 / 60  # about 60 x 60 image pixels across
    region = annotator.embedder.visible_region()
    assert region is not None and region[0] <= 100 < region[2] and region[1] <= 150 < region[3]
    assert (region[2] - region[0]) * (region[3] - region[1]) < truth.size / 4
    widget.form.embed_view_button.click()
    (job, _), = annotator.embedder.jobs
    qtbot.waitUntil(lambda: job.finished, timeout=20_000)
    embedded = {tuple(i) for i in np.argwhere(annotator.session.embedded())}
    assert embedded == {tuple(i) for i in annotator.session.grid.overlapping(region)}
    assert 0 < len(embedded) < int(np.prod(annotator.session.grid.grid_shape))
