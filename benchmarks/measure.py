"""Object statistics of >= 100k real nuclei: samkit.measure against skimage.measure.regionprops_table.

    python benchmarks/measure.py                    # ~101k objects (8000 x 8200 px), ~1 min
    python benchmarks/measure.py --objects 20000    # quicker

The scene is a mosaic of the four densest DSB2018 images with their ground-truth labels
(``samkit.testing.mosaic``: ids renumbered, unique). Both sides measure the "basic" and
"intensity" groups (centroid, bbox, area, intensity mean/min/max/std/median, integrated)
with an anisotropic spacing, in the same process; the values are checked equal
(integers exactly, floats to 1e-12 relative). samkit (best of ``--repeat`` runs) is also timed on the same labels
in a zarr array (1024 x 1024 chunks), measured block by block. Peak memory is the
peak of Python/numpy allocations during the call (tracemalloc), in a separate run
so that tracing does not slow the timed one. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import tracemalloc
from pathlib import Path

import numpy as np
import zarr
from skimage.measure import regionprops_table

from samkit import measure

DSB = Path(__file__).resolve().parents[1] / "tests" / "data" / "nuclei" / "dsb2018"
DENSE = ("432f367a4c5b", "550450e4bff4", "699f2992cd71", "fe9adb627a6f")  # 130-330 nuclei each
SPACING = (0.5, 0.25)
SKIMAGE = ("label", "centroid", "bbox", "area", "intensity_mean", "intensity_min", "intensity_max",
           "intensity_std", "intensity_median")  # fmt: skip


def scene(objects: int) -> tuple[np.ndarray, np.ndarray]:
    import tifffile
    from PIL import Image

    from samkit.testing import mosaic

    pairs = [
        (np.asarray(Image.open(DSB / f"{i}_img.png").convert("RGB")), tifffile.imread(DSB / f"{i}_labels.tif"))
        for i in DENSE
    ]
    side = 2048
    while True:
        image, labels = mosaic(pairs, (side, side + 200))
        found = int(labels.max())
        if found >= objects:
            return image[..., 0].copy(), labels.astype(np.uint32)
        side = int(side * np.sqrt(objects / found) * 1.01) + 1


def run_samkit(labels, image):
    return measure(labels, image, spacing=SPACING, unit="um", properties=("basic", "intensity"))


def run_skimage(labels, image):
    return regionprops_table(labels, image, properties=SKIMAGE, spacing=SPACING)


def timed(f, *args, repeat: int = 1):
    """(result, best time of ``repeat`` calls)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = f(*args)
        best = min(best, time.perf_counter() - start)
    return out, best


def peak_mb(f, *args) -> float:
    tracemalloc.start()
    f(*args)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def compare(table, reference) -> float:
    """Largest relative difference over all float columns (integer columns must be equal)."""
    pairs = {
        "label": "label", "area_um2": "area", "centroid_y_um": "centroid-0", "centroid_x_um": "centroid-1",
        "bbox_y0_px": "bbox-0", "bbox_x0_px": "bbox-1", "bbox_y1_px": "bbox-2", "bbox_x1_px": "bbox-3",
    }  # fmt: skip
    for stat in ("mean", "min", "max", "std", "median"):
        pairs[f"{stat}_intensity"] = f"intensity_{stat}"
    expected = {ours: np.asarray(reference[theirs]) for ours, theirs in pairs.items()}
    expected["integrated_intensity_um2"] = reference["intensity_mean"] * reference["area"]
    worst = 0.0
    for column, want in expected.items():
        have = table[column].to_numpy()
        if want.dtype.kind in "iu":
            assert np.array_equal(have, want), column
            continue
        worst = max(worst, float(np.max(np.abs(have - want) / np.maximum(np.abs(want), 1e-300), initial=0)))
    assert worst <= 1e-12, worst
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="samkit runs (best is reported); scikit-image runs once")
    args = parser.parse_args()

    image, labels = scene(args.objects)
    count = int(labels.max())
    print(f"scene: {labels.shape[0]} x {labels.shape[1]} px, {count} objects, spacing {SPACING} um")
    table, ours = timed(run_samkit, labels, image, repeat=args.repeat)
    reference, theirs = timed(run_skimage, labels, image)
    worst = compare(table, reference)
    stored = zarr.create_array(zarr.storage.MemoryStore(), shape=labels.shape, chunks=(1024, 1024), dtype=labels.dtype)
    stored[:] = labels
    tiled_table, tiled = timed(run_samkit, stored, image, repeat=args.repeat)
    assert tiled_table.equals(table)
    ours_mb, theirs_mb = peak_mb(run_samkit, labels, image), peak_mb(run_skimage, labels, image)
    print(f"{'':28s} {'time (s)':>9s} {'peak (MB)':>10s}")
    print(f"{'samkit.measure (numpy)':28s} {ours:9.2f} {ours_mb:10.0f}")
    print(f"{'samkit.measure (zarr 1024²)':28s} {tiled:9.2f} {'':>10s}")
    print(f"{'skimage regionprops_table':28s} {theirs:9.2f} {theirs_mb:10.0f}")
    print(f"speed-up {theirs / ours:.1f}x; largest relative difference {worst:.1e}; zarr result identical")
    print(json.dumps({
        "benchmark": "measure", "objects": count, "shape": list(labels.shape), "samkit_s": round(ours, 3),
        "samkit_zarr_s": round(tiled, 3), "skimage_s": round(theirs, 3), "speedup": round(theirs / ours, 1),
        "samkit_peak_mb": round(ours_mb), "skimage_peak_mb": round(theirs_mb), "max_rel_diff": worst,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
