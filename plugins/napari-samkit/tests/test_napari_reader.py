"""The reader opens samkit's saved annotation folders and declines everything else."""

import numpy as np
import pytest
import samkit

from napari_samkit import get_reader

from napari_helpers import notes  # noqa: F401 (fixtures)


@pytest.fixture
def saved(tmp_path):
    image, truth = samkit.data.nuclei()
    labels = samkit.LabelImage(truth.shape, path=tmp_path / "nuclei objects")
    for label in (3, 7, 12):
        labels.commit(samkit.Mask.from_array(truth == label))
    expected = np.select([truth == 3, truth == 7, truth == 12], [1, 2, 3], 0)
    return tmp_path / "nuclei objects", expected


def test_reads_a_saved_folder_or_its_log(saved, make_napari_viewer):
    folder, expected = saved
    for path in (folder, folder / "log.jsonl", str(folder), [folder]):
        reader = get_reader(path)
        assert callable(reader)
        (data, meta, kind), = reader(path)
        assert kind == "labels" and meta["name"] == "nuclei objects" and meta["metadata"]["objects"] == 3
        np.testing.assert_array_equal(np.asarray(data), expected)
    viewer = make_napari_viewer()
    layers = viewer.open(folder, plugin="napari-samkit")
    assert len(layers) == 1 and layers[0].name == "nuclei objects"
    np.testing.assert_array_equal(np.asarray(layers[0].data), expected)


def test_declines_what_it_cannot_read(tmp_path, saved):
    folder, _ = saved
    (tmp_path / "empty").mkdir()
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "log.jsonl").write_text("{not json")
    for path in (tmp_path / "empty", tmp_path / "image.png", tmp_path / "missing", None, 3.5, [folder, folder], broken):
        assert get_reader(path) is None


def test_a_damaged_folder_is_a_notification_not_a_crash(tmp_path, notes):
    from napari_samkit._reader import read_annotation

    damaged = tmp_path / "damaged"
    (damaged / "labels.zarr").mkdir(parents=True)
    (damaged / "log.jsonl").write_text("{not json\n")
    assert callable(get_reader(damaged))
    assert read_annotation(damaged) == []
    assert any("cannot read the annotation folder" in str(n.message) for n in notes)
