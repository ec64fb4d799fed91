"""The model registry: every entry well-formed, lookups, user registration."""

import re
from urllib.parse import urlparse

import pytest

from samkit.errors import UnknownModelError
from samkit.models import MODEL_TYPES
from samkit.models.sam2 import SAM2_MODEL_TYPES
from samkit.models.registry import MODELS, ModelInfo, get_model_info, list_models, register

ENTRIES = list(MODELS.values())


@pytest.fixture
def clean_registry():
    """Let a test add entries; the registry is restored afterwards."""
    saved = dict(MODELS)
    yield MODELS
    MODELS.clear()
    MODELS.update(saved)


def test_expected_models_are_registered():
    names = list_models()
    for name in ["vit_b", "vit_l", "vit_h", "vit_t", "vit_b_lm", "vit_l_lm", "vit_t_lm",
                 "vit_b_em_organelles", "vit_l_em_organelles", "vit_t_em_organelles"]:
        assert name in names
    assert names[:4] == ["vit_b", "vit_l", "vit_h", "vit_t"]


@pytest.mark.parametrize("info", ENTRIES, ids=[info.name for info in ENTRIES])
def test_entry_is_well_formed(info):
    assert MODELS[info.name] is info
    assert info.model_type in MODEL_TYPES + SAM2_MODEL_TYPES
    assert info.name.startswith(info.model_type)
    url = urlparse(info.url)
    assert url.scheme == "https" and url.netloc
    assert info.filename.endswith((".pt", ".pth")) and "/" not in info.filename
    assert info.size_bytes is None or (isinstance(info.size_bytes, int) and info.size_bytes > 0)
    assert info.known_hash is not None, "every built-in entry can be verified"
    if info.sha256 is not None:
        assert re.fullmatch(r"[0-9a-f]{64}", info.sha256)
        assert info.known_hash == f"sha256:{info.sha256}"
    else:
        assert info.hash_note, "an entry without sha256 says why"
        assert re.fullmatch(r"xxh128:[0-9a-f]{32}", info.known_hash)
    if info.decoder_url is not None:
        assert urlparse(info.decoder_url).scheme == "https"
        assert re.fullmatch(r"xxh128:[0-9a-f]{32}", info.decoder_hash)
    assert info.description and info.source and info.licence


def test_filenames_and_urls_are_unique():
    filenames = [info.filename for info in ENTRIES]
    urls = [info.url for info in ENTRIES]
    assert len(set(filenames)) == len(filenames)
    assert len(set(urls)) == len(urls)


@pytest.mark.parametrize(
    "name, filename, size, sha256_start",
    [
        ("vit_b", "sam_vit_b_01ec64.pth", 375_042_383, "ec2df627"),
        ("vit_l", "sam_vit_l_0b3195.pth", 1_249_524_607, "3adcc431"),
        ("vit_h", "sam_vit_h_4b8939.pth", 2_564_550_879, "a7bf3b02"),
        ("vit_t", "mobile_sam.pt", 40_728_226, "6dbb9052"),
        ("sam2.1_hiera_tiny", "sam2.1_hiera_tiny.pt", 156_008_466, "7402e0d8"),
        ("sam2.1_hiera_small", "sam2.1_hiera_small.pt", 184_416_285, "6d1aa6f3"),
        ("sam2.1_hiera_base_plus", "sam2.1_hiera_base_plus.pt", 323_606_802, "a2345aed"),
        ("sam2.1_hiera_large", "sam2.1_hiera_large.pt", 898_083_611, "2647878d"),
    ],
)
def test_official_checkpoint_facts(name, filename, size, sha256_start):
    info = get_model_info(name)
    assert info.filename == filename
    assert info.size_bytes == size
    assert info.sha256.startswith(sha256_start)
    assert info.model_type == name
    if name.startswith("sam2"):
        assert info.url == f"https://dl.fbaipublicfiles.com/segment_anything_2/092824/{filename}"


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownModelError, match="no model called 'vit_x'.*vit_b.*vit_b_lm") as err:
        get_model_info("vit_x")
    assert isinstance(err.value, ValueError)


def test_register_adds_a_loadable_name(clean_registry):
    info = ModelInfo(
        name="lab_vit_b", model_type="vit_b",
        url="https://example.org/weights/lab_vit_b.pth", sha256="AB" * 32,
    )
    assert register(info) is info
    assert "lab_vit_b" in list_models()
    assert get_model_info("lab_vit_b") is info
    assert info.filename == "lab_vit_b.pth"
    assert info.sha256 == "ab" * 32  # normalised to lower case
    with pytest.raises(ValueError, match="already registered"):
        register(info)
    newer = ModelInfo(name="lab_vit_b", model_type="vit_b",
                      url="https://example.org/weights/lab_vit_b_v2.pth", sha256="cd" * 32)
    register(newer, overwrite=True)
    assert get_model_info("lab_vit_b") is newer


def test_register_refuses_a_clashing_filename(clean_registry):
    clash = ModelInfo(name="other", model_type="vit_b", url="https://example.org/x.pth",
                      filename="sam_vit_b_01ec64.pth", size_bytes=10)
    with pytest.raises(ValueError, match="already used by 'vit_b'"):
        register(clash)
    with pytest.raises(TypeError, match="ModelInfo"):
        register({"name": "dict"})


def test_default_filename():
    assert ModelInfo("a", "vit_t", "https://h/x/download", size_bytes=1).filename == "a.pt"
    assert ModelInfo("a", "vit_t", "https://h/x/w.pth?dl=1", size_bytes=1).filename == "w.pth"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(model_type="vit_x"), "model_type='vit_x' is unknown"),
        (dict(url="ftp://example.org/m.pth"), "must be an http"),
        (dict(sha256="abc"), "not 64 hexadecimal"),
        (dict(sha256=None, alt_hash="xxh128:abc"), "algorithm:hexdigest"),
        (dict(sha256=None, alt_hash="crc32:0000abcd"), "algorithm:hexdigest"),
        (dict(sha256=None), "so the download can be checked"),
        (dict(size_bytes=0), "positive int"),
        (dict(filename="../evil.pth"), "plain file name"),
    ],
)
def test_bad_entries_are_refused(kwargs, message):
    fields = dict(name="m", model_type="vit_b", url="https://example.org/m.pth", sha256="0" * 64)
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ModelInfo(**fields)


def test_modelinfo_is_frozen():
    with pytest.raises(AttributeError):
        get_model_info("vit_b").url = "https://elsewhere"
