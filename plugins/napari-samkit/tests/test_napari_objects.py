"""The object list, the display controls and the plots, used with real Qt mouse and key events (oracle model)."""

import numpy as np
import samkit
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QLineEdit
from samkit.interaction import KEYS
from samkit.testing import OracleModel

from napari_helpers import dsb, notes, shown_widget  # noqa: F401 (fixtures)
from napari_helpers import commit_clicked, largest, no_traceback, start
from napari_qt_input import double_click, key

IMAGE_ID = "0ed3555a4bd4"  # 256 x 256, 21 nuclei
LEFT = Qt.MouseButton.LeftButton


def test_object_list_class_names_display_and_plots_follow_the_labels(shown_widget, qtbot, dsb, notes, tmp_path):
    viewer, widget = shown_widget
    image, truth = dsb(IMAGE_ID)
    viewer.add_image(image, rgb=True)
    annotator = start(widget, qtbot, OracleModel(truth))
    viewer.reset_view()
    chosen = largest(truth, 3)
    commit_clicked(qtbot, annotator, truth, chosen)

    objects, model = widget.objects, widget.objects.model
    view = objects.view
    assert model.ids == [3, 2, 1]  # newest first
    for row, gt_id in zip(range(3), chosen[::-1]):
        assert model.data(model.index(row, 2)) == str((truth == gt_id).sum())  # area in pixels
        swatch = model.data(model.index(row, 0), Qt.ItemDataRole.DecorationRole).getRgbF()
        np.testing.assert_allclose(swatch, annotator.labels_layer.get_color(model.ids[row]), atol=1 / 255)

    # a click on a row shows that object and makes it the label napari's brush paints
    cell = view.visualRect(model.index(2, 0)).center()
    qtbot.mouseClick(view.viewport(), LEFT, pos=cell)
    y0, x0, y1, x1 = annotator.labels.objects[1]
    np.testing.assert_allclose(viewer.camera.center[-2:], ((y0 + y1 - 1) / 2, (x0 + x1 - 1) / 2))
    assert annotator.labels_layer.selected_label == 1

    # the class name, typed into the list: one journaled step, undone and redone with the keys
    cell = view.visualRect(model.index(2, 1)).center()
    double_click(view.viewport(), cell)
    editor = view.viewport().findChild(QLineEdit)  # the cell's editor, open
    assert editor is not None
    qtbot.keyClicks(editor, "nucleus")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: annotator.labels.attributes[1].get("class_name") == "nucleus")
    assert annotator.labels.log[-1]["op"] == "attributes"
    assert model.data(model.index(2, 1)) == "nucleus" and objects.selected() == 1

    qtbot.mouseClick(widget.measure.measure_button, LEFT)
    qtbot.waitUntil(lambda: widget.measure.table_view.rowCount() == 3, timeout=20_000)
    assert annotator.table["class_name"].fillna("").tolist() == ["nucleus", "", ""]
    plot = widget.measure.plot
    plot.choose("scatter", "area_px2", "mean_intensity")
    (points,) = plot.figure.axes[0].collections
    np.testing.assert_allclose(points.get_offsets()[:, 0], annotator.table["area_px2"])

    viewer.layers.selection.active = annotator.points
    key(viewer, KEYS["undo"])  # the class name
    qtbot.waitUntil(lambda: "class_name" not in annotator.labels.attributes.get(1, {}))
    key(viewer, KEYS["undo"])  # the commit of object 3: list, table and plot follow
    qtbot.waitUntil(lambda: model.ids == [2, 1] and not annotator.measurements.running
                    and widget.measure.table_view.rowCount() == 2, timeout=20_000)  # fmt: skip
    assert len(plot.figure.axes[0].collections[0].get_offsets()) == 2
    key(viewer, KEYS["redo"])
    key(viewer, KEYS["redo"])
    qtbot.waitUntil(lambda: model.ids == [3, 2, 1] and model.data(model.index(2, 1)) == "nucleus")
    qtbot.waitUntil(lambda: not annotator.measurements.running and "class_name" in annotator.table, timeout=20_000)
    written = widget.measure.export_csv(tmp_path / "objects.csv")
    assert list(samkit.read_table(written)["class_name"].fillna("")) == ["nucleus", "", ""]

    # show / hide and opacity, both ways between the dock and napari's own layer controls
    display = widget.annotate.labels_display
    box = display.shown.rect()
    qtbot.mouseClick(display.shown, LEFT, pos=box.center() - box.center() / 2)  # on the check box
    assert not annotator.labels_layer.visible
    annotator.labels_layer.visible = True  # as napari's eye icon does
    assert display.shown.isChecked()
    annotator.labels_layer.opacity = 0.25
    assert display.opacity.value() == 25
    no_traceback(notes)
