"""Embedding a huge image from disk: peak memory, and time spent outside the encoder.

    python benchmarks/tiles.py                          # 1 GPixel TIFF, cheap model, then vit_t on 12 windows
    python benchmarks/tiles.py --side 8192 --windows 4  # quicker

1. Writes a ``side`` x ``side`` grey uint8 TIFF (default 32768: 1.07 Gpixel,
   zlib-compressed 512 px tiles) made of real DSB2018 images, tile by tile.
2. Embeds all of it through ``Session.embed_all`` with a disk cache and a
   cheap model (a 16 x 16 block mean per window: no encoder cost, so this is
   the reading, intensity mapping, worker and store machinery alone), and
   reports peak RSS (VmHWM) and windows per second.
3. Times ``--windows`` windows with MobileSAM (vit_t, random weights): the
   session (read + map + embed + store) against the encoder alone on the
   same pixels, run in the same process; prints the overhead in percent.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import samkit
from samkit.models.sam import build_sam

sys.path.insert(0, str(Path(__file__).parent))
from _data import dsb_mosaic  # noqa: E402



def peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 2**20
    return float("nan")


class BlockMean:
    """A cheap stand-in encoder: each window becomes its 16 x 16 block means."""

    is_sam = False
    name = "block mean (benchmark stand-in)"

    def embedding_spec(self, window_shape):
        return (3, window_shape[0] // 16, window_shape[1] // 16), "float16"

    def signature(self):
        return {"model": "block-mean"}

    def embed(self, pixels, windows):
        b, h, w, c = pixels.shape
        blocks = pixels[:, : h // 16 * 16, : w // 16 * 16].reshape(b, h // 16, 16, w // 16, 16, c)
        return blocks.mean(axis=(2, 4)).transpose(0, 3, 1, 2)

    def decoder(self, embedding, window):
        raise NotImplementedError


def write_tiff(path: Path, side: int) -> None:
    import tifffile

    base = dsb_mosaic((4096, 4096))[0][..., 0]

    def tiles():
        for y in range(0, side, 512):
            for x in range(0, side, 512):
                yield base[y % 4096 : y % 4096 + 512, x % 4096 : x % 4096 + 512]

    tifffile.imwrite(path, tiles(), shape=(side, side), dtype=np.uint8, tile=(512, 512), compression="zlib", bigtiff=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=32768)
    parser.add_argument("--windows", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"benchmark": "tiles", "side": args.side}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.tif"
        started = time.perf_counter()
        write_tiff(path, args.side)
        results["write_s"] = round(time.perf_counter() - started, 1)
        results["tiff_gb"] = round(path.stat().st_size / 2**30, 2)

        session = samkit.Session(path, BlockMean(), cache=Path(tmp) / "cache")
        started = time.perf_counter()
        session.embed_all().result()
        seconds = time.perf_counter() - started
        results.update(
            windows=len(session.grid),
            cheap_model_windows_per_s=round(len(session.grid) / seconds, 1),
            peak_rss_gb=round(peak_rss_gb(), 2),
        )

        torch.manual_seed(0)
        sam = build_sam("vit_t").eval()
        sam_session = samkit.Session(path, sam)
        indices = sam_session.grid.indices()[: args.windows]
        pixels = [sam_session.intensity.apply(sam_session.image.read(*sam_session.grid.window(i))) for i in indices]
        sam_session.model.embed(pixels[0][None], [None])  # warm-up
        encoder_s, session_s = 0.0, 0.0
        for index, window_pixels in zip(indices, pixels):  # interleaved, so machine noise hits both alike
            started = time.perf_counter()
            sam_session.model.embed(window_pixels[None], [None])
            encoder_s += time.perf_counter() - started
            started = time.perf_counter()
            sam_session.compute([index])
            session_s += time.perf_counter() - started
        results.update(
            vit_t_encoder_s_per_window=round(encoder_s / len(indices), 3),
            vit_t_session_s_per_window=round(session_s / len(indices), 3),
            overhead_percent=round(100 * (session_s / encoder_s - 1), 1),
        )
    print(f"{args.side} x {args.side} grey TIFF ({results['tiff_gb']} GB on disk, written in {results['write_s']} s), {results['windows']} windows")
    print(f"  cheap model, all windows: {results['cheap_model_windows_per_s']} windows/s, peak RSS {results['peak_rss_gb']} GB")
    print(
        f"  vit_t, {len(indices)} windows: encoder alone {results['vit_t_encoder_s_per_window']} s/window, "
        f"session {results['vit_t_session_s_per_window']} s/window, overhead {results['overhead_percent']} %"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
