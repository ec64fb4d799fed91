"""The ``samkit`` command line: ``samkit models list|download|path``."""

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
