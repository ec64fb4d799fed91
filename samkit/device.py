"""Device and precision policy: which accelerator and which float type to run on."""

from __future__ import annotations

import torch

from .errors import InvalidSettingError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return the torch device to run on.

    ``"auto"`` picks CUDA, then Apple MPS, then the CPU. Anything else is passed
    to :class:`torch.device` and checked for availability.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidSettingError(f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'mps'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidSettingError(f"device={device!r} was asked for but CUDA is not available; use device='auto'")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidSettingError(f"device={device!r} was asked for but MPS is not available; use device='auto'")
    return resolved


def resolve_precision(precision: str, device: torch.device) -> str:
    """Return ``"fp32"``, ``"bf16"`` or ``"fp16"`` for ``precision`` on ``device``.

    ``"auto"`` means bf16 on CUDA GPUs that support it (fp16 on older ones) and
    fp32 on CPU and MPS. An explicit choice is honoured (bf16 on CPU is fast on
    processors with AVX512-BF16 or AMX) except fp16 on the CPU, which torch
    runs slowly and inaccurately.
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp32"
    if precision not in PRECISIONS:
        raise InvalidSettingError(f"precision={precision!r} is unknown; use 'auto' or one of {sorted(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise InvalidSettingError("precision='fp16' is not supported on the CPU; use 'bf16' or 'fp32'")
    return precision
