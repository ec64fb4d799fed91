"""``segment_all``: throughput with a real-size SAM, Dask scaling, and memory on a 1-Gpixel image.

    python benchmarks/automatic.py                       # all three parts
    python benchmarks/automatic.py --parts memory --side 8192
    python benchmarks/automatic.py --parts sam,dask --model vit_t

1. ``sam``: a ``--sam-side`` square mosaic of real DSB2018 images, 1024 px
   windows (halo 128), SAM ``--model`` with random weights and a fixed
   prompt count (``--points`` per side). SAM's encoder and batched point
   decoder run on every window (their cost is timed), the masks that go on
   are the ground-truth nuclei under the points (random weights give blobs;
   see ``_models.SamDecoderOracle``). Embedding (``samkit.automatic.embed``)
   and generation + stitching (``segment_all`` on the cached embeddings) are
   timed apart: windows/s, prompts/s and objects/s.
2. ``dask``: the same run (embedding included) on a ``LocalCluster`` with 1
   and with 2 single-threaded worker processes; each worker builds the model
   once. Results must be identical.
3. ``memory``: a ``--side`` square (default 32768: 1.07 Gpixel) wallpaper of
   the real mosaic, read lazily, segmented by the ground-truth oracle (SAM's
   point grid, 32 x 32 prompts per window, one mask per point) into a label
   image on disk; peak RSS (VmHWM) of the process.

Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _data import Repeated, dsb_mosaic  # noqa: E402
from _models import SamDecoderOracle  # noqa: E402

from samkit.automatic import embed, segment_all  # noqa: E402
from samkit.engine import TileGrid  # noqa: E402
from samkit.testing import OracleModel  # noqa: E402

WINDOW = dict(tile_size=1024, halo=128)


def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def random_sam(model_type: str, threads: int):
    """SAM with fixed random weights (built once per process: also the Dask workers' model)."""
    from samkit.models.sam import build_sam

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    return build_sam(model_type)


class SamPointOracle(SamDecoderOracle):
    """SAM's encoder and batched point decoder run (and are timed); the masks are the ground-truth objects."""

    def point_decoder(self, embedding, window):
        sam_decode = self.sam.point_decoder(embedding, window)
        truth = self.oracle.label_window(np.zeros((window[2] - window[0], window[3] - window[1], 3), np.uint8), window)
        oracle_decode = self.oracle.point_decoder(truth, window)

        def decode(points, **options):
            sam_decode(points, **options)
            return oracle_decode(points, **options)

        return decode


def sam_part(args, results: dict) -> None:
    image, truth = dsb_mosaic((args.sam_side, args.sam_side))
    model = SamPointOracle(random_sam(args.model, args.threads), truth)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        windows = embed(image, model, cache=cache, **WINDOW)
        embed_s = time.perf_counter() - started
        started = time.perf_counter()
        labels = segment_all(image, model, cache=cache, points_per_side=args.points, **WINDOW)
        generate_s = time.perf_counter() - started
    objects = len(labels.objects)
    results["sam"] = dict(
        model=args.model, side=args.sam_side, windows=windows, prompts_per_window=args.points**2, objects=objects,
        embed_s_per_window=round(embed_s / windows, 2), generate_s_per_window=round(generate_s / windows, 2),
        windows_per_s=round(windows / (embed_s + generate_s), 3),
        prompts_per_s=round(windows * args.points**2 / generate_s, 1),
        objects_per_s=round(objects / (embed_s + generate_s), 2),
    )  # fmt: skip


def dask_part(args, results: dict) -> None:
    from dask.distributed import Client, LocalCluster

    image = dsb_mosaic((args.sam_side, args.sam_side))[0]
    model = functools.partial(random_sam, args.model, 1)  # one thread per worker: 2 workers fill 2 cores
    options = dict(points_per_side=args.points, pred_iou_thresh=0.0, stability_score_thresh=0.0, **WINDOW)
    times, outputs = {}, []
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            with Client(cluster) as client:
                client.wait_for_workers(workers)
                started = time.perf_counter()
                outputs.append(np.asarray(segment_all(image, model, client=client, **options)))
                times[workers] = time.perf_counter() - started
    windows = len(TileGrid((args.sam_side, args.sam_side), **WINDOW))
    results["dask"] = dict(
        model=args.model, windows=windows, one_worker_s=round(times[1], 1), two_workers_s=round(times[2], 1),
        speedup=round(times[1] / times[2], 2), identical=bool(np.array_equal(outputs[0], outputs[1])),
    )  # fmt: skip


def memory_part(args, results: dict) -> None:
    base_image, base_labels = dsb_mosaic((4096, 4096))
    shape = (args.side, args.side)
    image, truth = Repeated(base_image, shape), Repeated(base_labels, shape)
    seen = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        labels = segment_all(image, OracleModel(truth), points_per_side=32, out=Path(tmp) / "labels", workdir=tmp,
                             progress=lambda done, total, eta: seen.append(time.perf_counter()), **WINDOW)  # fmt: skip
        total_s = time.perf_counter() - started
        generate_s = seen[-1] - started
    results["memory"] = dict(
        side=args.side, gpixel=round(args.side**2 / 1e9, 2), windows=len(seen), objects=len(labels.objects),
        generate_windows_per_s=round(len(seen) / generate_s, 2), total_s=round(total_s, 1),
        objects_per_s=round(len(labels.objects) / total_s, 1), peak_rss_gb=round(peak_rss_gb(), 2),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="sam,dask,memory")
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--sam-side", type=int, default=2048)
    parser.add_argument("--points", type=int, default=8, help="prompts per side of each window (fixed count)")
    parser.add_argument("--side", type=int, default=32768)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results = {"benchmark": "automatic"}
    parts = args.parts.split(",")
    for name, part in (("memory", memory_part), ("sam", sam_part), ("dask", dask_part)):  # memory first: clean VmHWM
        if name in parts:
            part(args, results)
    if "sam" in results:
        r = results["sam"]
        print(f"SAM {r['model']} (random weights), {r['side']}^2 mosaic, {r['windows']} windows of 1024, "
              f"{r['prompts_per_window']} prompts each, {r['objects']} objects")  # fmt: skip
        print(f"  embed {r['embed_s_per_window']} s/window, generate+stitch {r['generate_s_per_window']} s/window, "
              f"{r['windows_per_s']} windows/s, {r['prompts_per_s']} prompts/s, {r['objects_per_s']} objects/s")  # fmt: skip
    if "dask" in results:
        r = results["dask"]
        print(f"Dask LocalCluster, {r['model']}: 1 worker {r['one_worker_s']} s, 2 workers {r['two_workers_s']} s "
              f"(x{r['speedup']}), identical: {r['identical']}")  # fmt: skip
    if "memory" in results:
        r = results["memory"]
        print(f"{r['side']}^2 ({r['gpixel']} Gpixel) oracle run: {r['windows']} windows, {r['objects']} objects, "
              f"{r['generate_windows_per_s']} windows/s, {r['total_s']} s in all, peak RSS {r['peak_rss_gb']} GB")  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()
