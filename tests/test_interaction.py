"""The one interaction policy (samkit/interaction.py): keys checked against napari's real keymap,
the default model from a real cache folder, prompt bounds, and commit while a decode is running."""

import threading

import numpy as np
import pytest

import samkit
import samkit.testing
from samkit import interaction
from samkit.errors import InvalidPromptError, NotReadyError
from samkit.interaction import ACTIONS, BIND, KEYS, NONE, OWN, action_for, clip_box, default_model, key_help, key_name
from samkit.models.registry import MODELS, ModelInfo
from samkit.models.weights import fetch_checkpoint


OTHER_LAYERS = ("auto_contrast", "orient_plane", "_image_", "_vectors_", "_tracks_", "_surface_")


def napari_keys() -> dict[str, set[str]]:
    """napari's own default shortcuts of the viewer and of the layer kinds samkit uses (points, shapes, labels):
    key (as samkit writes it) -> the napari commands bound to it."""
    pytest.importorskip("napari")
    from napari.utils.shortcuts import default_shortcuts

    out: dict[str, set[str]] = {}
    for command, bindings in default_shortcuts.items():
        if any(part in command for part in OTHER_LAYERS):  # image layers etc.: their keys win while one is selected
            continue
        for binding in bindings:
            *mods, key = str(binding).split("+")  # napari writes "Shift+A", "Left"
            key = f"Arrow{key}" if key in ("Up", "Down", "Left", "Right") else key
            out.setdefault("-".join([*mods, key]), set()).add(command)
    return out


def test_samkit_binds_no_key_napari_uses_and_uses_napari_s_own_keys_for_its_tools():
    taken = napari_keys()
    for name, action in ACTIONS.items():
        if action.napari == BIND:
            assert action.key not in taken, f"{name}: {action.key} is napari's {taken.get(action.key)}"
    own = {"brush": "labels_paint", "eraser": "labels_erase", "fill": "labels_fill", "pan_mode": "labels_pan_zoom",
           "brush_smaller": "decrease_brush_size", "brush_larger": "increase_brush_size",
           "toggle_labels": "toggle_selected_visibility"}  # fmt: skip
    assert {n for n, a in ACTIONS.items() if a.napari == OWN} == set(own)
    for name, command in own.items():
        assert any(command in c for c in taken[ACTIONS[name].key]), f"{name}: napari's {ACTIONS[name].key} is not {command}"


def test_one_key_per_action_in_each_host():
    for host in ("jupyter", "napari"):
        keys = [a.key for a in ACTIONS.values() if host == "jupyter" or a.napari == BIND]
        keys += [k for a in ACTIONS.values() for k in a.also] if host == "jupyter" else []
        assert len(keys) == len(set(keys)), host
    for name, key in KEYS.items():
        assert action_for(key, "jupyter") == name
        assert action_for(key, "napari") == (name if ACTIONS[name].napari == BIND else None)
    assert action_for("+") == "zoom_in" and action_for("+", "napari") is None


def test_browser_key_events_map_to_the_same_names():
    assert key_name("c") == "C" and key_name("C", shift=True) == "Shift-C" and key_name("u", shift=True) == "Shift-U"
    assert key_name("+", shift=True) == "+" and key_name("[") == "[" and key_name("ArrowUp") == "ArrowUp"
    assert key_name("c", ctrl=True) is None and key_name("0", meta=True) is None and key_name("m", alt=True) is None
    assert action_for(key_name("e", shift=True)) == "erase_object" and action_for(key_name("e")) == "eraser"
    assert action_for(key_name("m")) is None  # m: once "− point", now free (JupyterLab's "to Markdown" never sees it)


def test_key_help_lists_every_key_of_its_host():
    jupyter = dict(key_help("jupyter"))
    assert len(jupyter) == len(ACTIONS) and jupyter["= / +"] == "zoom in"
    napari = dict(key_help("napari"))
    assert set(napari) == {a.key for a in ACTIONS.values() if a.napari != NONE}
    assert "napari's own key" in napari["P"] and "napari" not in napari["C"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(folder))
    return folder


def cached(cache, monkeypatch, name):
    """Put a checkpoint file for registry entry ``name`` in the cache, verified (by its size: no network)."""
    info = ModelInfo(name=name, model_type="vit_t", url=f"http://127.0.0.1:9/{name}.pt", size_bytes=64, source="test")
    monkeypatch.setitem(MODELS, name, info)
    (cache / info.filename).write_bytes(b"x" * 64)
    fetch_checkpoint(name)


def test_default_model_is_a_cached_one_by_preference_never_a_download(cache, monkeypatch):
    choice = default_model()
    assert choice.model == "classical" and "not SAM" in choice.note and str(cache) in choice.note
    cached(cache, monkeypatch, "vit_h_histopathology_test")  # not in the preference list: still better than none
    assert default_model() == ("vit_h_histopathology_test", "")
    cached(cache, monkeypatch, "vit_t")
    assert default_model().model == "vit_t"
    cached(cache, monkeypatch, "vit_b_lm")
    assert default_model().model == "vit_b_lm"
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == [
        "vit_b_lm.pt", "vit_h_histopathology_test.pt", "vit_t.pt"]  # nothing was downloaded  # fmt: skip


def test_points_and_boxes_outside_the_image():
    assert interaction.check_point(0, 695.9, (520, 696)) == (0.0, 695.9)
    for y, x in [(-0.1, 3), (520, 3), (3, 696)]:
        with pytest.raises(InvalidPromptError, match=r"outside the image \(520 × 696 pixels\)"):
            interaction.check_point(y, x, (520, 696))
    assert clip_box((30, 50, -10, 10), (520, 696)) == (0.0, 10.0, 30.0, 50.0)  # corners in any order
    assert clip_box((500, 690, 600, 800), (520, 696)) == (500.0, 690.0, 520.0, 696.0)
    assert clip_box((519.5, 3, 700, 10), (520, 696)) is None and clip_box((-9, -9, -1, -1), (520, 696)) is None


class SlowModel(samkit.testing.OracleModel):
    """The oracle, made to wait inside embedding until ``release`` is set (a tile still being embedded)."""

    def __init__(self, truth):
        super().__init__(truth)
        self.release = threading.Event()

    def label_window(self, pixels, window):
        self.release.wait(30)
        return super().label_window(pixels, window)


def test_commit_while_decoding_waits_for_the_decode_then_commits_its_object(monkeypatch):
    image, truth = samkit.data.nuclei()
    model = SlowModel(truth)
    session = samkit.Session(image, model)
    annotation = samkit.Annotation(session, background=True)
    y, x = np.argwhere(truth == 7)[len(np.argwhere(truth == 7)) // 2]
    annotation.add_point(y, x)
    monkeypatch.setattr(interaction, "COMMIT_WAIT_S", 0.2)
    with pytest.raises(NotReadyError, match="still being worked out"):
        interaction.commit(annotation)  # the tile is not embedded yet: nothing is committed
    assert not annotation.labels.objects
    monkeypatch.setattr(interaction, "COMMIT_WAIT_S", 30)
    timer = threading.Timer(0.3, model.release.set)
    timer.start()
    label = interaction.commit(annotation)  # waits for the decode, then commits what it shows
    assert np.array_equal(np.asarray(annotation.labels) == label, truth == 7)
    assert annotation.labels.attributes[label]["mode"] == "clicks"
    annotation.close()
