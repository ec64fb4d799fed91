"""Sample data: the real nuclei image shipped with samkit (DSB2018 / BBBC038v1, CC0)."""

from __future__ import annotations


def nuclei():
    """The (520, 696) RGB fluorescence nuclei image, as a napari image layer.

    Returns
    -------
    list of (data, metadata, layer type)
    """
    import samkit.data

    image, _ = samkit.data.nuclei()
    return [(image, {"name": "nuclei", "rgb": True}, "image")]


def nuclei_with_truth():
    """The nuclei image and its ground-truth labels (hidden), e.g. to check the oracle pipeline.

    Returns
    -------
    list of (data, metadata, layer type)
    """
    import samkit.data

    image, truth = samkit.data.nuclei()
    return [
        (image, {"name": "nuclei", "rgb": True}, "image"),
        (truth, {"name": "nuclei ground truth", "visible": False, "opacity": 0.5}, "labels"),
    ]
