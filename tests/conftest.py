from pathlib import Path

import numpy as np
import pytest

# Real images with real ground truth, shipped with the tests (copied from ../shared/data; licences in
# tests/data/README.md), so that a fresh clone runs every data test.
REAL_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real test images with ground truth (tests/data)."""
    return REAL_DATA


def load_dsb(real_data: Path, image_id: str):
    """A DSB2018 image (H, W, 3) uint8 and its (H, W) instance labels."""
    import tifffile
    from PIL import Image

    folder = real_data / "nuclei" / "dsb2018"
    image = np.asarray(Image.open(folder / f"{image_id}_img.png"))[..., :3]
    labels = tifffile.imread(folder / f"{image_id}_labels.tif")
    return image, labels


def object_centres(labels: np.ndarray, count: int) -> np.ndarray:
    """(count, 2) integer (y, x) points inside the `count` largest objects of `labels`."""
    from scipy import ndimage

    ids, sizes = np.unique(labels[labels > 0], return_counts=True)
    largest = ids[np.argsort(sizes)[::-1][:count]]
    points = []
    for i in largest:
        inside = ndimage.distance_transform_edt(labels == i)
        points.append(np.unravel_index(np.argmax(inside), labels.shape))
    return np.array(points)


def innermost(labels: np.ndarray, box, label: int) -> tuple[int, int]:
    """(y, x) of the pixel of object ``label`` farthest from its border; ``box`` is its find_objects slice."""
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(np.pad(labels[box] == label, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return box[0].start + int(y), box[1].start + int(x)


def farthest_pixel(labels: np.ndarray, label: int) -> tuple[int, int]:
    """(y, x) of the pixel of object ``label`` farthest from its innermost pixel (on its edge)."""
    from scipy import ndimage

    centre = innermost(labels, ndimage.find_objects((labels == label).astype(np.uint8))[0], label)
    rows, cols = np.nonzero(labels == label)
    far = np.argmax((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2)
    return int(rows[far]), int(cols[far])


def touching_pair(labels: np.ndarray) -> tuple[int, int]:
    """Ids (a, b) of two touching objects, both as large as possible (each over 150 pixels)."""
    from scipy import ndimage

    best = None
    for a, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        region = labels[grown]
        near = ndimage.binary_dilation(region == a) & (region != a) & (region > 0)
        for b in np.unique(region[near]):
            size = min(np.count_nonzero(labels == a), np.count_nonzero(labels == b))
            if size > 150 and (best is None or size > best[0]):
                best = (size, a, int(b))
    assert best is not None, "no two touching objects of over 150 pixels"
    return best[1], best[2]
