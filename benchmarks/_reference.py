"""Shared by the benchmarks: the reference implementations and random-weight twins."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from reference import import_segment_anything, randomize_, rel_error  # noqa: E402

import samkit  # noqa: E402


def twin_models(model_type: str, folder: Path, seed: int = 0):
    """(reference model, samkit model) with identical random weights, ours loaded from the saved file."""
    torch.manual_seed(seed)
    if model_type == "vit_t":
        from reference_mobilesam import import_mobile_sam, randomize_tinyvit_

        ref = randomize_tinyvit_(import_mobile_sam().build_sam_vit_t(), seed)
    else:
        ref = randomize_(import_segment_anything().sam_model_registry[model_type](), seed)
    path = folder / f"{model_type}_random.pth"
    torch.save(ref.state_dict(), path)
    return ref, samkit.load_model(path, device="cpu", precision="fp32")


__all__ = ["import_segment_anything", "rel_error", "twin_models"]
