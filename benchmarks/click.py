"""Click latency on a 20k x 20k image with the tile cached: click -> Mask -> committed.

    python benchmarks/click.py                 # vit_b decoder, CPU fp32, 2 threads, 200 clicks
    python benchmarks/click.py --clicks 500 --threads 4

The image is a 20480 x 20480 mosaic of real DSB2018 nuclei images (read
lazily; nothing of that size is allocated), the label image a zarr-backed
``LabelImage`` of the same size. The clicked window is embedded first
(random vit_b weights: the weights change the masks, not the cost of
decoding); then each click is one ``Session.segment`` + ``LabelImage.commit``.

So that the masks have realistic sizes (random weights give arbitrary
blobs), the timed model runs SAM's decoder on every click and answers with
the ground-truth nucleus under it (``SamDecoderOracle``): the time is SAM's
decoder plus samkit's machinery, the masks are real nuclei. For reference
the same clicks are decoded by ``Predictor.predict_best`` alone on the same
embedding (the decoder's own cost). Prints p50 / p95 / p99 and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _data import Repeated, dsb_mosaic  # noqa: E402
from _models import SamDecoderOracle  # noqa: E402

import samkit  # noqa: E402
from samkit.models.sam import build_sam  # noqa: E402



def percentiles(ms) -> dict:
    return {f"p{q}": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=20480)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from scipy import ndimage

    base_image, base_labels = dsb_mosaic((4096, 4096))
    image, labels = Repeated(base_image, (args.size, args.size)), Repeated(base_labels, (args.size, args.size))

    torch.manual_seed(0)
    sam = build_sam("vit_b").eval()
    session = samkit.Session(image, SamDecoderOracle(sam, labels), halo=128)
    centre = (args.size // 2, args.size // 2)
    index = session.grid.best_window([centre[0]], [centre[1]])
    y0, x0, y1, x1 = session.grid.window(index)
    started = time.perf_counter()
    session.embed(region=(y0 + 512, x0 + 512, y0 + 513, x0 + 513)).result()  # the window centre: this window only
    embed_s = time.perf_counter() - started

    # clicks: the innermost pixel of nuclei lying well inside the embedded window
    window_labels = labels[y0:y1, x0:x1]
    clicks = []
    for i, sl in enumerate(ndimage.find_objects(window_labels), 1):
        if sl is None or min(sl[0].start, sl[1].start) < 130 or max(sl[0].stop, sl[1].stop) > 1024 - 130:
            continue
        depth = ndimage.distance_transform_edt(np.pad(window_labels[sl] == i, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(np.argmax(depth), depth.shape)
        clicks.append((y0 + sl[0].start + y, x0 + sl[1].start + x))
    clicks = [clicks[k % len(clicks)] for k in range(args.clicks)]

    label_image = samkit.LabelImage((args.size, args.size))
    embedding = session.store.get(index)
    predictor = samkit.Predictor(sam)
    predictor.embedding = torch.from_numpy(embedding.astype(np.float32))[None]
    predictor.image_shape = predictor.input_shape = (1024, 1024)

    for y, x in clicks[:5]:  # warm-up
        session.segment(points=[[y, x]], labels=[1])
        predictor.predict_best(points=[[y - y0, x - x0]], labels=[1])
    decoder_ms, segment_ms, commit_ms, total_ms = [], [], [], []
    for y, x in clicks:
        t0 = time.perf_counter()
        predictor.predict_best(points=[[y - y0, x - x0]], labels=[1])
        t1 = time.perf_counter()
        mask = session.segment(points=[[y, x]], labels=[1])
        t2 = time.perf_counter()
        label_image.commit(mask, overwrite=True)
        t3 = time.perf_counter()
        decoder_ms.append(1000 * (t1 - t0))
        segment_ms.append(1000 * (t2 - t1))
        commit_ms.append(1000 * (t3 - t2))
        total_ms.append(1000 * (t3 - t1))

    rows = {
        "decoder alone (Predictor.predict_best)": percentiles(decoder_ms),
        "Session.segment (decoder + tiling)": percentiles(segment_ms),
        "LabelImage.commit": percentiles(commit_ms),
        "click -> Mask -> committed": percentiles(total_ms),
    }
    print(f"{args.size} x {args.size} image, {session.model.name}, {args.clicks} clicks, "
          f"{args.threads} threads, {platform.processor() or platform.machine()}; first window embedded in {embed_s:.1f} s")
    print(f"{'':42} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, row in rows.items():
        print(f"{name:42} {row['p50']:8.2f} {row['p95']:8.2f} {row['p99']:8.2f}")
    print(json.dumps({"benchmark": "click", "size": args.size, "clicks": args.clicks, "threads": args.threads, "embed_s": round(embed_s, 2), **rows}))


if __name__ == "__main__":
    main()
