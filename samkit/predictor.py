"""``Predictor``: one image (window) in, masks out, numpy and (y, x) throughout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from .errors import InvalidPromptError, NotReadyError
from .intensity import to_rgb8
from .models.sam import Sam
from .prompts import batch_size, check_boxes, check_mask_input, check_points


class Prediction(NamedTuple):
    """Masks for one prompt, or for B prompts when a batch was given.

    masks : (M, H, W) or (B, M, H, W) bool, at the image's size
    scores : (M,) or (B, M) float32, the model's predicted IoU of each mask
    logits : (M, 256, 256) or (B, M, 256, 256) float32, low-res logits to pass
        back as ``mask_input`` to refine
    """

    masks: np.ndarray
    scores: np.ndarray
    logits: np.ndarray


def input_size(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """(h, w) of an image of ``shape`` resized so its long side is ``side``."""
    scale = side / max(shape)
    return int(shape[0] * scale + 0.5), int(shape[1] * scale + 0.5)


class Predictor:
    """Embed one image once, then decode masks from prompts in milliseconds.

    The image is resized so its long side is 1024 (SAM's input). For images
    larger than that, prefer :class:`samkit.Session`, which tiles instead.

    Examples
    --------
    >>> predictor = samkit.Predictor(samkit.load_model("vit_b"))    # doctest: +SKIP
    >>> predictor.set_image(image)                                  # doctest: +SKIP
    >>> masks, scores, logits = predictor.predict(points=[[120, 80]], labels=[1])  # doctest: +SKIP
    """

    def __init__(self, model: Sam) -> None:
        self.model = model
        self.embedding: torch.Tensor | None = None
        self.image_shape: tuple[int, int] | None = None  # (H, W) of the original image
        self.input_shape: tuple[int, int] | None = None  # (h, w) inside the 1024 input

    def set_image(self, image, *, value_range: tuple[float, float] | None = None) -> None:
        """Embed ``image``: (H, W), (H, W, 1), (H, W, 3) or RGBA; uint8, uint16, float or bool.

        Non-uint8 images are mapped to 8 bits by :func:`samkit.intensity.to_rgb8`
        (``value_range`` fixes the mapping instead of percentiles).
        """
        rgb = to_rgb8(image, value_range=value_range)
        shape = rgb.shape[:2]
        h, w = input_size(shape, self.model.image_size)
        resized = np.array(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
        tensor = torch.from_numpy(resized).permute(2, 0, 1)[None].float()  # (1, 3, h, w)
        self.embedding = self.model.embed(tensor)
        self.image_shape, self.input_shape = shape, (h, w)

    def predict(
        self,
        points=None,
        labels=None,
        box=None,
        mask_input=None,
        multimask: bool = True,
    ) -> Prediction:
        """Predict masks from prompts in image coordinates.

        Parameters
        ----------
        points : (N, 2) or (B, N, 2) array_like, optional
            (y, x) pixel coordinates.
        labels : (N,) or (B, N) array_like, optional
            1 for the object, 0 for background; required with ``points``.
        box : (4,) or (B, 4) array_like, optional
            (y0, x0, y1, x1). Several boxes give a batch of B results.
        mask_input : (1, 256, 256) or (B, 1, 256, 256) array_like, optional
            ``logits`` of an earlier prediction (one of its M masks), to refine.
        multimask : bool
            Return three candidate masks (M = 3) for ambiguous prompts, or one.

        Returns
        -------
        Prediction
            (masks, scores, logits); with a batch, each has a leading B axis.
        """
        if self.embedding is None:
            raise NotReadyError("no image is set; call set_image(image) before predict()")
        if labels is not None and points is None:
            raise InvalidPromptError("labels were given without points")
        if points is None and box is None and mask_input is None:
            raise InvalidPromptError("no prompt given: pass points (+ labels), a box, or mask_input")
        pts = lab = boxes = masks_in = None
        if points is not None:
            pts, lab = check_points(points, labels, self.image_shape)
        if box is not None:
            boxes = check_boxes(box, self.image_shape)
        if mask_input is not None:
            masks_in = check_mask_input(mask_input)
        batched = any(a is not None and a.shape[0] > 1 for a in (pts, boxes, masks_in)) or np.ndim(box) == 2
        n = batch_size(pts, boxes, masks_in)

        logits, scores = self.model.decode(
            self.embedding,
            points=None if pts is None else _expand(self._to_model_xy(pts), n),
            labels=None if lab is None else _expand(torch.from_numpy(lab), n),
            boxes=None if boxes is None else _expand(self._to_model_xy(boxes.reshape(-1, 2, 2)).reshape(-1, 4), n),
            mask_input=None if masks_in is None else _expand(torch.from_numpy(masks_in), n),
            multimask=multimask,
        )
        full = self.model.upscale_logits(logits, self.input_shape, self.image_shape)
        result = Prediction(
            masks=(full > self.model.mask_threshold).cpu().numpy(),
            scores=scores.cpu().numpy(),
            logits=logits.cpu().numpy(),
        )
        return result if batched else Prediction(*(a[0] for a in result))

    def _to_model_xy(self, yx: np.ndarray) -> torch.Tensor:
        """(..., 2) image (y, x) -> (..., 2) SAM (x, y) in the resized model input."""
        scale = np.array(self.input_shape, dtype=np.float64) / np.array(self.image_shape, dtype=np.float64)
        return torch.from_numpy((yx * scale)[..., ::-1].copy()).float()


def _expand(tensor: torch.Tensor, n: int) -> torch.Tensor:
    return tensor.expand(n, *tensor.shape[1:]) if tensor.shape[0] != n else tensor
