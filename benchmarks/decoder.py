"""Click decoding speed: samkit vs the reference, same random weights, embedding cached.

    python benchmarks/decoder.py                   # vit_b, 2 threads, 60 decodes per case
    python benchmarks/decoder.py --threads 1 --decodes 100

One click (a positive point inside a real nucleus) -> masks + scores, the image
embedding computed beforehand. Cases, each timed over --decodes clicks after a
warm-up, interleaved in rounds so that a noisy machine hits all alike:

- reference ``SamPredictor.predict``: 3 masks, all brought to full resolution;
- samkit ``Predictor.predict``: the same results (same API shape);
- samkit ``Predictor.predict_best``: the best of the 3, one full-resolution
  mask (what a click in the UI needs), fp32 and bf16 (products with the image
  tokens in bf16, prompt tokens in fp32; both decode the same fp32 embedding,
  so the table is about the decoder);
- the reference under bf16 autocast, if it runs.

Agreement: IoU of the best mask with the reference's best mask, per click.
Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _reference import import_segment_anything, twin_models  # noqa: E402

import samkit  # noqa: E402

DSB = Path(__file__).resolve().parents[1] / "tests" / "data" / "nuclei" / "dsb2018"
IMAGE_ID = "1879f4f4f05e"  # 512 x 640, 4 large nuclei


def real_image() -> tuple[np.ndarray, np.ndarray, str]:
    """A DSB2018 image (H, W, 3) uint8, its labels and its name; samkit's sample image without tests/data."""
    if (DSB / f"{IMAGE_ID}_img.png").is_file():
        import tifffile
        from PIL import Image

        image = np.asarray(Image.open(DSB / f"{IMAGE_ID}_img.png"))[..., :3]
        return image, tifffile.imread(DSB / f"{IMAGE_ID}_labels.tif"), f"dsb2018/{IMAGE_ID}"
    image, labels = samkit.data.nuclei()
    return image, labels, "samkit.data.nuclei()"


