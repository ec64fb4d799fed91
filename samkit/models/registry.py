"""The model registry: which checkpoints samkit knows, where they live, how to check them.

Every entry is a :class:`ModelInfo`: the download URL, the file name it gets
in the cache, its size in bytes and the hash its publisher gives for it.
:func:`samkit.models.weights.fetch_checkpoint` refuses to hand out a file it
could not check against these facts.

Where each fact comes from is written beside it. Nothing here was computed by
us: a size or hash nobody publishes is ``None``.

Users add their own checkpoints (a fine-tuned model on a lab server, say)
with :func:`register`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlparse

from ..errors import InvalidSettingError, UnknownModelError

#: The architectures a checkpoint can be built for (see :mod:`samkit.models.sam` and :mod:`samkit.models.sam2`).
_MODEL_TYPES = (
    "vit_b", "vit_l", "vit_h", "vit_t",
    "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large",
)

#: Hash algorithms pooch understands, with the length of their hex digest.
_HASH_LENGTHS = {
    "md5": 32,
    "sha1": 40,
    "sha256": 64,
    "sha512": 128,
    "xxh32": 8,
    "xxh64": 16,
    "xxh3_64": 16,
    "xxh128": 32,
    "xxh3_128": 32,
}


@dataclass(frozen=True)
class ModelInfo:
    """Everything samkit needs to download, check and build one checkpoint.

    Parameters
    ----------
    name : str
        The registry name, e.g. ``'vit_b_lm'``.
    model_type : {'vit_b', 'vit_l', 'vit_h', 'vit_t', 'sam2.1_hiera_tiny', ...}
        The architecture the weights are for.
    url : str
        Where the file is downloaded from (http or https).
    filename : str, optional
        The file's name in the cache, unique in the registry. By default the
        URL's last part if it ends in ``.pt``/``.pth``, else ``'<name>.pt'``.
    size_bytes : int, optional
        The exact file size, where published.
    sha256 : str, optional
        The SHA-256 hex digest, where published.
    alt_hash : str, optional
        A hash in pooch's ``'algorithm:hexdigest'`` form (e.g.
        ``'xxh128:...'``) for files whose publisher gives no SHA-256.
    hash_note : str
        Why there is no SHA-256, or where it comes from if not the publisher.
    description : str
        One line for humans.
    source : str
        Who publishes the file (short, shown by ``samkit models list``).
    licence : str
        The licence of the weights, as their publisher states it.
    decoder_url, decoder_hash : str, optional
        micro-sam ships the weights of its instance-segmentation decoder as a
        second file; recorded for later use, not downloaded yet.

    Raises
    ------
    ValueError
        For an unknown ``model_type``, a URL that is not http(s), a malformed
        hash or size, or an entry with no way of checking the file at all.
    """

    name: str
    model_type: str
    url: str
    filename: str = ""
    size_bytes: int | None = None
    sha256: str | None = None
    alt_hash: str | None = None
    hash_note: str = ""
    description: str = ""
    source: str = ""
    licence: str = ""
    decoder_url: str | None = None
    decoder_hash: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise InvalidSettingError(f"a model needs a non-empty name, got {self.name!r}")
        if self.model_type not in _MODEL_TYPES:
            raise InvalidSettingError(
                f"{self.name}: model_type={self.model_type!r} is unknown; expected one of {_MODEL_TYPES}"
            )
        _check_url(self.name, self.url)
        if not self.filename:
            object.__setattr__(self, "filename", _default_filename(self.name, self.url))
        if "/" in self.filename or "\\" in self.filename or self.filename.startswith("."):
            raise InvalidSettingError(f"{self.name}: filename={self.filename!r} must be a plain file name")
        if self.size_bytes is not None and (
            not isinstance(self.size_bytes, int) or isinstance(self.size_bytes, bool) or self.size_bytes <= 0
        ):
            raise InvalidSettingError(f"{self.name}: size_bytes={self.size_bytes!r} must be a positive int or None")
        if self.sha256 is not None:
            digest = self.sha256.lower().removeprefix("sha256:")
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise InvalidSettingError(f"{self.name}: sha256={self.sha256!r} is not 64 hexadecimal digits")
            object.__setattr__(self, "sha256", digest)
        for key in ("alt_hash", "decoder_hash"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, _check_pooch_hash(self.name, getattr(self, key)))
        if self.decoder_url is not None:
            _check_url(self.name, self.decoder_url)
        if self.sha256 is None and self.alt_hash is None and self.size_bytes is None:
            raise InvalidSettingError(
                f"{self.name}: give sha256=, alt_hash= or at least size_bytes= so the download can be checked"
            )

    @property
    def known_hash(self) -> str | None:
        """The hash to check the file against, in pooch's ``'alg:hex'`` form (SHA-256 preferred)."""
        if self.sha256 is not None:
            return f"sha256:{self.sha256}"
        return self.alt_hash


