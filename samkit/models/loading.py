"""``load_model``: a registry name or a checkpoint file -> a ready :class:`Sam`."""

from __future__ import annotations

from pathlib import Path

from ..device import resolve_device, resolve_precision
from ..errors import CheckpointError, UnknownModelError
from .checkpoint import detect_model_type, load_weights, read_checkpoint
from .registry import MODELS
from .weights import fetch_checkpoint
from .sam import MODEL_TYPES, Sam, build_sam
from .sam2 import Sam2, is_sam2, load_sam2


def load_model(
    name_or_path: str | Path,
    *,
    model_type: str | None = None,
    device: str = "auto",
    precision: str = "auto",
) -> Sam | Sam2:
    """Load a SAM-family model from the registry or from a checkpoint file.

    Parameters
    ----------
    name_or_path : str or Path
        A registry name (see :func:`samkit.models.list_models`), downloaded
        and verified on first use, or the path of a checkpoint file: Meta's
        ``sam_vit_*.pth``, MobileSAM's ``mobile_sam.pt``, a micro-sam model, or
        Meta's SAM 2.1 ``sam2.1_hiera_*.pt`` (its image path; see :mod:`samkit.models.sam2`).
    model_type : {'vit_b', 'vit_l', 'vit_h', 'vit_t'} or a SAM 2.1 type, optional
        Normally read from the file; give it to insist on one.
    device : str
        'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:1', 'mps'.
    precision : {'auto', 'fp32', 'bf16', 'fp16'}
        'auto' is bf16 on CUDA GPUs that support it, fp16 on older ones,
        fp32 on CPU and MPS. Outputs are always float32 or bool.

    Returns
    -------
    Sam or Sam2
        In eval mode, knowing its ``model_type``, ``device``, ``precision``
        and ``checkpoint``.
    """
    path, registry_type = _resolve(name_or_path)
    state, extras = read_checkpoint(path)
    dev = resolve_device(device)
    if is_sam2(state):  # SAM 2.1: its own family, size read from the keys
        model = load_sam2(state, path.name, model_type or registry_type)
    else:
        detected = detect_model_type(state, path.name)
        if model_type is None:
            model_type = registry_type or detected
        elif model_type not in MODEL_TYPES:
            raise UnknownModelError(f"model_type={model_type!r} is unknown; expected one of {MODEL_TYPES}")
        model = build_sam(model_type)
        load_weights(model, state, path.name)
    model.checkpoint = path
    model.extras = extras
    model.precision = resolve_precision(precision, dev)
    return model.to(dev)


def _resolve(name_or_path: str | Path) -> tuple[Path, str | None]:
    if isinstance(name_or_path, str) and name_or_path in MODELS:
        return fetch_checkpoint(name_or_path), MODELS[name_or_path].model_type
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path, None
    if isinstance(name_or_path, Path) or path.suffix or "/" in str(name_or_path) or "\\" in str(name_or_path):
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    raise UnknownModelError(
        f"{name_or_path!r} is neither a model name nor a file; known names: {', '.join(MODELS)}"
    )
