"""The ``samkit`` command line: ``samkit models list|download|path``."""

import re

import pytest

from samkit.cli import main
from samkit.models.registry import MODELS, ModelInfo
from samkit.models.weights import fetch_checkpoint

PAYLOAD = b"not really weights, but the size is what this entry checks"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def local_entries(cache, monkeypatch):
    """Two entries whose files are in the cache: one verified, one copied in unchecked."""
    cache.mkdir()
    for name in ("cli_checked", "cli_unchecked"):
        info = ModelInfo(name=name, model_type="vit_t", url=f"http://127.0.0.1:9/{name}.pt",
                         size_bytes=len(PAYLOAD), source="test")
        monkeypatch.setitem(MODELS, name, info)
        (cache / info.filename).write_bytes(PAYLOAD)
    fetch_checkpoint("cli_checked")  # checks the size, no network needed
    return cache


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("samkit: error: ")
    return lines[0]


def test_models_list(capsys, local_entries):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "SIZE", "SOURCE", "CACHED"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip() and not line.startswith("cache:")}
    assert set(rows) == set(MODELS)
    assert rows["vit_b"][:3] == ["vit_b", "vit_b", "375.0"]
    assert rows["vit_b"][-1] == "no"
    assert rows["vit_b_lm"][2] == "?"  # no size published
    assert rows["cli_checked"][-1] == "yes"
    assert rows["cli_unchecked"][-1] == "unchecked"
    assert f"cache: {local_entries}" in out


