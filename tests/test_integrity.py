"""Cached embeddings are used only for the pixels they were made from, and only intact; corrupt inputs
raise InvalidImageError.

Real DSB2018 mosaics with exact ground truth; a counting oracle tells which windows were embedded.
"""

import os

import numpy as np
import pytest
from scipy import ndimage

from samkit.engine import Session
from samkit.errors import InvalidImageError
from samkit.io import open_image
from samkit.testing import OracleModel, mosaic

from conftest import innermost, load_dsb

SHAPE = (2048, 3072)  # > 4 MiB: the cheap identity samples 16 blocks of 64 x 64
CHANGED = (slice(100, 600), slice(100, 900))  # between the sampled blocks (rows 0, 661, 1322, 1984; cols 0, 1002, ...)
OPTIONS = {"tile_size": 512, "halo": 32}
IDS = ["0114f484a16c", "0ed3555a4bd4", "1879f4f4f05e", "1d9eacb3161f", "31f1fbe85b88", "432f367a4c5b"]


class CountingOracle(OracleModel):
    """The oracle, recording the windows it embeds."""

    def __init__(self, labels):
        super().__init__(labels)
        self.embedded = []

    def embed(self, pixels, windows):
        self.embedded += [tuple(int(v) for v in w) for w in windows]
        return super().embed(pixels, windows)

    def signature(self) -> dict:
        # one model for the old and the new image, as SAM's weights would be (the oracle's own
        # signature names its truth, which changes with the image here)
        return {"model": "counting oracle"}


@pytest.fixture(scope="module")
def scenes(real_data):
    """(image, labels) of a mosaic, and the same mosaic with CHANGED replaced by other real nuclei."""
    pairs = [load_dsb(real_data, i) for i in IDS]
    image, labels = mosaic(pairs, SHAPE)
    other, other_labels = mosaic(pairs[3:] + pairs[:3], SHAPE)
    changed, changed_labels = image.copy(), labels.copy()
    changed[CHANGED] = other[CHANGED]
    new = other_labels[CHANGED]
    changed_labels[CHANGED] = np.where(new > 0, new + labels.max(), 0)
    return (image, labels), (changed, changed_labels)


def changed_windows(grid, before, after) -> set:
    """The level-0 boxes of the windows whose pixels differ."""
    boxes = set()
    for index in grid.indices():
        y0, x0, y1, x1 = grid.window(index)
        if not np.array_equal(before[y0:y1, x0:x1], after[y0:y1, x0:x1]):
            boxes.add((y0, x0, y1, x1))
    return boxes


def assert_new_objects_exact(session, labels, count=10):
    """Click the innermost pixel of ``count`` objects lying inside CHANGED: each mask is that object, whole."""
    boxes = ndimage.find_objects(labels)
    inside = [
        i for i, sl in enumerate(boxes, 1)
        if sl is not None and i > labels[:, CHANGED[1].stop :].max()  # new ids only
        and sl[0].start > CHANGED[0].start and sl[0].stop < CHANGED[0].stop
        and sl[1].start > CHANGED[1].start and sl[1].stop < CHANGED[1].stop
    ]  # fmt: skip
    assert len(inside) >= count
    for i in inside[:count]:
        sl = boxes[i - 1]
        mask = session.segment(points=[innermost(labels, sl, i)], labels=[1])
        assert mask.bbox == (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop), f"object {i}"
        np.testing.assert_array_equal(mask.crop, labels[sl] == i, err_msg=f"object {i}")


def test_an_array_changed_away_from_the_sampled_blocks_gets_new_embeddings(tmp_path, scenes):
    (image, labels), (changed, changed_labels) = scenes
    assert open_image(image).identity() == open_image(changed).identity()  # the cheap identity cannot see it
    first = Session(image, CountingOracle(labels), cache=tmp_path, **OPTIONS)
    first.embed_all().result(timeout=300)
    stale = changed_windows(first.grid, image, changed)
    assert 0 < len(stale) < first.grid.grid_shape[0] * first.grid.grid_shape[1]

    model = CountingOracle(changed_labels)
    again = Session(changed, model, cache=tmp_path, **OPTIONS)  # same process, same cache folder
    assert again.store.path == first.store.path
    assert_new_objects_exact(again, changed_labels)  # clicks first: the lazy path
    again.embed_all().result(timeout=300)
    assert sorted(model.embedded) == sorted(stale)  # each changed window once, every other one reused

    model = CountingOracle(changed_labels)
    third = Session(changed, model, cache=tmp_path, **OPTIONS)
    third.embed_all().result(timeout=300)
    assert model.embedded == [] and third.embedded().all()  # the recomputed windows were stored
    assert_new_objects_exact(third, changed_labels)


