"""SAM 2.1 propagation speed: seconds per propagated plane, samkit vs the reference ``SAM2VideoPredictor``.

    python benchmarks/propagation.py                  # Hiera-T, 9 planes, 2 threads
    python benchmarks/propagation.py --planes 12 --repeats 3

The frames are real planes of the StarDist 3D nuclei stack (z = 8 ..);
one click on a nucleus in the first plane is followed to the last. Each
plane's image embedding is computed once beforehand on both sides (timed
separately, in turns: "embed s"), so "track s" is the memory path alone: memory
attention over the plane's memories, the decoder and the memory encoder,
as the engine will run it over cached per-plane embeddings. A plane's cost
grows with its memories (1 prompted + up to 6 tracked): the table gives the
median over all tracked planes and over those with the full memory (plane 7
on). Ours and the reference run in turns, --repeats times (medians), so a
busy machine slows both alike; both use the same random weights (Hiera-T,
fp32, CPU). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage

sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from reference_sam2 import build_reference, build_video_reference, save_official_layout  # noqa: E402

import samkit  # noqa: E402
from samkit.models.sam2 import FrameEmbeddings, Sam2Tracker  # noqa: E402
from samkit.models.sam2.model import NUM_MEMORIES  # noqa: E402

NUCLEUS, FIRST_PLANE = 59, 8  # a nucleus from z = 7 to 16


def stack(planes: int):
    folder = ROOT / "tests" / "data" / "nuclei" / "stardist"
    z = slice(FIRST_PLANE, FIRST_PLANE + planes)
    return tifffile.imread(folder / "img3d.tif")[z], tifffile.imread(folder / "mask3d.tif")[z]


def timed(frames) -> list[float]:
    """Seconds between the items of an iterator (the first one, the prompted plane, dropped)."""
    times, start = [], time.perf_counter()
    for _ in frames:
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planes", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    planes, labels = stack(args.planes)
    inside = ndimage.distance_transform_edt(labels[0] == NUCLEUS)
    click = np.unravel_index(np.argmax(inside), inside.shape)

    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as monkeypatch:
        path = Path(folder) / "sam2.1_hiera_tiny.pt"
        save_official_layout(build_reference("sam2.1_hiera_tiny", seed=0), path)
        ref = build_video_reference(path, monkeypatch)
        ours = samkit.load_model(path, device="cpu", precision="fp32")
        frames = FrameEmbeddings(ours, planes)
        rgb = np.stack([frames.policy.apply(p[..., None]) for p in planes])

        with torch.inference_mode():
            images = ref.init_state(rgb)["images"]  # embeds plane 0 (not timed)
        embeds = {
            "samkit": lambda t: frames[t],
            "sam2": lambda t: ref.forward_image(images[t][None]),  # kept by the stand-in for every later pass
        }
        embed = {impl: [] for impl in embeds}
        for t in range(1, len(frames)):  # each plane once, in turns
            for impl, run in embeds.items():
                start = time.perf_counter()
                with torch.inference_mode():
                    run(t)
                embed[impl].append(time.perf_counter() - start)
        frames[0]

        def samkit_pass():
            tracker = Sam2Tracker(ours, frames)
            tracker.add_prompt(0, points=[click], labels=[1])
            return timed(tracker.propagate())

        def sam2_pass():
            state = ref.init_state(rgb)
            ref.add_new_points_or_box(state, 0, 1, points=np.array([click[::-1]], np.float32), labels=np.array([1], np.int32))
            return timed(ref.propagate_in_video(state))

        passes = {"samkit": samkit_pass, "sam2": sam2_pass}
        per_plane = {impl: [] for impl in passes}
        for _ in range(args.repeats):
            for impl, run in passes.items():
                per_plane[impl].append(run())

    full = NUM_MEMORIES - 1  # tracked planes from this one on have all their memories
    row = {"model": "sam2.1_hiera_tiny", "planes": args.planes, "threads": args.threads, "load": os.getloadavg()[0]}
    for impl, runs in per_plane.items():
        by_plane = np.median(np.array(runs), axis=0)  # (planes - 1,) seconds, plane 1 on
        row[f"{impl}_embed_s"] = statistics.median(embed[impl])
        row[f"{impl}_track_s"] = float(np.median(by_plane))
        row[f"{impl}_track_full_s"] = float(np.median(by_plane[full:])) if len(by_plane) > full else float("nan")
        row[f"{impl}_by_plane_s"] = [round(float(s), 3) for s in by_plane]
    row["track_speedup"] = row["sam2_track_s"] / row["samkit_track_s"]
    print(f"threads={args.threads}, torch {torch.__version__}, fp32, CPU, load average {row['load']:.1f}")
    print(f"{'':10} {'embed s/plane':>14} {'track s/plane':>14} {'track s, full memory':>21}")
    for impl in passes:
        print(f"{impl:10} {row[impl + '_embed_s']:14.2f} {row[impl + '_track_s']:14.2f} {row[impl + '_track_full_s']:21.2f}")
    print(f"track speed-up (ref / ours): {row['track_speedup']:.2f}")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