def test_models_path_not_downloaded(capsys, cache):
    assert main(["models", "path", "vit_b"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(cache / "sam_vit_b_01ec64.pth")
    assert "not downloaded yet: samkit models download vit_b" in captured.err


def test_models_path_downloaded(capsys, local_entries):
    assert main(["models", "path", "cli_checked"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(local_entries / "cli_checked.pt")
    assert captured.err == ""


def test_models_download_of_cached_file(capsys, local_entries):
    assert main(["models", "download", "cli_checked", "--no-progress"]) == 0
    assert capsys.readouterr().out.strip() == str(local_entries / "cli_checked.pt")


@pytest.mark.parametrize("action", ["path", "download"])
def test_unknown_name_is_one_line_and_exit_2(capsys, cache, action):
    assert main(["models", action, "vit_x"]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert "'vit_x'" in line and "vit_b_lm" in line
    assert "Traceback" not in captured.err
    assert not cache.exists()


def test_download_error_is_one_line_and_exit_2(capsys, cache, monkeypatch):
    info = ModelInfo(name="cli_offline", model_type="vit_t", url="http://127.0.0.1:9/w.pt", size_bytes=10)
    monkeypatch.setitem(MODELS, "cli_offline", info)
    assert main(["models", "download", "cli_offline", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "cli_offline: downloading http://127.0.0.1:9/w.pt"
    line = one_error_line("\n".join(err.splitlines()[1:]))
    assert "samkit.load_model(" in line and "SAMKIT_CACHE_DIR" in line


def test_usage(capsys):
    assert main([]) == 2
    assert "models" in capsys.readouterr().err
    assert main(["models"]) == 2
    assert "download" in capsys.readouterr().err
    assert main(["models", "frobnicate"]) == 2
    assert main(["--help"]) == 0
    assert "usage: samkit" in capsys.readouterr().out


# --- one error contract: every error a user can cause is one line and exit 2 -----------------

WINDOWS = ["--tile-size", "160", "--halo", "16", "--points-per-side", "64", "--no-progress"]


@pytest.fixture
def nuclei(real_data, tmp_path, monkeypatch):
    """A real DSB2018 image as a TIFF, with the checkpoint cache in tmp_path (so: the classical model)."""
    import tifffile

    from conftest import load_dsb

    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(tmp_path / "models"))
    name = sorted((real_data / "nuclei" / "dsb2018").glob("*_img.png"))[0].name.split("_img")[0]
    image, _ = load_dsb(real_data, name)
    path = tmp_path / "nuclei.tif"
    tifffile.imwrite(path, image)
    return path


def error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return one_error_line(err.splitlines()[-1])


@pytest.mark.parametrize(
    "option, match",
    [
        (["--halo", "0"], "argument --halo: 0 is too small: give at least 1"),
        (["--halo", "-3"], "argument --halo: -3 is too small"),
        (["--tile-size", "0"], "argument --tile-size: 0 is too small: give at least 16"),  # not the default
        (["--tile-size", "big"], "argument --tile-size: 'big' is not a whole number"),
        (["--tile-size", "64", "--halo", "32"], "tile_size=64, halo=32: need .* 2 \\* halo < tile_size"),
    ],
)
@pytest.mark.parametrize("command", ["embed", "segment"])
def test_bad_windows_are_refused_in_one_line(capsys, nuclei, tmp_path, command, option, match):
    out = ["-o", str(tmp_path / "labels.tif")] if command == "segment" else []
    line = error_line(capsys, [command, str(nuclei), "--cache", str(tmp_path / "emb"), *out, *option])
    assert re.search(match, line), line
    assert not (tmp_path / "emb").exists() and not (tmp_path / "labels.tif").exists()


def test_usage_errors_are_one_line(capsys, tmp_path):
    line = error_line(capsys, ["segment", str(tmp_path / "x.tif")])
    assert "-o/--out" in line and "samkit segment --help" in line


def test_unreadable_output_folder_is_refused_before_any_work(capsys, nuclei, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for out in (blocker / "labels.tif", blocker / "deeper" / "labels.zarr", blocker / "folder"):
        line = error_line(capsys, ["segment", str(nuclei), "-o", str(out), "--cache", str(tmp_path / "emb")])
        assert f"-o {out}: cannot write into {blocker} (not a folder)" in line
    assert not (tmp_path / "emb").exists()  # nothing embedded


def test_os_error_is_one_line(capsys, real_data, tmp_path):
    labels = next((real_data / "nuclei" / "dsb2018").glob("*_labels.tif"))
    line = error_line(capsys, ["measure", str(labels), "-o", str(tmp_path / "missing" / "table.csv")])
    assert str(tmp_path / "missing") in line


def test_corrupt_zarr_chunk_is_one_line(capsys, nuclei, tmp_path):
    import tifffile
    import zarr

    image = tifffile.imread(nuclei)[..., 0]
    path = tmp_path / "nuclei.zarr"
    zarr.create_array(path, shape=image.shape, chunks=(64, 64), dtype=image.dtype)[:] = image
    (path / "c" / "1" / "1").write_bytes(b"not zstd data")
    line = error_line(capsys, ["segment", str(path), "-o", str(tmp_path / "labels.tif"), "--cache",
                               str(tmp_path / "emb"), *WINDOWS])  # fmt: skip
    assert line.startswith(f"samkit: error: cannot read '{path}'") and "chunk 'c/1/1' is unreadable" in line
    assert not (tmp_path / "labels.tif").exists()


def test_offline_download_names_the_cause_without_urllib3_noise(capsys, cache, monkeypatch):
    info = ModelInfo(name="cli_offline", model_type="vit_t", url="http://127.0.0.1:9/w.pt", size_bytes=10)
    monkeypatch.setitem(MODELS, "cli_offline", info)
    line = error_line(capsys, ["models", "download", "cli_offline", "--no-progress"])
    assert line.startswith("samkit: error: cli_offline: cannot reach http://127.0.0.1:9/w.pt (Connection refused; offline?)")
    for noise in ("HTTPConnectionPool", "Max retries", "NewConnectionError", "Caused by", "..."):
        assert noise not in line
    assert f"copy the file to {cache / 'w.pt'}" in line and "SAMKIT_CACHE_DIR" in line


@pytest.mark.parametrize("mine", ["notes.txt", "log.jsonl"])  # a file of the user's; a label folder's name
def test_foreign_folder_in_the_way_is_never_deleted(capsys, nuclei, tmp_path, mine):
    """D8: ``-o new.tif`` keeps its label image in ``.new.tif.labels``; a folder there samkit did not make stays."""
    folder = tmp_path / ".new.tif.labels"
    (folder / "labels.zarr").mkdir(parents=True)
    (folder / "labels.zarr" / "zarr.json").write_text('{"attributes": {}}')  # a zarr array, not samkit's
    (folder / mine).write_text("my notes")
    out = tmp_path / "new.tif"
    line = error_line(capsys, ["segment", str(nuclei), "-o", str(out), "--cache", str(tmp_path / "emb"), *WINDOWS])
    assert f"{folder} is in the way" in line and "not a label image samkit left" in line
    assert (folder / mine).read_text() == "my notes" and (folder / "labels.zarr" / "zarr.json").is_file()
    assert not out.exists()


@pytest.mark.parametrize("stopped", ["before the log", "after the log", "at creation"])
def test_samkits_own_leftover_is_replaced(capsys, nuclei, tmp_path, stopped):
    import numpy as np
    import tifffile

    import samkit

    folder = tmp_path / ".new.tif.labels"
    if stopped == "at creation":
        (folder / "labels.zarr").mkdir(parents=True)
    else:
        samkit.LabelImage((7, 9), path=folder)  # what an earlier run left when it was stopped
        if stopped == "before the log":
            (folder / "log.jsonl").unlink()
    assert main(["segment", str(nuclei), "-o", str(tmp_path / "new.tif"), "--cache", str(tmp_path / "emb"), *WINDOWS]) == 0
    assert tifffile.imread(tmp_path / "new.tif").max() > 0
    assert not folder.exists()
    assert np.asarray(tifffile.imread(tmp_path / "new.tif")).shape == tifffile.imread(nuclei).shape[:2]


def test_console_script_prints_no_traceback(tmp_path):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-m", "samkit", "embed", str(tmp_path / "x.tif"), "--halo", "0"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        "samkit: error: argument --halo: 0 is too small: give at least 1 (see: samkit embed --help)"
    ]