def test_a_file_rewritten_with_the_same_size_time_and_ends_gets_new_embeddings(tmp_path, scenes):
    import tifffile

    (image, labels), (changed, changed_labels) = scenes
    path = tmp_path / "mosaic.tif"
    tifffile.imwrite(path, image)  # uncompressed: same size for any content
    model = CountingOracle(labels)
    first = Session(path, model, cache=tmp_path / "cache", **OPTIONS)
    first.embed_all().result(timeout=300)
    first.image.close()
    stat, data = os.stat(path), path.read_bytes()

    tifffile.imwrite(path, changed)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rewritten = path.read_bytes()
    edge = 64 * 1024
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns and len(rewritten) == len(data)
    assert rewritten[:edge] == data[:edge] and rewritten[-edge:] == data[-edge:] and rewritten != data

    model = CountingOracle(changed_labels)
    again = Session(path, model, cache=tmp_path / "cache", **OPTIONS)
    assert again.store.path == first.store.path  # same file identity: the windows tell the change
    again.embed_all().result(timeout=300)
    assert sorted(model.embedded) == sorted(changed_windows(first.grid, image, changed))
    assert_new_objects_exact(again, changed_labels)
    again.image.close()


def test_a_damaged_tile_on_disk_is_recomputed(tmp_path, scenes):
    (image, labels), _ = scenes
    image, labels = image[:1024, :1536], labels[:1024, :1536]
    session = Session(image, CountingOracle(labels), cache=tmp_path, **OPTIONS)
    session.embed_all().result(timeout=300)
    sl = ndimage.find_objects(labels)[40]
    point = innermost(labels, sl, 41)
    before = session.segment(points=[point], labels=[1])
    assert before.area == (labels == 41).sum()

    index = session.grid.best_window([point[0]], [point[1]])
    y0, x0, y1, x1 = session.grid.window(index)
    chunk = session.store.path / f"c.{index[0]}.{index[1]}.0.0"
    data = bytearray(chunk.read_bytes())
    data[((point[0] - y0) * (x1 - x0) + point[1] - x0) * 4] ^= 0xFF  # int32 labels: the clicked pixel's id
    chunk.write_bytes(bytes(data))

    model = CountingOracle(labels)
    again = Session(image, model, cache=tmp_path, **OPTIONS)
    with pytest.warns(UserWarning, match=r"tile \(\d+, \d+\) of .* does not match its checksum"):
        after = again.segment(points=[point], labels=[1])
    assert after.bbox == before.bbox and np.array_equal(after.crop, before.crop)
    assert model.embedded == [(y0, x0, y1, x1)]  # only the damaged tile was recomputed
    model = CountingOracle(labels)
    Session(image, model, cache=tmp_path, **OPTIONS).segment(points=[point], labels=[1])
    assert model.embedded == []  # and written back intact


def test_a_corrupt_zarr_chunk_raises_invalid_image_error_naming_it(tmp_path, real_data):
    zarr = pytest.importorskip("zarr")
    image, _ = load_dsb(real_data, IDS[0])
    path = tmp_path / "nuclei.zarr"
    zarr.create_array(str(path), shape=image.shape, chunks=(64, 64, 3), dtype=image.dtype)[:] = image
    chunk = path / "c" / "1" / "2" / "0"  # rows 64:128, columns 128:192
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 16] = bytes(16)
    chunk.write_bytes(bytes(data))

    opened = open_image(path)
    np.testing.assert_array_equal(opened.read(0, 0, 64, 256), image[:64])  # other chunks read as ever
    with pytest.raises(InvalidImageError, match=r"nuclei\.zarr' \(region \[64:100, 0:256, 0:3\], chunk 'c/1/2/0'"):
        opened.read(64, 0, 100, 256)
    with pytest.raises(InvalidImageError, match=r"cannot read '.*nuclei\.zarr'"):
        Session(path, "classical")
