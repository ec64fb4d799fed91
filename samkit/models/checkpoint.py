"""Reading checkpoint files and putting their weights into a model.

Layouts understood:

* Meta's SAM files (``sam_vit_b_01ec64.pth`` ...): a plain state dict with
  ``image_encoder.*``, ``prompt_encoder.*`` and ``mask_decoder.*`` keys.
* MobileSAM's ``mobile_sam.pt``: the same, with a TinyViT ``image_encoder``.
* Meta's SAM 2.1 files (``sam2.1_hiera_*.pt``): ``{"model": state dict}``
  with ``image_encoder.trunk.*`` keys (built by :mod:`samkit.models.sam2`).
* micro-sam's model files: a dict with ``model_state`` (keys possibly
  prefixed ``sam.`` or ``module.sam.``) and, for models with an instance
  segmentation decoder, ``decoder_state``, which is kept for later use.

Files are read with ``torch.load(..., weights_only=True)``: no code in a
checkpoint ever runs.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from .sam import MODEL_TYPES, Sam

_PREFIXES = ("module.", "sam.")
# A key present in one encoder family only, and the ViT width -> model type.
_TINYVIT_KEY = "image_encoder.patch_embed.seq.0.c.weight"
_VIT_KEY = "image_encoder.patch_embed.proj.weight"
_VIT_WIDTHS = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read ``path`` and return (SAM state dict, extras such as micro-sam's ``decoder_state``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=_is_zip(path))
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path.name} holds Python objects besides weights; samkit only loads weights "
            f"(torch.load(weights_only=True)). Re-save just the model's state_dict. ({exc})"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, IndexError, KeyError, TypeError) as exc:
        # garbage bytes reach torch's unpickler, which fails in many ways (e.g. IndexError: pop from empty list)
        raise CheckpointError(
            f"{path.name} is not a readable PyTorch checkpoint (truncated or corrupt download?): {exc}"
        ) from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    extras = {}
    if isinstance(obj.get("model"), dict):  # SAM 2's official container: {"model": state dict}
        obj = obj["model"]
    if "model_state" in obj:  # micro-sam container
        extras = {k: v for k, v in obj.items() if k != "model_state"}
        obj = obj["model_state"]
        if not isinstance(obj, dict):
            kind = type(obj).__name__
            raise CheckpointError(f"{path.name}: its 'model_state' holds a {kind}, not a state dict (a damaged file?)")
    state = {_strip_prefixes(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{path.name} contains no weight tensors")
    return state, extras


def _is_zip(path: Path) -> bool:
    # mmap saves memory for the (modern) zip format; legacy files are read whole
    return zipfile.is_zipfile(path)


def _strip_prefixes(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def detect_model_type(state: dict[str, torch.Tensor], name: str = "checkpoint") -> str:
    """The model type ('vit_b', 'vit_l', 'vit_h', 'vit_t') whose layout ``state`` has."""
    if _TINYVIT_KEY in state:
        return "vit_t"
    if _VIT_KEY in state:
        width = state[_VIT_KEY].shape[0]
        if width in _VIT_WIDTHS:
            return _VIT_WIDTHS[width]
        raise CheckpointError(f"{name}: ViT width {width} at {_VIT_KEY!r} matches no SAM model {MODEL_TYPES}")
    first = next(iter(state))
    raise CheckpointError(
        f"{name} does not look like a SAM checkpoint: no {_VIT_KEY!r} or {_TINYVIT_KEY!r} "
        f"(first key: {first!r}); known model types: {MODEL_TYPES}"
    )


def _finite(tensor: torch.Tensor) -> bool:
    """Whether a CPU tensor holds no NaN or inf (numpy's check: ~20x faster than torch's on CPU)."""
    if not tensor.is_floating_point():
        return True
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: NaN and inf have all 8 exponent bits set
        exponent = tensor.detach().view(torch.int16).numpy() & 0x7F80
        return not (exponent == 0x7F80).any()
    return bool(np.isfinite(tensor.detach().numpy()).all())


def load_weights(model: Sam, state: dict[str, torch.Tensor], name: str = "checkpoint") -> None:
    """Copy ``state`` into ``model``; the first key or shape that differs is an error."""
    expected = model.state_dict()
    problem = None
    for key, tensor in expected.items():
        if key not in state:
            problem = f"key {key!r} is missing"
        elif state[key].shape != tensor.shape:
            problem = f"key {key!r} has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
        if problem:
            break
    else:
        extra = next((k for k in state if k not in expected), None)
        if extra is not None:
            problem = f"key {extra!r} is not part of the model"
    if problem:
        raise CheckpointError(
            f"{name} does not match a SAM {model.model_type!r} model: {problem}. "
            f"Known model types: {MODEL_TYPES}; pass model_type= if the file is for another one."
        )
    check_finite(state, expected, name)
    model.load_state_dict(state, strict=True)


def check_finite(state: dict[str, torch.Tensor], keys, name: str = "checkpoint") -> None:
    """CheckpointError naming the first of ``keys`` whose weights hold NaN or inf."""
    bad = next((k for k in keys if not _finite(state[k])), None)
    if bad is not None:  # such weights give empty masks with finite scores, silently
        raise CheckpointError(
            f"{name}: weight {bad!r} holds NaN or infinite values (a diverged training run or a damaged file); "
            "samkit does not load it. Use the checkpoint of an earlier epoch, or download the file again."
        )
