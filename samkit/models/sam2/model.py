"""The SAM 2.1 image model: Hiera trunk + FPN neck, SAM's prompt encoder, SAM 2's mask decoder.

``build_sam2(model_type)`` makes one with random weights; the sizes differ only
in their numbers (from the official ``configs/sam2.1/sam2.1_hiera_*.yaml``).
The tensor-level methods mirror :class:`samkit.models.sam.Sam` (``embed``,
``prepare_decoder``, ``decode``, ``upscale_logits``, ``upscale_mask``), with
two differences the callers must know:

- the input is STRETCHED to 1024 x 1024 (no aspect ratio kept, no padding):
  prompts are in pixels of that stretched frame, and ``input_size`` is
  always (1024, 1024); ``embed`` resizes any (h, w) itself;
- an embedding is a :class:`Sam2Embedding` of three tensors, not one.

The video parts of SAM 2 (memory encoder and attention, object pointers and
the tables of the memory) are built here with their official names; what
uses them is in :mod:`.memory` and :mod:`.tracker`.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ...device import PRECISIONS
from ..common import MLP
from ..prompt_encoder import PromptEncoder
from ..sam import SamFamily, upscale_mask
from ..transformer import ImageContext
from .hiera import Hiera
from .mask_decoder import Decoded, Sam2MaskDecoder, arrange_high_res
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder
from .neck import FpnNeck

_LARGE_WINDOWS = (8, 4, 16, 8)
# model type -> trunk: (width, heads, blocks per stage, global-attention blocks, windows, background table)
TRUNKS = {
    "sam2.1_hiera_tiny": partial(Hiera, 96, 1, (1, 2, 7, 2), (5, 7, 9), background=(7, 7)),
    "sam2.1_hiera_small": partial(Hiera, 96, 1, (1, 2, 11, 2), (7, 10, 13), background=(7, 7)),
    "sam2.1_hiera_base_plus": partial(Hiera, 112, 2, (2, 3, 16, 3), (12, 16, 20), background=(14, 14)),
    "sam2.1_hiera_large": partial(Hiera, 144, 2, (2, 6, 36, 4), (23, 33, 43), windows=_LARGE_WINDOWS, background=(7, 7)),
}
SAM2_MODEL_TYPES = tuple(TRUNKS)
MEMORY_DIM = 64  # channels of a frame's memory
NUM_MEMORIES = 7  # rows of the memories' temporal encoding: prompted frames (row 6) and the 6 frames before a frame

# Normalisation of [0, 1] RGB (ImageNet statistics, as the official SAM2Transforms)
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class Sam2Embedding(NamedTuple):
    """What SAM 2 keeps of an image: three float32 tensors, from :meth:`Sam2.embed`.

    image : (B, 256, 64, 64) image embedding (stride 16), ``no_mem_embed`` included
    feat_s0 : (B, 32, 256, 256) stride-4 features, projected by the decoder's ``conv_s0``
    feat_s1 : (B, 64, 128, 128) stride-8 features, projected by the decoder's ``conv_s1``
    """

    image: torch.Tensor
    feat_s0: torch.Tensor
    feat_s1: torch.Tensor

    def to(self, *args, **kwargs) -> "Sam2Embedding":
        """All three tensors ``.to(...)``."""
        return Sam2Embedding(*(t.to(*args, **kwargs) for t in self))


class Sam2DecoderContext(NamedTuple):
    """An image ready for many decodes: from :meth:`Sam2.prepare_decoder`.

    embeddings : the :class:`Sam2Embedding`, float32
    image : the mask decoder's prompt-independent work (as for SAM)
    high_res : the high-res features arranged for the upscaling, in the model's precision
    """

    embeddings: Sam2Embedding
    image: ImageContext
    high_res: tuple[torch.Tensor, torch.Tensor]


class ImageEncoder(nn.Module):
    """Trunk + neck: (B, 3, 1024, 1024) -> [stride 4, stride 8, stride 16] maps (B, 256, H, W)."""

    def __init__(self, trunk: Hiera, dim: int = 256) -> None:
        super().__init__()
        self.trunk = trunk
        self.neck = FpnNeck(trunk.channels[::-1], dim)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.trunk(x))


class Sam2(SamFamily):
    """SAM 2.1 (for images; its video parts serve :class:`.tracker.Sam2Tracker`), with its metadata:
    ``model_type``, ``precision``, ``checkpoint``.

    Use :func:`samkit.load_model` to get one with real weights.
    """

    stretches_input = True  # images are resized to 1024 x 1024 whatever their aspect ratio
    low_res_logit_limit = 32.0  # low-res logits are handed out clamped to +-32, as the official predictor does

    def __init__(self, model_type: str, dim: int = 256) -> None:
        if model_type not in TRUNKS:
            raise ValueError(f"model_type={model_type!r} is unknown; expected one of {SAM2_MODEL_TYPES}")
        super().__init__(model_type)
        self.image_encoder = ImageEncoder(TRUNKS[model_type](), dim)
        self.sam_prompt_encoder = PromptEncoder(dim)
        self.sam_mask_decoder = Sam2MaskDecoder(dim)
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, dim))
        # the video parts (official names; used by .memory and .tracker)
        self.memory_encoder = MemoryEncoder(dim, MEMORY_DIM)
        self.memory_attention = MemoryAttention(dim, MEMORY_DIM)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(NUM_MEMORIES, 1, 1, MEMORY_DIM))  # by frame distance
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, dim))  # in the files, unused by SAM 2.1
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, dim))
        self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, MEMORY_DIM))
        self.obj_ptr_proj = MLP(dim, dim, dim, 3)
        self.obj_ptr_tpos_proj = nn.Linear(dim, MEMORY_DIM)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)  # a 1024 mask prompt -> 256 logits
        self.has_video_weights = True  # False when loaded from a file without them
        self.register_buffer("pixel_mean", torch.tensor(_MEAN).view(-1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(_STD).view(-1, 1, 1), persistent=False)

    @property
    def prompt_encoder(self) -> PromptEncoder:
        return self.sam_prompt_encoder

    def input_size(self, shape: tuple[int, int]) -> tuple[int, int]:
        """(h, w) an image of ``shape`` has in the model input: always (1024, 1024)."""
        return self.image_size, self.image_size

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) RGB in [0, 255] -> stretched to (B, 3, 1024, 1024) (bilinear, antialiased), normalised."""
        x = images / 255
        if x.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            x = F.interpolate(x, size, mode="bilinear", align_corners=False, antialias=True)
        return (x - self.pixel_mean) / self.pixel_std

    @torch.inference_mode()
    def embed(self, images: torch.Tensor) -> Sam2Embedding:
        """The :class:`Sam2Embedding` (float32) of (B, 3, h, w) RGB images in [0, 255] (uint8 or float), any h, w."""
        if self.device.type == "cuda" and images.device.type == "cpu":
            images = images.pin_memory().to(self.device, non_blocking=True)
        x = self.preprocess(images.to(self.device, torch.float32))
        decoder = self.sam_mask_decoder
        with self._autocast():
            s0, s1, image = self.image_encoder(x)
            feat_s0, feat_s1 = decoder.conv_s0(s0), decoder.conv_s1(s1)
            image = image + self.no_mem_embed.view(1, -1, 1, 1)  # as the official image predictor does
        return Sam2Embedding(image.float(), feat_s0.float(), feat_s1.float())

    @torch.inference_mode()
    def prepare_decoder(self, embeddings: Sam2Embedding) -> Sam2DecoderContext:
        """Do the prompt-independent part of decoding, once per image (see :meth:`Sam.prepare_decoder`).

        Parameters
        ----------
        embeddings : Sam2Embedding
            From :meth:`embed`, batch 1 (one image for all prompts) or B.
        """
        embeddings = Sam2Embedding(*embeddings).to(self.device, torch.float32)
        no_mask = self.sam_prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)  # (1, C, 1, 1)
        dtype = PRECISIONS[self.precision]
        decoder = self.sam_mask_decoder
        image = decoder.prepare(embeddings.image, self.sam_prompt_encoder.dense_pe(), no_mask, dtype)
        return Sam2DecoderContext(embeddings, image, arrange_high_res(embeddings.feat_s0, embeddings.feat_s1, dtype))

    @torch.inference_mode()
    def decode(
        self,
        embeddings: Sam2Embedding | Sam2DecoderContext,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode prompts into low-res mask logits (B, M, 256, 256) and IoU scores (B, M).

        As :meth:`samkit.models.sam.Sam.decode`; coordinates are (x, y) in
        pixels of the stretched 1024 x 1024 input. Without ``multimask`` an
        unstable single mask is replaced by the best of the three candidates.
        :meth:`decode_all` also gives the object-score logits and the object-pointer token.
        """
        logits, iou, _, _ = self.decode_all(embeddings, points, labels, boxes, mask_input, multimask)
        return logits, iou

    @torch.inference_mode()
    def decode_all(
        self,
        embeddings: Sam2Embedding | Sam2DecoderContext,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask: bool = True,
    ) -> Decoded:
        """:meth:`decode` with all the mask decoder gives (float32): also the (B, 1) object-score logits
        (> 0: the prompt is on an object) and the output token the video memory makes its object
        pointer from (see :class:`Decoded`)."""
        context = embeddings if isinstance(embeddings, Sam2DecoderContext) else self.prepare_decoder(embeddings)
        image, dev = context.image, self.device
        if points is not None:
            points, labels = points.to(dev, torch.float32), labels.to(dev)
        if boxes is not None:  # SAM 2 takes boxes as two corner points (labels 2, 3) in front of the points
            corners = boxes.to(dev, torch.float32).reshape(-1, 2, 2)
            corner_labels = torch.tensor([[2, 3]], device=dev).expand(len(corners), 2)
            if points is None:
                points, labels = corners, corner_labels
            else:
                points = torch.cat([corners, points], dim=1)
                labels = torch.cat([corner_labels, labels.to(corner_labels.dtype)], dim=1)
        mask_input = None if mask_input is None else mask_input.to(dev, torch.float32)
        prompt_points = None if points is None else (points, labels)
        sparse, dense = self.sam_prompt_encoder(prompt_points, None, mask_input)
        if mask_input is not None:  # the mask prompt changes the image side
            image = self.sam_mask_decoder.with_dense(image, context.embeddings.image, dense)
        return Decoded(*(t.float() for t in self.sam_mask_decoder(image, sparse, multimask, context.high_res)))

    def upscale_logits(self, logits: torch.Tensor, input_size: tuple[int, int], output_size: tuple[int, int]) -> torch.Tensor:
        """Low-res logits (B, M, 256, 256) -> (B, M, *output_size): one bilinear resize (``input_size`` is unused)."""
        return F.interpolate(logits, output_size, mode="bilinear", align_corners=False)

    def upscale_mask(
        self, logits: torch.Tensor, input_size: tuple[int, int], output_size: tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """One mask at full resolution, computed only where it can be inside (see :meth:`Sam.upscale_mask`).

        Returns the (h', w') bool crop and its (y0, x0) offset in the (H, W) image.
        """
        low = logits.shape[-1]
        return upscale_mask(logits, self.mask_threshold, low, (low, low), output_size)


def build_sam2(model_type: str) -> Sam2:
    """A SAM 2.1 image model of ``model_type`` (see ``SAM2_MODEL_TYPES``) with random weights, in eval mode."""
    return Sam2(model_type).eval()
