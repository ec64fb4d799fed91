"""The npe2 manifest validates and napari finds the plugin's widget."""

import shutil
import subprocess
import sys

import npe2

from napari_helpers import notes  # noqa: F401 (fixtures)


def test_manifest_validates():
    manifest = npe2.PluginManifest.from_distribution("napari-samkit")
    assert manifest.name == "napari-samkit"
    npe2.PluginManifest.model_validate(manifest.model_dump())
    npe2_cli = shutil.which("npe2")
    command = [npe2_cli] if npe2_cli else [sys.executable, "-m", "npe2"]
    command += ["validate", "napari-samkit"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "valid" in result.stdout, result.stdout + result.stderr


def test_napari_discovers_the_plugin_and_its_widget_works(make_napari_viewer, qtbot, notes):
    """Through napari's own path: the widget gets napari's proxied viewer and layers."""
    import numpy as np
    from samkit.testing import OracleModel

    from napari_helpers import innermost, largest, no_traceback, start, wait_for_preview, wait_idle
    from napari_samkit import AnnotatorWidget

    pm = npe2.PluginManager.instance()
    pm.discover()
    assert "napari-samkit" in {m.name for m in pm.iter_manifests()}
    contributions = pm.get_manifest("napari-samkit").contributions
    assert [w.display_name for w in contributions.widgets] == ["samkit annotator"]
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget("napari-samkit", "samkit annotator")
    assert isinstance(widget, AnnotatorWidget)
    image_layer, truth_layer = viewer.open_sample("napari-samkit", "nuclei_with_truth")
    assert widget.form.image_box.count() == 1 and widget.form.image_box.currentText() == "nuclei"
    truth = np.asarray(truth_layer.data)
    annotator = start(widget, qtbot, OracleModel(truth))
    target = largest(truth, 1)[0]
    annotator.points.add([innermost(truth, target)])
    wait_for_preview(qtbot, annotator, truth == target)
    annotator.commit()
    wait_idle(qtbot, annotator)
    np.testing.assert_array_equal(np.asarray(annotator.labels_layer.data) == 1, truth == target)
    viewer.layers.remove(image_layer)  # the proxied layer is recognised as the session's
    assert widget.annotator is None and annotator.is_closed
    assert any("was removed" in str(n.message) for n in notes)
    no_traceback(notes)
