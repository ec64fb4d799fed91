"""SAM 2.1 speed and memory: samkit vs the reference ``sam2`` 1.1.0, same random weights, one run.

    python benchmarks/sam2.py                       # Hiera-T and B+, 2 threads
    python benchmarks/sam2.py --models sam2.1_hiera_tiny --repeats 3 --clicks 30

Per model: seconds to embed one real 1024 x 1024 image (``set_image``, median
of --repeats after a warm-up; ours and the reference in turns, so that a busy
machine slows both alike), milliseconds per click (p50 over --clicks
one-point prompts on real nuclei: our ``predict_best`` vs the reference
``predict``, which returns all three masks at full size), and the peak memory
(VmHWM of /proc/self/status) of a fresh process that loads the model and
embeds once. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

# this file's folder first on sys.path would make `import sam2` import this script: the reference comes first
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "tests")]
from reference_sam2 import CONFIGS, build_reference, import_sam2, save_official_layout  # noqa: E402

import samkit  # noqa: E402
from samkit.demo import click_points  # noqa: E402


def image_1024() -> np.ndarray:
    """A real 1024 x 1024 image: the sample nuclei image tiled (uint8 RGB)."""
    image, _ = samkit.data.nuclei()
    return np.tile(image, (2, 2, 1))[:1024, :1024]


def clicks(count: int) -> np.ndarray:
    """(count, 2) (y, x) clicks inside real nuclei of :func:`image_1024`."""
    _, truth = samkit.data.nuclei()
    points = np.asarray(click_points(truth))
    return np.resize(points, (count, 2))


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds of each of ``fns`` (after one warm-up each), run in turns so that a busy
    machine slows all of them alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def load(impl: str, model_type: str, path: Path):
    """A predictor of ``impl`` ('samkit' or 'sam2') on the checkpoint at ``path``."""
    if impl == "samkit":
        return samkit.Predictor(samkit.load_model(path, device="cpu", precision="fp32"))
    sam2 = import_sam2()
    model = sam2.build_sam.build_sam2(CONFIGS[model_type], ckpt_path=str(path), device="cpu")
    return sam2.sam2_image_predictor.SAM2ImagePredictor(model)


def peak_memory(impl: str, model_type: str, path: Path, threads: int) -> float:
    """Peak RSS (GB) of a fresh process that loads the model and embeds one image."""
    cmd = [sys.executable, __file__, "--peak-memory", impl, model_type, str(path), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def measure(model_type: str, folder: Path, args) -> dict:
    ref = build_reference(model_type, seed=0)
    path = folder / f"{model_type}.pt"
    save_official_layout(ref, path)
    image, points = image_1024(), clicks(args.clicks)
    predictors = {impl: load(impl, model_type, path) for impl in ("samkit", "sam2")}
    embeds = {impl: (lambda p=p: p.set_image(image)) for impl, p in predictors.items()}
    row = {"model": model_type}
    for impl, seconds in interleaved(embeds, args.repeats).items():
        row[f"{impl}_embed_s"] = seconds
    ours, ref = predictors["samkit"], predictors["sam2"]
    click_times = {"samkit": [], "sam2": []}
    for p in points:
        clicks_now = {
            "samkit": lambda: ours.predict_best(points=[p], labels=[1]),
            "sam2": lambda: ref.predict(p[None, ::-1].astype(float), np.array([1])),
        }
        for impl, seconds in interleaved(clicks_now, 1).items():
            click_times[impl].append(seconds)
    for impl in ("samkit", "sam2"):
        row[f"{impl}_click_ms"] = 1000 * statistics.median(click_times[impl])
    del predictors, ours, ref
    for impl in ("samkit", "sam2"):
        row[f"{impl}_peak_gb"] = peak_memory(impl, model_type, path, args.threads)
    row["embed_speedup"] = row["sam2_embed_s"] / row["samkit_embed_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sam2.1_hiera_tiny", "sam2.1_hiera_base_plus"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--peak-memory", nargs=3, metavar=("IMPL", "MODEL", "PATH"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_memory:  # child process: load, embed once, report
        impl, model_type, path = args.peak_memory
        load(impl, model_type, Path(path)).set_image(image_1024())
        print(peak_rss_gb())
        return
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(m, Path(folder), args) for m in args.models]
    print(f"threads={args.threads}, torch {torch.__version__}, fp32, CPU")
    print(f"{'model':24} {'embed s (ours/ref)':>20} {'speedup':>8} {'click p50 ms (ours/ref)':>24} {'peak GB (ours/ref)':>20}")
    for r in rows:
        print(
            f"{r['model']:24} {r['samkit_embed_s']:9.2f}/{r['sam2_embed_s']:<9.2f} {r['embed_speedup']:8.2f} "
            f"{r['samkit_click_ms']:11.1f}/{r['sam2_click_ms']:<11.1f} {r['samkit_peak_gb']:9.2f}/{r['sam2_peak_gb']:<9.2f}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
