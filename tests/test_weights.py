"""Downloads through pooch from a local HTTP server: verified, cached, never loaded when wrong.

The server on 127.0.0.1 serves a real checkpoint generated here (a randomly
initialised MobileSAM saved in the official layout), whole, cut short with an
honest length, cut short with a lying length, or not at all.
"""

import hashlib
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pooch
import pytest
import torch

import samkit
from samkit.errors import DownloadError
from samkit.models import build_sam
from samkit.models import weights
from samkit.models.registry import MODELS, ModelInfo
from samkit.models.weights import cache_dir, fetch_checkpoint, is_cached

pytestmark = pytest.mark.network

NAME = "local_vit_t"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """(bytes, sha256) of a real vit_t checkpoint in the official file layout."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("served") / "mobile_sam.pt"
    torch.save(build_sam("vit_t").state_dict(), path)
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (the http.server API)
        body = self.body
        route = self.path.strip("/")
        if route == "missing":
            self.send_error(404)
            return
        declared = len(body)
        if route == "short":  # the server itself has a truncated copy
            body = body[: len(body) // 2]
            declared = len(body)
        elif route == "broken":  # the server promises the whole file, then hangs up half way
            body = body[: len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(checkpoint):
    """Base URL of an HTTP server on 127.0.0.1 serving the checkpoint."""
    handler = type("Handler", (_Handler,), {"body": checkpoint[0]})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


@pytest.fixture
def dead_url():
    """An address on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mobile_sam.pt"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(folder))
    return folder


def entry(monkeypatch, url, **checks):
    """Register a vit_t entry for ``url`` (removed again after the test)."""
    info = ModelInfo(name=NAME, model_type="vit_t", url=url, filename="local_vit_t.pt", **checks)
    monkeypatch.setitem(MODELS, NAME, info)
    return info


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte differs
    path.write_bytes(bytes(data))


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.delenv("SAMKIT_CACHE_DIR", raising=False)
    assert cache_dir() == Path(pooch.os_cache("samkit"))
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"


def test_good_file_is_downloaded_verified_cached_and_loads(server, checkpoint, cache, monkeypatch):
    data, sha = checkpoint
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=sha, size_bytes=len(data))
    path = fetch_checkpoint(NAME, progress=False)
    assert path == cache / "local_vit_t.pt"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert leftovers(cache) == [".local_vit_t.pt.verified", "local_vit_t.pt"]
    assert is_cached(NAME)

    model = samkit.load_model(NAME, device="cpu")
    assert isinstance(model, samkit.models.Sam)
    assert model.model_type == "vit_t"
    assert model.checkpoint == path
    reference = torch.load(path, map_location="cpu", weights_only=True)
    key = "mask_decoder.iou_prediction_head.layers.0.weight"
    assert torch.equal(model.state_dict()[key], reference[key])


def test_cached_file_is_used_without_network(server, checkpoint, cache, monkeypatch, dead_url):
    data, sha = checkpoint
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=sha)
    first = fetch_checkpoint(NAME, progress=False)
    entry(monkeypatch, dead_url, sha256=sha)  # same file, server gone
    assert fetch_checkpoint(NAME, progress=False) == first


def test_verified_file_is_not_hashed_on_every_load(server, checkpoint, cache, monkeypatch):
    data, sha = checkpoint
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=sha)
    path = fetch_checkpoint(NAME, progress=False)
    calls = []
    real_hash = pooch.file_hash
    monkeypatch.setattr(pooch, "file_hash", lambda *a, **k: calls.append(a) or real_hash(*a, **k))

    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))  # its time stamp changed: checked again
    assert fetch_checkpoint(NAME) == path
    assert len(calls) == 1
    assert fetch_checkpoint(NAME) == path  # unchanged since that check: trusted
    assert fetch_checkpoint(NAME) == path
    assert len(calls) == 1


def test_wrong_hash_raises_and_leaves_nothing(server, checkpoint, cache, monkeypatch):
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256="0" * 64)
    with pytest.raises(DownloadError, match="not the published one.*expected sha256:0{64}.*deleted"):
        fetch_checkpoint(NAME, progress=False)
    assert leftovers(cache) == []
    with pytest.raises(DownloadError):
        samkit.load_model(NAME, device="cpu")
    assert leftovers(cache) == []


@pytest.mark.parametrize("route", ["short", "broken"])
def test_truncated_download_raises_and_leaves_nothing(server, checkpoint, cache, monkeypatch, route):
    data, sha = checkpoint
    entry(monkeypatch, f"{server}/{route}", sha256=sha, size_bytes=len(data))
    with pytest.raises(DownloadError, match=NAME) as err:
        fetch_checkpoint(NAME, progress=False)
    if route == "short":
        assert "not the published one" in str(err.value)
    else:
        assert "failed" in str(err.value)
    assert leftovers(cache) == []


def test_size_only_entry_checks_the_size(server, checkpoint, cache, monkeypatch):
    data, _ = checkpoint
    entry(monkeypatch, f"{server}/short", size_bytes=len(data))
    with pytest.raises(DownloadError, match=f"expected {len(data):,} bytes, found {len(data) // 2:,}"):
        fetch_checkpoint(NAME, progress=False)
    assert leftovers(cache) == []
    entry(monkeypatch, f"{server}/mobile_sam.pt", size_bytes=len(data))
    assert fetch_checkpoint(NAME, progress=False).stat().st_size == len(data)