def _check_url(name: str, url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        raise InvalidSettingError(f"{name}: url={url!r} must be an http(s) address")


def _check_pooch_hash(name: str, value: str) -> str:
    alg, _, digest = value.lower().partition(":")
    if _HASH_LENGTHS.get(alg) != len(digest) or not re.fullmatch(r"[0-9a-f]+", digest):
        raise InvalidSettingError(
            f"{name}: hash {value!r} is not 'algorithm:hexdigest' with an algorithm from {sorted(_HASH_LENGTHS)}"
        )
    return f"{alg}:{digest}"


def _default_filename(name: str, url: str) -> str:
    last = urlparse(url).path.rsplit("/", 1)[-1]
    return last if last.endswith((".pt", ".pth")) else f"{name}.pt"


# --------------------------------------------------------------------------
# Built-in entries
# --------------------------------------------------------------------------

_META = "Meta AI (segment-anything)"
# URLs: the "Model Checkpoints" list in the README of facebookresearch/segment-anything.
# Meta publishes no hash. The SHA-256 values were the pooch registry entries of
# computational-cell-analytics/micro-sam, micro_sam/util.py (releases of late 2023,
# before it switched to xxh128); the byte sizes and the same hashes are recorded by
# many independent download scripts found in public code search.
_META_NOTE = (
    "Meta publishes no hash; SHA-256 as recorded in micro-sam's former registry "
    "(micro_sam/util.py, 2023) and agreed by independent download scripts"
)
_SAM = [
    ModelInfo(
        name="vit_b",
        model_type="vit_b",
        url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        filename="sam_vit_b_01ec64.pth",
        size_bytes=375_042_383,
        sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        hash_note=_META_NOTE,
        description="Segment Anything, ViT-B image encoder (natural images)",
        source=_META,
        licence="Apache-2.0",
    ),
    ModelInfo(
        name="vit_l",
        model_type="vit_l",
        url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        filename="sam_vit_l_0b3195.pth",
        size_bytes=1_249_524_607,
        sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        hash_note=_META_NOTE,
        description="Segment Anything, ViT-L image encoder (natural images)",
        source=_META,
        licence="Apache-2.0",
    ),
    ModelInfo(
        name="vit_h",
        model_type="vit_h",
        url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
        filename="sam_vit_h_4b8939.pth",
        size_bytes=2_564_550_879,
        sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        hash_note=_META_NOTE,
        description="Segment Anything, ViT-H image encoder (natural images)",
        source=_META,
        licence="Apache-2.0",
    ),
    # URL: the weights/ folder that the README of ChaoningZhang/MobileSAM loads from.
    # MobileSAM publishes no hash. The SHA-256 is the one micro-sam's former registry
    # (micro_sam/util.py, 2023) gave for its mirror of this file; independent projects
    # record the same SHA-256 and 40,728,226 bytes for the GitHub file itself.
    ModelInfo(
        name="vit_t",
        model_type="vit_t",
        url="https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
        filename="mobile_sam.pt",
        size_bytes=40_728_226,
        sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
        hash_note="MobileSAM publishes no hash; SHA-256 as recorded in micro-sam's former registry (2023)",
        description="MobileSAM: TinyViT image encoder distilled from SAM, SAM's prompt encoder and decoder",
        source="MobileSAM (Zhang et al.)",
        licence="Apache-2.0",
    ),
]

# micro-sam's fine-tuned models. Everything below (URLs and xxh128 hashes, for the
# model and for its separate decoder file) is from the models() registry in
# computational-cell-analytics/micro-sam, micro_sam/util.py, release 1.8.10.
# micro-sam publishes xxh128 only (no SHA-256, no sizes) for these files, so checking
# them needs the `xxhash` package. Each model file holds the SAM weights (a plain
# state dict or a micro-sam `model_state` container); the weights of the
# instance-segmentation decoder are a second file (decoder_url). Licence: the
# BioImage.IO uploads are declared CC-BY-4.0 by micro-sam's exporter
# (micro_sam/bioimageio/model_export.py); the files hosted on owncloud state none.
# Not in the current release, so not here: vit_h_lm and vit_h_em_organelles
# (dropped by micro-sam in January 2024).
_MICRO_NOTE = "micro-sam publishes xxh128 only (micro_sam/util.py); checking needs the xxhash package"
_BIOIMAGEIO = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io"
_OWNCLOUD = "https://owncloud.gwdg.de/index.php/s"
# name: (description, url, xxh128, decoder url, decoder xxh128)
_MICRO_SAM_FACTS = {
    "vit_l_lm": (
        "micro-sam light microscopy generalist (cells, nuclei), ViT-L",
        f"{_BIOIMAGEIO}/idealistic-rat/1.2/files/vit_l.pt", "017f20677997d628426dec80a8018f9d",
        f"{_BIOIMAGEIO}/idealistic-rat/1.2/files/vit_l_decoder.pt", "2faeafa03819dfe03e7c46a44aaac64a"),
    "vit_b_lm": (
        "micro-sam light microscopy generalist (cells, nuclei), ViT-B",
        f"{_BIOIMAGEIO}/diplomatic-bug/1.2/files/vit_b.pt", "fe9252a29f3f4ea53c15a06de471e186",
        f"{_BIOIMAGEIO}/diplomatic-bug/1.2/files/vit_b_decoder.pt", "708b15ac620e235f90bb38612c4929ba"),
    "vit_t_lm": (
        "micro-sam light microscopy generalist (cells, nuclei), MobileSAM ViT-T",
        f"{_BIOIMAGEIO}/faithful-chicken/1.1/files/vit_t.pt", "72ec5074774761a6e5c05a08942f981e",
        f"{_BIOIMAGEIO}/faithful-chicken/1.1/files/vit_t_decoder.pt", "3e914a5f397b0312cdd36813031f8823"),
    "vit_l_em_organelles": (
        "micro-sam electron microscopy organelles (mitochondria, nuclei), ViT-L",
        f"{_BIOIMAGEIO}/humorous-crab/1.2/files/vit_l.pt", "810b084b6e51acdbf760a993d8619f2d",
        f"{_BIOIMAGEIO}/humorous-crab/1.2/files/vit_l_decoder.pt", "334877640bfdaaabce533e3252a17294"),
    "vit_b_em_organelles": (
        "micro-sam electron microscopy organelles (mitochondria, nuclei), ViT-B",
        f"{_BIOIMAGEIO}/noisy-ox/1.2/files/vit_b.pt", "f3bf2ed83d691456bae2c3f9a05fb438",
        f"{_BIOIMAGEIO}/noisy-ox/1.2/files/vit_b_decoder.pt", "bb6398956a6b0132c26b631c14f95ce2"),
    "vit_t_em_organelles": (
        "micro-sam electron microscopy organelles (mitochondria, nuclei), MobileSAM ViT-T",
        f"{_BIOIMAGEIO}/greedy-whale/1/files/vit_t.pt", "253474720c497cce605e57c9b1d18fd9",
        f"{_BIOIMAGEIO}/greedy-whale/1/files/vit_t_decoder.pt", "8f897c7bb93174a4d1638827c4dd6f44"),
    "vit_b_histopathology": (
        "PathoSAM (via micro-sam): nuclei in histopathology (H&E), ViT-B",
        f"{_OWNCLOUD}/sBB4H8CTmIoBZsQ/download", "ffd1a2cd84570458b257bd95fdd8f974",
        f"{_OWNCLOUD}/KO9AWqynI7SFOBj/download", "6a66194dcb6e36199cbee2214ecf7213"),
    "vit_l_histopathology": (
        "PathoSAM (via micro-sam): nuclei in histopathology (H&E), ViT-L",
        f"{_OWNCLOUD}/IZgnn1cpBq2PHod/download", "b591833c89754271023e901281dee3f2",
        f"{_OWNCLOUD}/oIs6VSmkOp7XrKF/download", "46aab7765d4400e039772d5a50b55c04"),
    "vit_h_histopathology": (
        "PathoSAM (via micro-sam): nuclei in histopathology (H&E), ViT-H",
        f"{_OWNCLOUD}/L7AcvVz7DoWJ2RZ/download", "bd1856dafc156a43fb3aa705f1a6e92e",
        f"{_OWNCLOUD}/1qAKxy5H0jgwZvM/download", "3ed9f87e46ad5e16935bd8d722c8dc47"),
    "vit_b_medical_imaging": (
        "MedicoSAM (via micro-sam): medical imaging (CT, MRI, X-ray, ultrasound), ViT-B",
        f"{_OWNCLOUD}/f5Ol4FrjPQWfjUF/download", "40169f1e3c03a4b67bff58249c176d92",
        f"{_OWNCLOUD}/ahd3ZhZl2e0RIwz/download", "9e498b12f526f119b96c88be76e3b2ed"),
}


def _micro_sam_entry(name: str, facts: tuple[str, str, str, str, str]) -> ModelInfo:
    description, url, xxh, decoder_url, decoder_xxh = facts
    return ModelInfo(
        name=name,
        model_type=name[:5],
        url=url,
        filename=f"{name}.pt",  # their own names (vit_b.pt, download) are not unique
        alt_hash=f"xxh128:{xxh}",
        hash_note=_MICRO_NOTE,
        description=description,
        source="micro-sam (Archit et al.)",
        licence="CC-BY-4.0" if url.startswith(_BIOIMAGEIO) else "not stated by the host",
        decoder_url=decoder_url,
        decoder_hash=f"xxh128:{decoder_xxh}",
    )


# SAM 2.1 (image path only; see samkit.models.sam2). URLs: checkpoints/download_ckpts.sh of
# facebookresearch/sam2 (the "SAM 2.1 checkpoints" block, base URL .../segment_anything_2/092824).
# Meta publishes no hash. The SHA-256 values are those of micro-sam's SAM 2 registry
# (computational-cell-analytics/micro-sam, micro_sam/v2/util.py, HASHES["sam2.1"], checked
# with pooch), and the same hashes and byte sizes are recorded by many independent download
# scripts found in public code search.
_SAM2_NOTE = (
    "Meta publishes no hash; SHA-256 as in micro-sam's SAM 2 registry (micro_sam/v2/util.py) "
    "and agreed by independent download scripts"
)
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"
# name: (description, size in bytes, sha256)
_SAM2_FACTS = {
    "sam2.1_hiera_tiny": ("SAM 2.1, Hiera-T image encoder (natural images; image path)", 156_008_466,
                          "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
    "sam2.1_hiera_small": ("SAM 2.1, Hiera-S image encoder (natural images; image path)", 184_416_285,
                           "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
    "sam2.1_hiera_base_plus": ("SAM 2.1, Hiera-B+ image encoder (natural images; image path)", 323_606_802,
                               "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
    "sam2.1_hiera_large": ("SAM 2.1, Hiera-L image encoder (natural images; image path)", 898_083_611,
                           "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
}
_SAM2 = [
    ModelInfo(
        name=name,
        model_type=name,
        url=f"{_SAM2_URL}/{name}.pt",
        filename=f"{name}.pt",
        size_bytes=size,
        sha256=sha256,
        hash_note=_SAM2_NOTE,
        description=description,
        source="Meta AI (sam2)",
        licence="Apache-2.0",
    )
    for name, (description, size, sha256) in _SAM2_FACTS.items()
]

#: Registry name -> :class:`ModelInfo`, built-in entries first, in listing order.
MODELS: dict[str, ModelInfo] = {info.name: info for info in _SAM + _SAM2}
MODELS.update({name: _micro_sam_entry(name, facts) for name, facts in _MICRO_SAM_FACTS.items()})


def list_models() -> list[str]:
    """The names of all registered models, built-in ones first.

    Returns
    -------
    list of str
        Names accepted by :func:`samkit.load_model` and :func:`get_model_info`.

    Examples
    --------
    >>> from samkit.models.registry import list_models
    >>> "vit_b" in list_models()
    True
    """
    return list(MODELS)


def get_model_info(name: str) -> ModelInfo:
    """The registry entry called ``name``.

    Parameters
    ----------
    name : str
        A registry name, e.g. ``'vit_b_lm'``.

    Returns
    -------
    ModelInfo

    Raises
    ------
    UnknownModelError
        If no model has that name; the message lists the known names.

    Examples
    --------
    >>> from samkit.models.registry import get_model_info
    >>> get_model_info("vit_t").filename
    'mobile_sam.pt'
    """
    try:
        return MODELS[name]
    except (KeyError, TypeError):
        raise UnknownModelError(
            f"no model called {name!r}; known models: {', '.join(MODELS)}. "
            "Add your own with samkit.models.registry.register(ModelInfo(...))."
        ) from None


def register(info: ModelInfo, *, overwrite: bool = False) -> ModelInfo:
    """Add a checkpoint of your own (e.g. a fine-tuned model) to the registry.

    Afterwards ``samkit.load_model(info.name)`` downloads it once, checks it
    against ``info``'s hash (or size) and builds the model.

    Parameters
    ----------
    info : ModelInfo
        The entry; give ``sha256=`` (``sha256sum file.pth`` prints it).
    overwrite : bool
        Replace an existing entry of the same name instead of refusing.

    Returns
    -------
    ModelInfo
        ``info``, now registered.

    Raises
    ------
    TypeError
        If ``info`` is not a :class:`ModelInfo`.
    ValueError
        If the name is taken (and ``overwrite`` is False) or another entry
        already uses the same cache file name.

    Examples
    --------
    >>> from samkit.models.registry import ModelInfo, register
    >>> info = register(ModelInfo(name="my_vit_b_cells", model_type="vit_b",
    ...     url="https://example.org/models/my_vit_b_cells.pth", sha256="0" * 64))
    >>> info.filename
    'my_vit_b_cells.pth'
    >>> from samkit.models.registry import MODELS
    >>> del MODELS["my_vit_b_cells"]  # tidy up after the example
    """
    if not isinstance(info, ModelInfo):
        raise TypeError(f"register() takes a ModelInfo, not {type(info).__name__}")
    if info.name in MODELS and not overwrite:
        raise InvalidSettingError(f"a model called {info.name!r} is already registered; pass overwrite=True to replace it")
    clash = next((o.name for o in MODELS.values() if o.filename == info.filename and o.name != info.name), None)
    if clash is not None:
        raise InvalidSettingError(
            f"{info.name}: filename {info.filename!r} is already used by {clash!r}; give a different filename="
        )
    MODELS[info.name] = info
    return info
