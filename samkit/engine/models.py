"""What the engine asks of a model, window by window, and SAM's answer to it.

A *window model* embeds square windows of an image and decodes prompts on
one window's embedding. SAM, the classical fallback
(:class:`samkit.models.classical.ClassicalModel`) and the test oracle
(:class:`samkit.testing.OracleModel`) all implement it, so every layer above
(tiling, stitching, labels, front ends) runs unchanged with any of them.

Interface
---------
Optional: ``input_size`` (default window side, 1024), ``batch_size``
(windows embedded per call, 1).

``name`` : str
    Shown to users ("SAM vit_b (sam_vit_b_01ec64.pth)", "classical ... not SAM").
``is_sam`` : bool
``accepts_mask_input`` : bool
    Whether ``decode`` uses ``mask_input`` (a previous mask as SAM's (1, 256,
    256) low-res logits); models without it are not sent one.
``stretches_input`` : bool, optional
    True when a window is stretched to the square model input (SAM 2), so
    that low-res logits cover the whole window; False (default) when its
    long side fills the input (SAM).
``embedding_spec(window_shape) -> (shape, dtype)``
    Shape and storage dtype of one window's embedding.
``signature() -> dict``
    Everything the embeddings depend on besides the pixels (weights, precision).
``embed(pixels, windows) -> array``
    ``pixels``: (B, h, w, 3) uint8 RGB windows; ``windows``: their (y0, x0,
    y1, x1) boxes in the image (level 0). Returns (B, *shape).
``decoder(embedding, window) -> callable``
    ``window``: the (y0, x0, y1, x1) box the embedding was made from.
    Per-window decoder: ``decode(points, labels, boxes, mask_input)`` with
    window (y, x) coordinates -> list of :class:`Decoded`, one per box (one
    in all when no box is given).

Optional, for automatic segmentation (:func:`samkit.segment_all`):

``point_decoder(embedding, window) -> callable``
    ``decode_points(points, *, multimask, min_score, min_stability,
    stability_offset) -> PointMasks``: each of the (N, 2) window (y, x)
    ``points`` is a separate single-point prompt (decoded in batches), and
    the masks that pass ``score >= min_score`` and ``stability >=
    min_stability`` come back (several per point with ``multimask``). The
    stability score of a mask is the IoU of the masks its logits give when
    thresholded ``stability_offset`` above and below the mask threshold;
    exact models answer score 1 and stability 1.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from ..errors import UnsupportedModelError
from ..models.sam import Sam
from ..models.sam2 import Sam2, Sam2Embedding
from ..predictor import Predictor, input_size
from .mask import tight


class Decoded(NamedTuple):
    """One mask in window coordinates: ``crop`` at ``offset`` (y, x), its score and low-res logits."""

    crop: np.ndarray
    offset: tuple[int, int]
    score: float
    logits: np.ndarray | None = None


class PointMasks(NamedTuple):
    """The masks answering many single-point prompts, from a ``point_decoder`` (K masks).

    point : (K,) int, the prompt each mask answers (index into the points)
    score : (K,) float32, predicted IoU (1 for exact models)
    stability : (K,) float32, stability score (1 for exact models)
    crops : list of K bool arrays, each mask cropped to its bounding box (never empty)
    offsets : (K, 2) int, where each crop starts in the window (y, x)
    """

    point: np.ndarray
    score: np.ndarray
    stability: np.ndarray
    crops: list
    offsets: np.ndarray


def empty_point_masks() -> PointMasks:
    return PointMasks(np.zeros(0, int), np.zeros(0, np.float32), np.zeros(0, np.float32), [], np.zeros((0, 2), int))


def point_masks(parts) -> PointMasks:
    """PointMasks from (point, score, stability, crop, offset) tuples, one per mask."""
    if not parts:
        return empty_point_masks()
    point, score, stability, crops, offsets = zip(*parts)
    return PointMasks(np.array(point), np.array(score, np.float32), np.array(stability, np.float32),
                      list(crops), np.array(offsets, int).reshape(-1, 2))


def stability_score(logits: torch.Tensor, threshold: float, offset: float) -> torch.Tensor:
    """(..., h, w) logits -> (...) IoU of the masks at ``threshold + offset`` and ``threshold - offset``."""
    inner = (logits > threshold + offset).sum((-1, -2), dtype=torch.int32)
    outer = (logits > threshold - offset).sum((-1, -2), dtype=torch.int32)
    return torch.where(outer > 0, inner / outer.clamp(min=1), torch.zeros_like(inner, dtype=torch.float32))


# Upper estimate of the GPU memory one 1024 x 1024 window needs while it is embedded
# (activations of ViT-H, the widest encoder, in float32; bf16 needs about half).
WINDOW_BYTES = 48 * 4096 * 1280
MAX_BATCH = 16  # beyond this a GPU gains no throughput, and a click waits longer


def gpu_batch_size(free_bytes: int) -> int:
    """Windows per encoder call when ``free_bytes`` of GPU memory are free: half of it, 1 to 16."""
    return int(min(MAX_BATCH, max(1, free_bytes // 2 // WINDOW_BYTES)))


# SAM 2.1 keeps three feature maps per window; the store holds them as one flat float16 vector
SAM2_PARTS = ((256, 64, 64), (32, 256, 256), (64, 128, 128))  # image embedding, stride-4 and stride-8 features
SAM2_SIZES = tuple(int(np.prod(shape)) for shape in SAM2_PARTS)


def pack_sam2(embedding: Sam2Embedding) -> np.ndarray:
    """(B, 4194304) float32: the three maps of each window, flattened one after the other."""
    return np.concatenate([t.reshape(len(t), -1).cpu().numpy() for t in embedding], axis=1)


def unpack_sam2(flat: np.ndarray) -> Sam2Embedding:
    """The inverse of :func:`pack_sam2` for one window: a batch-1 :class:`Sam2Embedding` of float32 tensors."""
    flat = torch.from_numpy(np.asarray(flat, np.float32).reshape(-1))
    parts = torch.split(flat, SAM2_SIZES)
    return Sam2Embedding(*(p.reshape(1, *shape) for p, shape in zip(parts, SAM2_PARTS)))


class SamWindows:
    """SAM (:class:`samkit.models.sam.Sam`) or SAM 2.1 (:class:`samkit.models.sam2.Sam2`) as a window
    model; one per model instance.

    Use :func:`window_model` to get it, so that all sessions on one model
    share it (and its background worker).
    """

    is_sam = True
    accepts_mask_input = True

    def __init__(self, sam: Sam | Sam2) -> None:
        self.sam = sam
        self.stretches_input = sam.stretches_input  # SAM 2: a window fills the square input, aspect ratio not kept
        self.lock = threading.Lock()  # decoders run on the caller's thread, one at a time

    @property
    def input_size(self) -> int:
        return self.sam.image_size

    @property
    def batch_size(self) -> int:
        """Windows per encoder call: 1 on the CPU and MPS, on CUDA what half the free memory holds."""
        if self.sam.device.type != "cuda":
            return 1
        free, _ = torch.cuda.mem_get_info(self.sam.device)
        return gpu_batch_size(free)

    @property
    def name(self) -> str:
        source = self.sam.checkpoint.name if self.sam.checkpoint else "random weights"
        return f"SAM {self.sam.model_type} ({source})"

    def embedding_spec(self, window_shape: tuple[int, int]) -> tuple[tuple[int, ...], str]:
        if isinstance(self.sam, Sam2):
            return (sum(SAM2_SIZES),), "float16"  # 8 MiB a window (SAM 1: 2 MiB)
        side = self.sam.image_size // 16
        return (256, side, side), "float16"

    def signature(self) -> dict:
        checkpoint = self.sam.checkpoint
        identity = None
        if checkpoint is not None and checkpoint.exists():
            stat = checkpoint.stat()
            identity = [str(checkpoint.resolve()), stat.st_size, stat.st_mtime_ns]
        return {
            "model": "sam",
            "model_type": self.sam.model_type,
            "checkpoint": identity or _unique(self.sam),
            "precision": self.sam.precision,
        }

    def embed(self, pixels: np.ndarray, windows) -> np.ndarray:
        h, w = pixels.shape[1:3]
        rh, rw = input_size((h, w), self.sam.image_size)
        if (rh, rw) != (h, w) and not self.stretches_input:  # SAM 2 resizes its input itself
            pixels = np.stack([np.asarray(Image.fromarray(p).resize((rw, rh), Image.BILINEAR)) for p in pixels])
        batch = torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2)  # uint8: 4x less to copy to a GPU
        embedding = self.sam.embed(batch)
        return pack_sam2(embedding) if isinstance(embedding, Sam2Embedding) else embedding.cpu().numpy()

    def decoder(self, embedding: np.ndarray, window: tuple[int, int, int, int]):
        predictor = self._predictor(embedding, window)

        def decode(points=None, labels=None, boxes=None, mask_input=None) -> list[Decoded]:
            with self.lock:
                if boxes is not None and len(boxes) > 1:
                    pred = predictor.predict(points, labels, boxes, mask_input, multimask=False)
                    return [Decoded(m[0], (0, 0), float(s[0]), lg[0]) for m, s, lg in zip(*pred)]
                # one click is ambiguous (part or whole): choose among three; more prompts are not
                multimask = boxes is None and points is not None and len(points) == 1
                box = None if boxes is None else boxes[0]
                best = predictor.predict_best(points, labels, box, mask_input, multimask=multimask)
                return [Decoded(best.mask, (0, 0), best.score, best.logits)]

        return decode

    def point_decoder(self, embedding: np.ndarray, window: tuple[int, int, int, int]):
        """Many single-point prompts at once (see the module's Interface); the mask decoder runs on
        ``batch`` prompts at a time and only the masks that pass the filters are brought to full size."""
        predictor = self._predictor(embedding, window)
        window_shape, input_shape = predictor.image_shape, predictor.input_shape
        valid = (-(-input_shape[0] * 256 // self.sam.image_size), -(-input_shape[1] * 256 // self.sam.image_size))

        def decode_points(points, *, multimask=True, min_score=0.0, min_stability=0.0, stability_offset=1.0, batch=64):
            points = np.asarray(points, np.float64).reshape(-1, 2)
            parts = []
            for start in range(0, len(points), batch):
                chunk = points[start : start + batch]
                with self.lock:
                    logits, scores, _ = predictor._decode(chunk[:, None], np.ones((len(chunk), 1)), None, None, multimask)
                stable = stability_score(logits[..., : valid[0], : valid[1]], self.sam.mask_threshold, stability_offset)
                for b, m in ((scores >= min_score) & (stable >= min_stability)).nonzero().tolist():
                    crop, offset = self.sam.upscale_mask(logits[b, m], input_shape, window_shape)
                    crop, offset = tight(crop.cpu().numpy(), offset)
                    if crop.size:
                        parts.append((start + b, float(scores[b, m]), float(stable[b, m]), crop, offset))
            return point_masks(parts)

        return decode_points

    def _predictor(self, embedding: np.ndarray, window) -> Predictor:
        window_shape = (window[2] - window[0], window[3] - window[1])
        predictor = Predictor(self.sam)
        if isinstance(self.sam, Sam2):
            predictor.embedding = unpack_sam2(embedding)
            predictor.input_shape = (self.sam.image_size, self.sam.image_size)
        else:
            predictor.embedding = torch.from_numpy(np.asarray(embedding, np.float32))[None]
            predictor.input_shape = input_size(window_shape, self.sam.image_size)
        predictor.image_shape = tuple(window_shape)
        return predictor


def _unique(sam: Sam) -> str:
    """Randomly initialised weights: an identity that never matches another model's."""
    return f"random weights {id(sam):x}"


_WRAPPER_LOCK = threading.Lock()


def window_model(model):
    """The window model for ``model``: a :class:`Sam`, a window model, ``"classical"``,
    or a registry name / checkpoint path (loaded with :func:`samkit.load_model`).

    The same ``Sam`` instance always gives the same wrapper, so sessions on
    one model share one background worker.
    """
    if isinstance(model, str) and model == "classical":
        from ..models.classical import ClassicalModel

        return ClassicalModel()
    if isinstance(model, (str,)) or hasattr(model, "__fspath__"):
        from ..models.loading import load_model

        model = load_model(model)
    if isinstance(model, (Sam, Sam2)):
        with _WRAPPER_LOCK:  # kept on the model, so it lives and dies with it
            if getattr(model, "_samkit_windows", None) is None:
                object.__setattr__(model, "_samkit_windows", SamWindows(model))
            return model._samkit_windows
    if all(hasattr(model, a) for a in ("embed", "decoder", "embedding_spec", "signature")):
        return model
    raise UnsupportedModelError(
        f"{type(model).__name__} is not a model samkit can use: pass samkit.load_model(...), a registry "
        "name, a checkpoint path, 'classical', or a window model (see samkit.engine.models)"
    )
