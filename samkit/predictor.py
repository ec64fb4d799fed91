"""``Predictor``: one image (window) in, masks out, numpy and (y, x) throughout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from .device import PRECISIONS
from .errors import InvalidImageError, InvalidPromptError, NotReadyError
from .intensity import to_rgb8
from .models.sam import DecoderContext, Sam
from .models.sam2 import Sam2, Sam2DecoderContext, Sam2Embedding
from .prompts import batch_size, check_boxes, check_mask_input, check_points


class BestMask(NamedTuple):
    """The best of a prompt's candidate masks, from :meth:`Predictor.predict_best`.

    mask : (H, W) bool, at the image's size
    score : float, the model's predicted IoU of the mask
    logits : (256, 256) float32, its low-res logits, to pass back as ``mask_input``
    index : int, which of the candidates it is (0 with ``multimask=False``)
    """

    mask: np.ndarray
    score: float
    logits: np.ndarray
    index: int


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

    The image is resized so its long side is 1024 (SAM's input; SAM 2
    stretches it to 1024 x 1024). For images
    larger than that, prefer :class:`samkit.Session`, which tiles instead.

    Examples
    --------
    >>> predictor = samkit.Predictor(samkit.load_model("vit_b"))    # doctest: +SKIP
    >>> predictor.set_image(image)                                  # doctest: +SKIP
    >>> masks, scores, logits = predictor.predict(points=[[120, 80]], labels=[1])  # doctest: +SKIP
    >>> best = predictor.predict_best(points=[[120, 80]], labels=[1])  # doctest: +SKIP
    """

    def __init__(self, model: Sam | Sam2) -> None:
        self.model = model
        self._embedding: torch.Tensor | Sam2Embedding | None = None
        self._context: DecoderContext | Sam2DecoderContext | None = None  # the decoder's per-image work, made on first use
        self.image_shape: tuple[int, int] | None = None  # (H, W) of the original image
        self.input_shape: tuple[int, int] | None = None  # (h, w) inside the 1024 input

    @property
    def embedding(self) -> torch.Tensor | Sam2Embedding | None:
        """Embedding of the current image, or None before :meth:`set_image`.

        SAM: a (1, 256, 64, 64) tensor. SAM 2: a :class:`samkit.models.sam2.Sam2Embedding`
        (image embedding and two high-res feature maps).
        """
        return self._embedding

    @embedding.setter
    def embedding(self, value: torch.Tensor | Sam2Embedding | None) -> None:
        self._embedding, self._context = value, None

    def set_image(self, image, *, value_range: tuple[float, float] | None = None) -> None:
        """Embed ``image``: (H, W), (H, W, 1), (H, W, 3) or RGBA; uint8, uint16, float or bool.

        Non-uint8 images are mapped to 8 bits by :func:`samkit.intensity.to_rgb8`
        (``value_range`` fixes the mapping instead of percentiles).
        """
        rgb = to_rgb8(image, value_range=value_range)
        shape = rgb.shape[:2]
        if self.model.stretches_input:  # SAM 2 resizes to its square input itself (in float, antialiased)
            h = w = self.model.image_size
            resized = rgb
        else:
            h, w = input_size(shape, self.model.image_size)
            if min(h, w) < 1:
                side = self.model.image_size
                raise InvalidImageError(
                    f"image of shape {shape} is too elongated for the Predictor: resized to SAM's {side}-pixel input "
                    f"its short side would vanish (aspect ratio above {2 * side}:1); crop it into pieces, or use "
                    "samkit.Session, which tiles it"
                )
            resized = np.array(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
        tensor = torch.from_numpy(np.ascontiguousarray(resized)).permute(2, 0, 1)[None].float()  # (1, 3, h, w)
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

        See Also
        --------
        predict_best : only the best mask, faster.
        """
        logits, scores, batched = self._decode(points, labels, box, mask_input, multimask)
        full = self.model.upscale_logits(logits, self.input_shape, self.image_shape)
        result = Prediction(
            masks=(full > self.model.mask_threshold).cpu().numpy(),
            scores=scores.cpu().numpy(),
            logits=self._handed_out(logits).cpu().numpy(),
        )
        return result if batched else Prediction(*(a[0] for a in result))

    def predict_best(self, points=None, labels=None, box=None, mask_input=None, multimask: bool = True) -> BestMask:
        """Predict the best mask for one prompt: the candidate with the highest score.

        What an interactive click needs, at a fraction of :meth:`predict`'s
        cost: one mask is brought to full resolution, and only where it can be
        inside. The mask equals ``predict(...).masks[index]`` (up to pixels
        whose logit is within float rounding of the threshold).

        Parameters
        ----------
        points : (N, 2) array_like, optional
            (y, x) pixel coordinates.
        labels : (N,) array_like, optional
            1 for the object, 0 for background; required with ``points``.
        box : (4,) array_like, optional
            (y0, x0, y1, x1).
        mask_input : (256, 256) or (1, 256, 256) array_like, optional
            ``logits`` of an earlier prediction, to refine.
        multimask : bool
            Choose among three candidates (ambiguous prompts such as one
            click), or decode a single mask.

        Returns
        -------
        BestMask
            (mask, score, logits, index).

        Raises
        ------
        InvalidPromptError
            For a batch of prompts; use :meth:`predict` for those.

        Examples
        --------
        >>> best = predictor.predict_best(points=[[120, 80]], labels=[1])  # doctest: +SKIP
        >>> best.mask.shape == image.shape[:2]                             # doctest: +SKIP
        True
        """
        logits, scores, batched = self._decode(points, labels, box, mask_input, multimask)
        if batched:
            raise InvalidPromptError("predict_best takes one prompt, not a batch; use predict() for batches")
        index = int(scores[0].argmax())
        crop, (y0, x0) = self.model.upscale_mask(logits[0, index], self.input_shape, self.image_shape)
        mask = np.zeros(self.image_shape, dtype=bool)
        mask[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop.cpu().numpy()
        return BestMask(mask, float(scores[0, index]), self._handed_out(logits[0, index]).cpu().numpy(), index)

    def _handed_out(self, logits: torch.Tensor) -> torch.Tensor:
        """Low-res logits as the model's official predictor hands them out (SAM 2 clamps them to +-32)."""
        limit = self.model.low_res_logit_limit
        return logits if limit is None else logits.clamp(-limit, limit)

    def _decode(self, points, labels, box, mask_input, multimask: bool) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Check the prompts and decode them: low-res logits (B, M, 256, 256), scores (B, M), batched."""
        if self.embedding is None:
            raise NotReadyError("no image is set; call set_image(image) before predict() or predict_best()")
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
            self._decoder_context(),
            points=None if pts is None else _expand(self._to_model_xy(pts), n),
            labels=None if lab is None else _expand(torch.from_numpy(lab), n),
            boxes=None if boxes is None else _expand(self._to_model_xy(boxes.reshape(-1, 2, 2)).reshape(-1, 4), n),
            mask_input=None if masks_in is None else _expand(torch.from_numpy(masks_in), n),
            multimask=multimask,
        )
        return logits, scores, batched

    def _decoder_context(self) -> DecoderContext | Sam2DecoderContext:
        """The decoder's per-image work, redone when the image or the model's precision changed."""
        dtype = self._context and self._context.image.image.dtype
        if self._context is None or dtype != PRECISIONS[self.model.precision]:
            self._context = self.model.prepare_decoder(self.embedding)
        return self._context

    def _to_model_xy(self, yx: np.ndarray) -> torch.Tensor:
        """(..., 2) image (y, x) -> (..., 2) SAM (x, y) in the resized model input."""
        scale = np.array(self.input_shape, dtype=np.float64) / np.array(self.image_shape, dtype=np.float64)
        return torch.from_numpy((yx * scale)[..., ::-1].copy()).float()


def _expand(tensor: torch.Tensor, n: int) -> torch.Tensor:
    return tensor.expand(n, *tensor.shape[1:]) if tensor.shape[0] != n else tensor
