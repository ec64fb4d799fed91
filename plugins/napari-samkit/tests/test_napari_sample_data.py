"""The sample data contribution: samkit's real nuclei image (and its ground truth)."""

import numpy as np
import samkit


def test_sample_opens_in_napari(make_napari_viewer):
    image, truth = samkit.data.nuclei()
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-samkit", "nuclei")
    assert [layer.name for layer in layers] == ["nuclei"] and layers[0].rgb
    np.testing.assert_array_equal(layers[0].data, image)
    layers = viewer.open_sample("napari-samkit", "nuclei_with_truth")
    assert [type(layer).__name__ for layer in layers] == ["Image", "Labels"]
    np.testing.assert_array_equal(layers[1].data, truth)
    assert not layers[1].visible
