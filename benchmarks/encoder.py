"""Encoder speed and memory: samkit vs the reference, same random weights, one run.

    python benchmarks/encoder.py                 # vit_b: fp32 + bf16, then vit_t fp32
    python benchmarks/encoder.py --models vit_b --threads 2 --repeats 5

Times one 1024 x 1024 window (median of --repeats after one warm-up), each
model at torch.set_num_threads(--threads). Peak memory is the peak RSS of a
fresh process that builds the model and embeds once. Prints a table and one
JSON line. bf16 agreement: masks from bf16 vs fp32 embeddings (same clicks on
real nuclei) must overlap with IoU >= 0.99.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _reference import rel_error, twin_models  # noqa: E402

import samkit  # noqa: E402
from samkit.demo import click_points  # noqa: E402


def image_1024() -> np.ndarray:
    """A real 1024 x 1024 window: the sample nuclei image tiled (uint8 RGB)."""
    image, _ = samkit.data.nuclei()
    return np.tile(image, (2, 2, 1))[:1024, :1024]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def reference_embed(ref, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.inference_mode():
        if bf16:  # the encoder only: predicting under autocast fails in the reference
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return ref.image_encoder(ref.preprocess(x)).float()
        return ref.image_encoder(ref.preprocess(x))


def mask_iou_bf16_vs_fp32(model, image: np.ndarray) -> float:
    """Mean IoU of best masks from bf16 and fp32 embeddings, one click per real nucleus."""
    _, truth = samkit.data.nuclei()
    clicks = click_points(truth)[:10]
    masks = {}
    for precision in ("fp32", "bf16"):
        model.precision = precision
        predictor = samkit.Predictor(model)
        predictor.set_image(image[: truth.shape[0], : truth.shape[1]])
        masks[precision] = [predictor.predict(points=[c], labels=[1], multimask=False).masks[0] for c in clicks]
    model.precision = "fp32"
    ious = [(a & b).sum() / max((a | b).sum(), 1) for a, b in zip(masks["fp32"], masks["bf16"])]
    return float(np.mean(ious))


def peak_memory_gb(impl: str, model_type: str, precision: str, threads: int) -> float:
    """Peak RSS (GB) of a fresh process that builds the model and embeds one window."""
    cmd = [sys.executable, __file__, "--peak-memory", impl, model_type, precision, "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def _peak_memory_child(impl: str, model_type: str, precision: str) -> None:
    torch.manual_seed(0)
    x = torch.from_numpy(image_1024()).permute(2, 0, 1)[None].float()
    if impl == "reference":
        from _reference import import_segment_anything

        if model_type == "vit_t":
            from reference_mobilesam import import_mobile_sam

            ref = import_mobile_sam().build_sam_vit_t().eval()
        else:
            ref = import_segment_anything().sam_model_registry[model_type]().eval()
        reference_embed(ref, x, precision == "bf16")
    else:
        model = samkit.models.build_sam(model_type)
        model.precision = precision
        model.embed(x)
    print(_peak_rss_gb())


def _peak_rss_gb() -> float:
    # VmHWM starts afresh with each new program (ru_maxrss would keep the parent's peak across exec)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1e6  # kB -> GB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def benchmark(model_type: str, precisions, repeats: int, threads: int, memory: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        ref, ours = twin_models(model_type, Path(tmp))
    image = image_1024()
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    rows = []
    ref_fp32_s = None
    for precision in precisions:
        bf16 = precision == "bf16"
        ref_s = timed(lambda: reference_embed(ref, x, bf16), repeats)
        ours.precision = precision
        ours_s = timed(lambda: ours.embed(x), repeats)
        ref_fp32_s = ref_fp32_s or ref_s
        row = {
            "model": model_type,
            "precision": precision,
            "reference_s": round(ref_s, 3),
            "samkit_s": round(ours_s, 3),
            "speedup_vs_reference_same_precision": round(ref_s / ours_s, 2),
            "speedup_vs_reference_fp32": round(ref_fp32_s / ours_s, 2),
            "embedding_rel_error_vs_reference_fp32": float(f"{rel_error(ours.embed(x), reference_embed(ref, x, False)):.2e}"),
        }
        ours.precision = "fp32"
        if bf16:
            row["mask_iou_bf16_vs_fp32"] = round(mask_iou_bf16_vs_fp32(ours, image), 4)
        if memory:
            row["reference_peak_gb"] = round(peak_memory_gb("reference", model_type, precision, threads), 2)
            row["samkit_peak_gb"] = round(peak_memory_gb("samkit", model_type, precision, threads), 2)
        rows.append(row)
        print(_format(row), flush=True)
    return rows


def _format(row: dict) -> str:
    text = (
        f"{row['model']:6s} {row['precision']:5s} reference {row['reference_s']:7.2f} s   samkit {row['samkit_s']:7.2f} s   "
        f"x{row['speedup_vs_reference_same_precision']:.2f} same precision, x{row['speedup_vs_reference_fp32']:.2f} vs reference fp32   "
        f"rel.err {row['embedding_rel_error_vs_reference_fp32']:.1e}"
    )
    if "mask_iou_bf16_vs_fp32" in row:
        text += f"   mask IoU bf16/fp32 {row['mask_iou_bf16_vs_fp32']:.4f}"
    if "samkit_peak_gb" in row:
        text += f"   peak RSS reference {row['reference_peak_gb']:.2f} GB, samkit {row['samkit_peak_gb']:.2f} GB"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["vit_b", "vit_t"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--peak-memory", nargs=3, metavar=("IMPL", "MODEL", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_memory:
        _peak_memory_child(*args.peak_memory)
        return
    print(f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}")
    rows = []
    for model_type in args.models:
        precisions = ("fp32", "bf16") if model_type != "vit_t" else ("fp32",)
        rows += benchmark(model_type, precisions, args.repeats, args.threads, not args.no_memory)
    print(json.dumps({"benchmark": "encoder", "threads": args.threads, "results": rows}))


if __name__ == "__main__":
    main()
