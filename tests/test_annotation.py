"""Annotation (the prompt state both front ends drive) with the oracle on the real sample image."""

import threading

import numpy as np
import pytest
from scipy import ndimage

import samkit
from samkit.errors import InvalidLabelError, InvalidPromptError
from samkit.testing import OracleModel

from conftest import innermost


@pytest.fixture
def sample():
    image, truth = samkit.data.nuclei()
    return image, truth, ndimage.find_objects(truth)


def test_clicks_preview_commit_undo_redo_erase(sample):
    image, truth, boxes = sample
    annotation = samkit.Annotation(samkit.Session(image, OracleModel(truth)))
    seen = []
    annotation.on_preview(lambda mask, error: seen.append((mask, error)))

    for i in (3, 7, 12):
        mask = annotation.add_point(*innermost(truth, boxes[i - 1], i))
        np.testing.assert_array_equal(mask.to_array(truth.shape), truth == i)  # the preview is the object
        assert annotation.commit() == annotation.labels.next_label - 1
        assert not annotation.has_prompts and annotation.mask is None
    expected = np.select([truth == 3, truth == 7, truth == 12], [1, 2, 3], 0)
    np.testing.assert_array_equal(np.asarray(annotation.labels), expected)
    assert seen[0][0] is not None and seen[0][1] is None

    assert annotation.undo()  # no prompts pending: undoes the last commit
    np.testing.assert_array_equal(np.asarray(annotation.labels), np.where(expected == 3, 0, expected))
    assert annotation.redo()
    np.testing.assert_array_equal(np.asarray(annotation.labels), expected)
    y, x = innermost(truth, boxes[6], 7)
    assert annotation.erase_at(y, x) == 2
    assert not (np.asarray(annotation.labels) == 2).any()
    before = np.asarray(annotation.labels).copy()
    assert annotation.erase_at(*innermost(truth, boxes[0], 1)) == 0  # on an object never committed: nothing erased
    np.testing.assert_array_equal(np.asarray(annotation.labels), before)


def test_undo_removes_the_last_prompt_first(sample):
    image, truth, boxes = sample
    annotation = samkit.Annotation(samkit.Session(image, OracleModel(truth)))
    annotation.add_point(*innermost(truth, boxes[4], 5))
    annotation.add_point(*innermost(truth, boxes[5], 6), positive=False)
    assert annotation.undo() and annotation.points == [tuple(float(v) for v in innermost(truth, boxes[4], 5))]
    assert annotation.undo() and not annotation.has_prompts and annotation.mask is None
    assert not annotation.undo()  # nothing committed, nothing prompted


def test_set_prompts_replaces_everything_in_one_decode(sample):
    image, truth, boxes = sample
    annotation = samkit.Annotation(samkit.Session(image, OracleModel(truth)))
    seen = []
    annotation.on_preview(lambda mask, error: seen.append(mask))
    annotation.add_point(*innermost(truth, boxes[0], 1))
    a, b = innermost(truth, boxes[7], 8), innermost(truth, boxes[8], 9)
    mask = annotation.set_prompts([a, b], [1, 0])
    assert len(seen) == 2 and annotation.points == [tuple(map(float, a)), tuple(map(float, b))]
    np.testing.assert_array_equal(mask.to_array(truth.shape), truth == 8)
    with pytest.raises(InvalidPromptError, match="2 points but 1 labels"):
        annotation.set_prompts([a, b], [1])
    with pytest.raises(InvalidPromptError):
        annotation.set_prompts([(-5, 10)], [1])
    assert annotation.point_labels == [1, 0] and annotation.mask is mask  # refused: nothing changed
    assert annotation.set_prompts([], []) is None and not annotation.has_prompts and annotation.mask is None


def test_a_box_designates_the_object_it_frames(sample):
    image, truth, boxes = sample
    annotation = samkit.Annotation(samkit.Session(image, OracleModel(truth)))
    sl = boxes[9]
    mask = annotation.set_box((sl[0].start, sl[1].start, sl[0].stop, sl[1].stop))
    np.testing.assert_array_equal(mask.to_array(truth.shape), truth == 10)
    annotation.commit(label=42)
    assert annotation.labels.objects.keys() == {42}


def test_bad_input_is_refused_without_changing_state(sample):
    image, truth, _ = sample
    annotation = samkit.Annotation(samkit.Session(image, OracleModel(truth)))
    with pytest.raises(InvalidPromptError, match="outside the image"):
        annotation.add_point(520, 3)
    with pytest.raises(InvalidPromptError):
        annotation.remove_point()
    assert not annotation.has_prompts
    with pytest.raises(InvalidLabelError, match="nothing to commit"):
        annotation.commit()
    background = np.argwhere(truth == 0)[0]
    annotation.add_point(*background)  # on no object: no mask, nothing to commit
    with pytest.raises(InvalidLabelError):
        annotation.commit()
    with pytest.raises(InvalidLabelError, match="shape"):
        samkit.Annotation(annotation.session, samkit.LabelImage((10, 10)))


class GatedOracle(OracleModel):
    """The oracle, whose decoder waits until the test opens ``gate`` (a decode that takes as long as the test wants)."""

    def __init__(self, labels):
        super().__init__(labels)
        self.gate = threading.Event()

    def decoder(self, embedding, window):
        decode = super().decoder(embedding, window)

        def gated(**prompts):
            self.gate.wait(30)
            return decode(**prompts)

        return gated


def test_background_decoding_never_blocks_and_keeps_only_the_newest(sample):
    image, truth, boxes = sample
    model = GatedOracle(truth)
    annotation = samkit.Annotation(samkit.Session(image, model), background=True)
    previews = []
    annotation.on_preview(lambda mask, error: previews.append(mask))
    annotation.add_point(*innermost(truth, boxes[0], 1))
    annotation.remove_point()
    annotation.add_point(*innermost(truth, boxes[1], 2))  # only this one is shown
    # the calls returned while every decode was still held at the gate: none of them ran on this thread
    assert annotation.decoding and previews == [] and annotation.mask is None
    model.gate.set()
    mask = annotation.wait(timeout=30)
    np.testing.assert_array_equal(mask.to_array(truth.shape), truth == 2)
    assert previews == [mask]  # stale decodes were dropped, the newest shown once
    annotation.commit()
    annotation.close()
    assert annotation.labels.objects.keys() == {1}


def test_measuring_the_committed_objects_takes_one_call(sample, tmp_path):
    import tifffile

    image, truth, boxes = sample
    path = tmp_path / "nuclei.ome.tif"
    tifffile.imwrite(path, image, ome=True, metadata={"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    annotation = samkit.Annotation(samkit.Session(path, OracleModel(truth)))
    for i in (2, 4, 6):
        annotation.add_point(*innermost(truth, boxes[i - 1], i))
        annotation.commit()
    table = annotation.measure()
    assert list(table["label"]) == [1, 2, 3]
    np.testing.assert_allclose(table["area_um2"], [0.25 * (truth == i).sum() for i in (2, 4, 6)])
    means = [c for c in table.columns if c.startswith("mean_intensity")]
    assert len(means) == 3  # one per channel of the image
    np.testing.assert_allclose(table[means[0]].iloc[0], image[..., 0][truth == 2].mean())
