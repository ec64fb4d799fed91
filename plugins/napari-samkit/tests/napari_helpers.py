"""Fixtures and helpers of the napari-samkit tests.

Not a conftest.py: samkit's main suite imports helpers from its own
``conftest`` module, and two modules of that name clash when both suites run
in one pytest session. Test modules import the fixtures they use from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# the real test images shipped with samkit's tests (tests/data in the repository)
REAL_DATA = Path(__file__).resolve().parents[3] / "tests" / "data"


@pytest.fixture(scope="session")
def dsb():
    """Load a DSB2018 image (H, W, 3) uint8 and its (H, W) ground-truth labels from tests/data."""
    folder = REAL_DATA / "nuclei" / "dsb2018"
    import tifffile
    from PIL import Image

    def load(image_id: str):
        image = np.asarray(Image.open(folder / f"{image_id}_img.png"))[..., :3]
        return np.ascontiguousarray(image), tifffile.imread(folder / f"{image_id}_labels.tif")

    return load


@pytest.fixture
def notes():
    """Every napari notification shown during the test (Notification objects)."""
    from napari.utils.notifications import notification_manager

    seen = []
    notification_manager.notification_ready.connect(seen.append)
    yield seen
    notification_manager.notification_ready.disconnect(seen.append)


@pytest.fixture
def widget(make_napari_viewer, qtbot):
    """A samkit annotator docked in a fresh (hidden) viewer."""
    from napari_samkit import AnnotatorWidget

    viewer = make_napari_viewer()
    dock = AnnotatorWidget(viewer)
    viewer.window.add_dock_widget(dock, name="samkit annotator")
    yield dock
    if dock.annotator is not None:
        dock.annotator.close()


@pytest.fixture
def shown_widget(make_napari_viewer, qtbot):
    """(viewer, widget): a shown viewer (real mouse and key events need a drawn canvas) and a samkit annotator
    docked in it through napari's own path, which hands the widget proxies of the viewer and its layers."""
    viewer = make_napari_viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-samkit", "samkit annotator")
    yield viewer, dock
    if dock.annotator is not None:
        dock.annotator.close()
    qtbot.wait(50)  # let the canvas draw once without the removed layers before the viewer goes


SCALE, TRANSLATE = (0.5, 0.5), (10.0, -4.0)  # a layer transform, so world != pixel coordinates


def innermost(truth: np.ndarray, label: int) -> tuple[int, int]:
    """(y, x) of the pixel of object ``label`` farthest from its border."""
    from scipy import ndimage

    box = ndimage.find_objects((truth == label).astype(np.uint8))[0]
    depth = ndimage.distance_transform_edt(np.pad(truth[box] == label, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return box[0].start + int(y), box[1].start + int(x)


def largest(truth: np.ndarray, count: int) -> list[int]:
    """The ids of the ``count`` largest objects."""
    ids, sizes = np.unique(truth[truth > 0], return_counts=True)
    return [int(i) for i in ids[np.argsort(sizes, kind="stable")[::-1][:count]]]


def no_traceback(notes) -> None:
    """Assert no notification carried an exception (napari shows those with a traceback button)."""
    from napari.utils.notifications import ErrorNotification

    bad = [n for n in notes if isinstance(n, ErrorNotification) or getattr(n, "exception", None) is not None]
    assert not bad, [str(n.message) for n in bad]


def messages(notes, severity=None) -> list[str]:
    """The texts of the notifications (of one severity: "info", "warning", "error")."""
    return [str(n.message) for n in notes if severity is None or str(n.severity) == severity]


def start(widget, qtbot, model, **options):
    """Start a session on the chosen layer with ``model`` and wait for it; returns the Annotator."""
    for name, value in options.items():
        getattr(widget.form, name).setValue(value)
    worker = widget.start(model=model)
    assert worker is not None
    qtbot.waitUntil(lambda: widget.annotator is not None or widget.starting is None, timeout=30_000)
    return widget.annotator


def click(annotator, y: float, x: float, positive: bool = True) -> None:
    """Add a point at image pixel (y, x) through the points layer's API (world -> its data coordinates)."""
    layer = annotator.points
    if annotator.positive != positive:
        annotator.toggle_sign()
    world = np.array([y, x]) * annotator.source.scale + annotator.source.translate
    layer.add(layer.world_to_data(world))


def wait_for_preview(qtbot, annotator, expected: np.ndarray, timeout: int = 20_000) -> None:
    """Wait until the preview layer shows exactly ``expected`` (H, W) bool."""

    def shown():
        np.testing.assert_array_equal(annotator.preview_array(), expected)

    qtbot.waitUntil(shown, timeout=timeout)


def wait_idle(qtbot, annotator, timeout: int = 20_000) -> None:
    """Wait until no commit is running."""
    qtbot.waitUntil(lambda: not annotator.committing, timeout=timeout)


def press(viewer, key: str) -> None:
    """Press ``key`` as napari's key handler does for the active layer and the viewer."""
    assert viewer.window._qt_viewer._key_map_handler.press_key(key), f"{key} is not bound"


def assert_table(table, reference, labels) -> None:
    """``table`` is ``reference`` (a measurement of plain labels) plus one column per object attribute of
    ``labels`` (each commit records its score and mode), in any order."""
    import pandas as pd

    pd.testing.assert_frame_equal(table[list(reference.columns)], reference)
    extra = [c for c in table.columns if c not in reference.columns]
    attributes = labels.attributes
    assert sorted(extra) == sorted({name for values in attributes.values() for name in values})
    for name in extra:
        expected = [attributes.get(int(label), {}).get(name) for label in table["label"]]
        assert [None if pd.isna(v) else v for v in table[name]] == expected, name


def commit_clicked(qtbot, annotator, truth, labels) -> None:
    """For each ground-truth object: a real click on its innermost pixel, its preview, the commit key."""
    from samkit.interaction import KEYS

    from napari_qt_input import click, key

    viewer = annotator.viewer
    for label in labels:
        click(viewer, np.array(innermost(truth, label)) * annotator.source.scale + annotator.source.translate)
        qtbot.waitUntil(lambda: annotator.preview_mask is not None and annotator.preview_array().any(), timeout=20_000)
        key(viewer, KEYS["commit"])
        wait_idle(qtbot, annotator)