def test_xxh128_entry(server, checkpoint, cache, monkeypatch):
    xxhash = pytest.importorskip("xxhash")
    data, _ = checkpoint
    entry(monkeypatch, f"{server}/mobile_sam.pt", alt_hash=f"xxh128:{xxhash.xxh128(data).hexdigest()}")
    assert fetch_checkpoint(NAME, progress=False).read_bytes() == data
    entry(monkeypatch, f"{server}/mobile_sam.pt", alt_hash="xxh128:" + "0" * 32)
    with pytest.raises(DownloadError, match="does not match its published xxh128 hash|not the published one"):
        with pytest.warns(UserWarning, match="deleted"):
            fetch_checkpoint(NAME, progress=False)
    assert leftovers(cache) == []


def test_missing_hash_library_is_reported_before_downloading(server, cache, monkeypatch):
    available = {k: v for k, v in pooch.hashes.ALGORITHMS_AVAILABLE.items() if not k.startswith("xxh")}
    monkeypatch.setattr(pooch.hashes, "ALGORITHMS_AVAILABLE", available)
    entry(monkeypatch, f"{server}/mobile_sam.pt", alt_hash="xxh128:" + "0" * 32)
    with pytest.raises(DownloadError, match="pip install xxhash"):
        fetch_checkpoint(NAME, progress=False)
    assert leftovers(cache) == []


def test_server_down_says_how_to_work_offline(cache, monkeypatch, dead_url):
    entry(monkeypatch, dead_url, sha256="0" * 64)
    with pytest.raises(DownloadError, match="cannot reach") as err:
        fetch_checkpoint(NAME, progress=False)
    message = str(err.value)
    assert "samkit.load_model('/path/to/local_vit_t.pt')" in message
    assert str(cache / "local_vit_t.pt") in message
    assert "SAMKIT_CACHE_DIR" in message
    assert isinstance(err.value, OSError)
    assert leftovers(cache) == []


def test_http_error_is_a_download_error(server, cache, monkeypatch):
    entry(monkeypatch, f"{server}/missing", sha256="0" * 64)
    with pytest.raises(DownloadError, match="refused.*404"):
        fetch_checkpoint(NAME, progress=False)
    assert leftovers(cache) == []


def test_corrupted_cached_file_is_downloaded_again(server, checkpoint, cache, monkeypatch):
    data, sha = checkpoint
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=sha)
    path = fetch_checkpoint(NAME, progress=False)
    corrupt(path)
    with pytest.warns(UserWarning, match="does not match its published sha256 hash"):
        assert fetch_checkpoint(NAME, progress=False) == path
    assert path.read_bytes() == data


def test_corrupted_cached_file_is_never_loaded(server, checkpoint, cache, monkeypatch, dead_url):
    data, sha = checkpoint
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=sha)
    path = fetch_checkpoint(NAME, progress=False)
    corrupt(path)  # right after its check: same size, maybe the same time stamp
    entry(monkeypatch, dead_url, sha256=sha)
    with pytest.warns(UserWarning, match="deleted"), pytest.raises(DownloadError, match="cannot reach"):
        samkit.load_model(NAME, device="cpu")
    assert not path.exists()


def test_file_copied_into_the_cache_by_hand(checkpoint, cache, monkeypatch, dead_url):
    data, sha = checkpoint
    info = entry(monkeypatch, dead_url, sha256=sha)
    cache.mkdir()
    (cache / info.filename).write_bytes(data)
    assert not is_cached(NAME)
    assert fetch_checkpoint(NAME) == cache / info.filename
    assert is_cached(NAME)


def test_unusable_cache_folder(checkpoint, tmp_path, monkeypatch, server):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("SAMKIT_CACHE_DIR", str(blocker / "cache"))
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=checkpoint[1])
    with pytest.raises(DownloadError, match="cannot create the cache folder.*SAMKIT_CACHE_DIR"):
        fetch_checkpoint(NAME, progress=False)


def test_read_only_cache_folder(checkpoint, cache, monkeypatch, server):
    cache.mkdir()
    monkeypatch.setattr(weights.os, "access", lambda path, mode: False)  # root ignores chmod
    entry(monkeypatch, f"{server}/mobile_sam.pt", sha256=checkpoint[1])
    with pytest.raises(DownloadError, match="read-only.*SAMKIT_CACHE_DIR"):
        fetch_checkpoint(NAME, progress=False)
    assert leftovers(cache) == []


def test_verified_checkpoint_with_nan_weights_is_not_loaded(cache, monkeypatch, dead_url, tmp_path):
    """D9: a file can match its published hash and still hold NaN weights (a diverged run): refused at load."""
    torch.manual_seed(0)
    state = build_sam("vit_t").state_dict()
    state["image_encoder.neck.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "diverged.pt")
    data = (tmp_path / "diverged.pt").read_bytes()
    info = entry(monkeypatch, dead_url, sha256=hashlib.sha256(data).hexdigest())
    cache.mkdir()
    (cache / info.filename).write_bytes(data)
    with pytest.raises(samkit.errors.CheckpointError, match="'image_encoder.neck.0.weight' holds NaN or infinite"):
        samkit.load_model(NAME, device="cpu")
    assert is_cached(NAME)  # the published file: kept and verified, just never loaded
