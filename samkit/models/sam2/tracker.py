"""Follow one object through the planes of a z-stack or the frames of a time series with SAM 2.1.

:class:`Sam2Tracker` is the tensor-level core of propagation: no widgets, no
sessions. It takes the frames' image embeddings (any sequence of
:class:`Sam2Embedding`, e.g. :class:`FrameEmbeddings`, which embeds each
frame once, when first needed, or an engine's cache), prompts in (y, x)
pixels of the frames, and gives per frame the low-res logits and the mask.
The rules are those of SAM 2.1's official ``SAM2VideoPredictor`` (sam2
1.1.0, see :mod:`.memory`), with two choices made where it has options:

- a frame that receives prompts after it was tracked (a correction) becomes
  a prompted frame whose memory every other frame then sees, as with the
  official ``add_all_frames_to_correct_as_cond=True`` (its default, False,
  lets the next propagation overwrite the correction);
- small holes in the low-res masks (background regions of at most
  ``fill_hole_area`` pixels, 8-connected) are filled, as the official
  predictor does on GPUs (on CPUs it skips this: it needs its CUDA kernel).

What is recomputed: :meth:`Sam2Tracker.propagate` runs from ``start`` in
one direction, as the official ``propagate_in_video``; frames outside that
range keep their results. A frame whose memories and pointers are the very
ones it was last decoded from is not decoded again (the result would be the
same): a repeated propagation without new prompts costs nothing. A new
prompted frame enters every frame's memory, so after a correction all
frames in the range are decoded again.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ...errors import InvalidImageError, InvalidPromptError, NotReadyError, UnsupportedModelError
from ...intensity import IntensityPolicy, check_image
from ...prompts import check_boxes, check_points
from .memory import (
    MEMORY_DTYPE,
    FrameOutput,
    condition,
    decode,
    encode_memory,
    mask_as_output,
    multimask_for,
    raw_features,
    select_memory,
)
from .model import Sam2, Sam2Embedding

FILL_HOLE_AREA = 8  # the official video predictor's fill_hole_area
PROMPT_LOGIT_LIMIT = 32.0  # earlier logits fed back with a correction are clamped to +-32, as the official code does


class FrameResult(NamedTuple):
    """One frame's answer.

    frame : int
    mask : (H, W) bool, at the frames' size
    logits : (256, 256) float32 low-res logits (-1024 where the object is absent)
    object_score : float, > 0 where the model sees the object
    """

    frame: int
    mask: np.ndarray
    logits: np.ndarray
    object_score: float


class FrameEmbeddings(Sequence[Sam2Embedding]):
    """The :class:`Sam2Embedding` of each frame of a stack, computed once, when first asked for.

    Parameters
    ----------
    model : Sam2
    frames : (T, H, W) or (T, H, W, C) array, C in {1, 3, 4}
        Planes of a z-stack or frames of a time series.
    value_range : (float, float), optional
        Intensities mapped to 0 and 255 in every frame; by default the
        0.5 and 99.5 percentiles of the whole stack (one mapping for all
        frames, see :mod:`samkit.intensity`). uint8 frames are used as they are.
    """

    def __init__(self, model: Sam2, frames, *, value_range: tuple[float, float] | None = None) -> None:
        stack = np.asarray(frames)
        if stack.ndim not in (3, 4) or len(stack) == 0:
            raise InvalidImageError(f"frames of shape {stack.shape} are not a (T, H, W) or (T, H, W, C) stack")
        check_image(stack[0])
        pixels = stack.reshape(-1, 1 if stack.ndim == 3 else stack.shape[-1])
        channels = tuple(range(min(pixels.shape[1], 3)))  # an alpha channel is dropped
        self.model = model
        self.frames = stack
        self.image_shape = tuple(stack.shape[1:3])
        self.policy = IntensityPolicy.fit(pixels, channels=channels, value_range=value_range, joint=True)
        self._cache: dict[int, Sam2Embedding] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, t: int) -> Sam2Embedding:  # type: ignore[override]
        t = int(t)
        if t not in self._cache:
            frame = self.frames[t]
            rgb = self.policy.apply(frame if frame.ndim == 3 else frame[..., None])  # (H, W, 3) uint8
            self._cache[t] = self.model.embed(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())
        return self._cache[t]


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """(1, 1, h, w) logits whose background holes (8-connected regions of logits <= 0 with at most
    ``max_area`` pixels) are set to 0.1, as the official video predictor does."""
    background = (logits[0, 0] <= 0).cpu().numpy()
    regions, count = ndimage.label(background, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return logits
    small = np.bincount(regions.ravel()) <= max_area
    small[0] = False  # the object's pixels
    holes = small[regions]
    if not holes.any():
        return logits
    return torch.where(torch.from_numpy(holes).to(logits.device)[None, None], 0.1, logits)


class Sam2Tracker:
    """One object followed through the frames of a stack by SAM 2.1's memory.

    Parameters
    ----------
    model : Sam2
        Loaded from a file with the video weights (an official SAM 2.1 file).
    embeddings : sequence of Sam2Embedding
        One per frame, in order (batch 1); e.g. :class:`FrameEmbeddings`.
    image_shape : (H, W), optional
        Size of the frames, for prompts and masks; by default
        ``embeddings.image_shape``.
    fill_hole_area : int
        Fill background holes of up to this many low-res pixels (0: never).

    Examples
    --------
    >>> frames = FrameEmbeddings(model, stack)                 # doctest: +SKIP
    >>> tracker = Sam2Tracker(model, frames)                   # doctest: +SKIP
    >>> tracker.add_prompt(15, points=[(30, 28)], labels=[1])  # doctest: +SKIP
    >>> forward = list(tracker.propagate())                    # doctest: +SKIP (to the last frame)
    >>> backward = list(tracker.propagate(reverse=True))       # doctest: +SKIP (back to the first)
    """

    def __init__(
        self,
        model: Sam2,
        embeddings: Sequence[Sam2Embedding],
        image_shape: tuple[int, int] | None = None,
        *,
        fill_hole_area: int = FILL_HOLE_AREA,
    ) -> None:
        if not isinstance(model, Sam2):
            raise UnsupportedModelError(f"tracking needs a SAM 2.1 model, got {type(model).__name__}")
        if not model.has_video_weights:
            raise UnsupportedModelError(
                f"{model!r} was loaded from a file without SAM 2.1's video weights (memory encoder and attention, "
                "object pointers); tracking needs an official sam2.1_hiera_*.pt file"
            )
        image_shape = image_shape or getattr(embeddings, "image_shape", None)
        if image_shape is None:
            raise InvalidImageError("image_shape (H, W) of the frames is needed with these embeddings")
        self.model = model
        self.embeddings = embeddings
        self.num_frames = len(embeddings)
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.fill_hole_area = int(fill_hole_area)
        self._points: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # frame -> (1, N, 2) model (x, y), (1, N)
        self._pending: dict[int, FrameOutput] = {}  # prompted since the last propagation, memory not yet encoded
        self._prompted: dict[int, FrameOutput] = {}  # the conditioning frames
        self._tracked: dict[int, FrameOutput] = {}
        self._inputs: dict[int, tuple] = {}  # tracked frame -> the memories and pointers it was decoded from
        self._reverse: dict[int, bool] = {}  # frame -> the direction it was last propagated in

    # ------------------------------------------------------------------ prompts

    @property
    def prompted_frames(self) -> list[int]:
        """Frames with prompts, in order."""
        return sorted({*self._prompted, *self._pending})

    @torch.inference_mode()
    def add_prompt(self, frame: int, points=None, labels=None, box=None, *, keep_points: bool = False) -> FrameResult:
        """Prompt the object on ``frame`` and decode that frame (no propagation yet).

        Parameters
        ----------
        frame : int
        points : (N, 2) array_like, optional
            (y, x) pixel coordinates in the frame.
        labels : (N,) array_like, optional
            1 for the object, 0 for background; required with ``points``.
        box : (4,) array_like, optional
            (y0, x0, y1, x1).
        keep_points : bool
            Add ``points`` to those given on this frame before (not with a box).

        On a frame that was already decoded, the earlier logits go in as a
        mask prompt; on a tracked frame, the frame is decoded with its
        memory (a correction).
        """
        frame = self._check_frame(frame)
        if points is None and box is None:
            raise InvalidPromptError("no prompt given: pass points (+ labels) or a box")
        if labels is not None and points is None:
            raise InvalidPromptError("labels were given without points")
        if box is not None and keep_points:
            raise InvalidPromptError("a box comes before any point: add it with keep_points=False, then add points")
        xy, lab = torch.zeros(1, 0, 2), torch.zeros(1, 0, dtype=torch.int32)
        if box is not None:
            corners = check_boxes(box, self.image_shape)
            if len(corners) != 1:
                raise InvalidPromptError(f"one box per prompt, got {len(corners)}")
            xy, lab = self._to_model_xy(corners.reshape(1, 2, 2)), torch.tensor([[2, 3]], dtype=torch.int32)
        if points is not None:
            pts, pl = check_points(points, labels, self.image_shape)
            if len(pts) != 1:
                raise InvalidPromptError(f"one set of points per prompt, got a batch of {len(pts)}")
            xy = torch.cat([xy, self._to_model_xy(pts)], dim=1)
            lab = torch.cat([lab, torch.from_numpy(pl).to(torch.int32)], dim=1)
        if keep_points and frame in self._points:
            old_xy, old_lab = self._points[frame]
            xy, lab = torch.cat([old_xy, xy], dim=1), torch.cat([old_lab, lab], dim=1)
        self._points[frame] = (xy, lab)

        previous = self._pending.get(frame) or self._prompted.get(frame) or self._tracked.get(frame)
        mask_input = None if previous is None else previous.logits.clamp(-PROMPT_LOGIT_LIMIT, PROMPT_LOGIT_LIMIT)
        dev = self.model.device
        embedding = self._conditioned(frame)
        out = decode(self.model, embedding, xy.to(dev), lab.to(dev), mask_input, multimask_for(lab))
        return self._prompt_done(frame, out)

    @torch.inference_mode()
    def add_mask(self, frame: int, mask) -> FrameResult:
        """Prompt the object on ``frame`` with an (H, W) boolean mask, which becomes that frame's answer."""
        frame = self._check_frame(frame)
        mask = np.asarray(mask)
        if mask.shape != self.image_shape:
            raise InvalidPromptError(f"mask of shape {mask.shape} does not match the frames' shape {self.image_shape}")
        m = torch.from_numpy(mask.astype(bool)).float()[None, None].to(self.model.device)  # (1, 1, H, W)
        size = (self.model.image_size, self.model.image_size)
        if m.shape[-2:] != size:
            m = (F.interpolate(m, size=size, mode="bilinear", align_corners=False, antialias=True) >= 0.5).float()
        self._points.pop(frame, None)
        return self._prompt_done(frame, mask_as_output(self.model, self._embedding(frame), m))

    def _prompt_done(self, frame: int, out: FrameOutput) -> FrameResult:
        out = out._replace(logits=self._fill(out.logits))
        self._pending[frame] = out
        return self._result(frame, out)

    # ------------------------------------------------------------------ propagation

    @torch.inference_mode()
    def propagate(self, start: int | None = None, *, reverse: bool = False, max_frames: int | None = None) -> Iterator[FrameResult]:
        """Decode the frames from ``start`` on, one after the other, and yield their results.

        Parameters
        ----------
        start : int, optional
            First frame; by default the first prompted frame.
        reverse : bool
            Go towards frame 0 instead of the last frame.
        max_frames : int, optional
            Stop after ``start`` plus this many frames; by default go to the end.

        Prompted frames are yielded with their prompted answer. Each frame's
        result is kept before it is yielded, so a caller may stop early
        (progress, cancel) and propagate again later.
        """
        self._encode_pending()
        if not self._prompted:
            raise NotReadyError("no prompt given yet; call add_prompt() or add_mask() on a frame first")
        start = min(self._prompted) if start is None else self._check_frame(start)
        count = self.num_frames if max_frames is None else int(max_frames)
        if reverse:
            frames = range(start, max(start - count, 0) - 1, -1) if start > 0 else range(0)
        else:
            frames = range(start, min(start + count, self.num_frames - 1) + 1)
        for frame in frames:
            out = self._prompted.get(frame)
            if out is None:
                out = self._track(frame, reverse)
            self._reverse[frame] = reverse
            yield self._result(frame, out)

    def result(self, frame: int) -> FrameResult | None:
        """The latest answer on ``frame`` (None before it was decoded)."""
        frame = self._check_frame(frame)
        out = self._pending.get(frame) or self._prompted.get(frame) or self._tracked.get(frame)
        return None if out is None else self._result(frame, out)

    def _encode_pending(self) -> None:
        """Give the frames prompted since the last propagation their memories (from their masks as shown)."""
        for frame, out in self._pending.items():
            features = raw_features(self.model, self._embedding(frame))
            memory = encode_memory(self.model, features, out.logits, out.object_score, binarize=True)
            self._prompted[frame] = out._replace(memory=memory.to(MEMORY_DTYPE))
            self._tracked.pop(frame, None)
            self._inputs.pop(frame, None)
        self._pending.clear()

    def _track(self, frame: int, reverse: bool) -> FrameOutput:
        """Decode a frame from memory alone (unless it already was, from the same memories)."""
        memories, pointers = select_memory(frame, self._prompted, self._tracked, reverse, self.num_frames)
        if frame in self._tracked and _same_inputs(self._inputs.get(frame), (memories, pointers)):
            return self._tracked[frame]
        embedding = self._embedding(frame)
        features = raw_features(self.model, embedding)
        conditioned = condition(self.model, features, memories, pointers, self.num_frames)
        out = decode(self.model, embedding._replace(image=conditioned), None, None, None, multimask_for(None))
        memory = encode_memory(self.model, features, out.logits, out.object_score, binarize=False)
        out = out._replace(logits=self._fill(out.logits), memory=memory.to(MEMORY_DTYPE))
        self._tracked[frame] = out
        self._inputs[frame] = (memories, pointers)
        return out

    # ------------------------------------------------------------------ helpers

    def _conditioned(self, frame: int) -> Sam2Embedding:
        """The frame's embedding for a prompt: as for images on a frame never tracked, else with its memory."""
        embedding = self._embedding(frame)
        if frame not in self._reverse:
            return embedding  # its image embedding has no_mem_embed added: SAM 2.1's frame without memory
        memories, pointers = select_memory(frame, self._prompted, self._tracked, self._reverse[frame], self.num_frames)
        features = condition(self.model, raw_features(self.model, embedding), memories, pointers, self.num_frames)
        return embedding._replace(image=features)

    def _embedding(self, frame: int) -> Sam2Embedding:
        return Sam2Embedding(*self.embeddings[frame]).to(self.model.device, torch.float32)

    def _fill(self, logits: torch.Tensor) -> torch.Tensor:
        return fill_holes(logits, self.fill_hole_area) if self.fill_hole_area > 0 else logits

    def _check_frame(self, frame) -> int:
        if isinstance(frame, bool) or not isinstance(frame, (int, np.integer)) or not 0 <= frame < self.num_frames:
            raise InvalidPromptError(f"frame {frame!r} is not a frame index of this stack (0 .. {self.num_frames - 1})")
        return int(frame)

    def _to_model_xy(self, yx: np.ndarray) -> torch.Tensor:
        """(..., 2) frame (y, x) -> (..., 2) SAM (x, y) in the stretched 1024 x 1024 input."""
        scale = self.model.image_size / np.array(self.image_shape, dtype=np.float64)
        return torch.from_numpy((yx * scale)[..., ::-1].copy()).float()

    def _result(self, frame: int, out: FrameOutput) -> FrameResult:
        full = F.interpolate(out.logits, size=self.image_shape, mode="bilinear", align_corners=False)
        mask = (full[0, 0] > self.model.mask_threshold).cpu().numpy()
        return FrameResult(frame, mask, out.logits[0, 0].cpu().numpy(), float(out.object_score))


def _same_inputs(old, new) -> bool:
    """Whether two (memories, pointers) selections are the same outputs at the same rows and distances."""
    if old is None:
        return False
    return all(
        len(a) == len(b) and all(ka == kb and oa is ob for (ka, oa), (kb, ob) in zip(a, b))
        for a, b in zip(old, new)
    )