def clicks_inside(labels: np.ndarray, per_object: int, seed: int = 0) -> np.ndarray:
    """(n, 2) (y, x) clicks well inside the objects: up to ``per_object`` each, at least half their depth in."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    clicks = []
    for i in np.unique(labels[labels > 0]):
        depth = ndimage.distance_transform_edt(labels == i)
        deep = np.argwhere(depth >= depth.max() / 2)
        clicks.extend(deep[rng.choice(len(deep), min(per_object, len(deep)), replace=False)])
    return np.array(clicks)[rng.permutation(len(clicks))]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def reference_bf16(ref_predictor, click) -> str | None:
    """None if the reference predicts under bf16 autocast, else why not."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref_predictor.predict(click[None, ::-1].astype(float), np.array([1]))
    except Exception as exc:  # noqa: BLE001 - we report whatever stops it
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--decodes", type=int, default=60, help="timed decodes per case (default 60)")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds the decodes are split into")
    parser.add_argument("--warmup", type=int, default=5, help="untimed decodes per case first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    image, labels, image_name = real_image()
    clicks = clicks_inside(labels, per_object=8)
    with tempfile.TemporaryDirectory() as folder:
        ref, model = twin_models("vit_b", Path(folder), seed=1)
        model_bf16 = samkit.load_model(model.checkpoint, device="cpu", precision="bf16")

    sa = import_segment_anything()
    ref_predictor = sa.SamPredictor(ref)
    start = time.perf_counter()
    ref_predictor.set_image(image)
    ref_embed_s = time.perf_counter() - start
    ours = samkit.Predictor(model)
    start = time.perf_counter()
    ours.set_image(image)
    ours_embed_s = time.perf_counter() - start
    ours_bf16 = samkit.Predictor(model_bf16)
    ours_bf16.embedding = ours.embedding  # the same fp32 embedding: the table is about the decoder
    ours_bf16.image_shape, ours_bf16.input_shape = ours.image_shape, ours.input_shape

    def ref_predict(c):
        return ref_predictor.predict(c[None, ::-1].astype(float), np.array([1]))

    cases = {
        "reference predict, fp32 (3 masks)": ref_predict,
        "samkit predict, fp32 (3 masks)": lambda c: ours.predict(points=[c], labels=[1]),
        "samkit predict_best, fp32": lambda c: ours.predict_best(points=[c], labels=[1]),
        "samkit predict_best, bf16": lambda c: ours_bf16.predict_best(points=[c], labels=[1]),
    }
    bf16_failure = reference_bf16(ref_predictor, clicks[0])
    if bf16_failure is None:
        cases["reference predict, bf16 autocast"] = _autocast(ref_predict)

    # agreement of the best masks, every click
    agree = {"fp32": [], "bf16": []}
    same_choice = {"fp32": 0, "bf16": 0}
    for c in clicks:
        masks, scores, _ = ref_predict(c)
        best = masks[np.argmax(scores)]
        for name, predictor in (("fp32", ours), ("bf16", ours_bf16)):
            mine = predictor.predict_best(points=[c], labels=[1])
            agree[name].append(iou(mine.mask, best))
            same_choice[name] += mine.index == int(np.argmax(scores))

    times = {name: [] for name in cases}
    for name, fn in cases.items():
        for i in range(args.warmup):
            fn(clicks[i % len(clicks)])
    per_round = -(-args.decodes // args.rounds)
    for r in range(args.rounds):
        for name, fn in cases.items():
            for i in range(per_round):
                c = clicks[(r * per_round + i) % len(clicks)]
                start = time.perf_counter()
                fn(c)
                times[name].append(time.perf_counter() - start)

    ref_p50 = float(np.median(times["reference predict, fp32 (3 masks)"]))
    rows = []
    for name, samples in times.items():
        ms = np.array(samples) * 1e3
        rows.append((name, np.percentile(ms, 50), np.percentile(ms, 95), ref_p50 * 1e3 / np.percentile(ms, 50)))
    if bf16_failure is not None:
        rows.append(("reference predict, bf16 autocast", np.nan, np.nan, np.nan))

    print(f"vit_b decoder, 1 point per decode, {image_name} {image.shape[:2]}, {len(clicks)} clicks in "
          f"{len(np.unique(labels)) - 1} nuclei, torch {torch.__version__}, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.1f}")
    print(f"embedding (not timed below): reference {ref_embed_s:.1f} s, samkit {ours_embed_s:.1f} s")
    print(f"{'case':38s} {'p50 ms':>8s} {'p95 ms':>8s} {'x ref':>6s}")
    for name, p50, p95, speedup in rows:
        if np.isnan(p50):
            print(f"{name:38s} {'n/a':>8s} {'n/a':>8s} {'n/a':>6s}  ({bf16_failure})")
        else:
            print(f"{name:38s} {p50:8.1f} {p95:8.1f} {speedup:6.2f}")
    for name in ("fp32", "bf16"):
        print(f"best-mask IoU vs reference, samkit {name}: mean {np.mean(agree[name]):.4f}, "
              f"min {np.min(agree[name]):.4f}; same candidate chosen {same_choice[name]}/{len(clicks)}")
    print(json.dumps({
        "benchmark": "decoder", "model": "vit_b", "threads": args.threads, "image": image_name,
        "clicks": len(clicks), "decodes_per_case": per_round * args.rounds,
        "p50_ms": {name: round(p50, 2) for name, p50, _, _ in rows if not np.isnan(p50)},
        "p95_ms": {name: round(p95, 2) for name, _, p95, _ in rows if not np.isnan(p95)},
        "speedup_vs_reference_p50": {name: round(s, 2) for name, _, _, s in rows if not np.isnan(s)},
        "reference_bf16": "ok" if bf16_failure is None else f"n/a ({bf16_failure})",
        "best_mask_iou_vs_reference": {k: {"mean": round(float(np.mean(v)), 4), "min": round(float(np.min(v)), 4)}
                                       for k, v in agree.items()},
    }))


def _autocast(fn):
    def run(c):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fn(c)

    return run


if __name__ == "__main__":
    main()
