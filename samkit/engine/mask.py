"""``Mask``: one object as a bounding box in image coordinates plus a boolean crop."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidLabelError

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end exclusive


def tight(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, tuple[int, int]]:
    """``mask`` cropped to its bounding box, and where that crop lies given ``mask`` lies at ``offset``.

    An empty mask gives a (0, 0) crop at (0, 0).
    """
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return np.zeros((0, 0), bool), (0, 0)
    return (
        np.ascontiguousarray(mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]),
        (int(offset[0]) + int(rows[0]), int(offset[1]) + int(cols[0])),
    )


def paste(crop: np.ndarray, offset: tuple[int, int], box: Box) -> np.ndarray:
    """The part of ``crop`` (lying at ``offset``) inside ``box``, as a bool array of the box's size."""
    y0, x0, y1, x1 = box
    out = np.zeros((y1 - y0, x1 - x0), bool)
    oy, ox = offset
    ty0, tx0 = max(oy, y0), max(ox, x0)
    ty1, tx1 = min(oy + crop.shape[0], y1), min(ox + crop.shape[1], x1)
    if ty0 < ty1 and tx0 < tx1:
        out[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = crop[ty0 - oy : ty1 - oy, tx0 - ox : tx1 - ox]
    return out


@dataclass(frozen=True, eq=False)
class Mask:
    """An object mask that never costs a full-image array.

    Attributes
    ----------
    bbox : (y0, x0, y1, x1)
        Where ``crop`` lies in the image, end exclusive; (0, 0, 0, 0) when empty.
    crop : (y1 - y0, x1 - x0) bool array
    score : float
        The model's confidence (SAM's predicted IoU; 1.0 for exact models).
    prompt : dict
        The prompts that produced it, JSON-able, kept in the autosave log.
    """

    bbox: Box
    crop: np.ndarray
    score: float = 1.0
    prompt: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        y0, x0, y1, x1 = self.bbox
        if self.crop.dtype != bool or self.crop.shape != (y1 - y0, x1 - x0):
            raise InvalidLabelError(f"crop {self.crop.shape} {self.crop.dtype} does not match bbox {self.bbox}")

    @classmethod
    def from_array(cls, mask: np.ndarray, offset: tuple[int, int] = (0, 0), score: float = 1.0, prompt=None) -> Mask:
        """The tight mask of a boolean array whose (0, 0) lies at ``offset`` in the image."""
        crop, (y0, x0) = tight(mask, offset)
        bbox = (y0, x0, y0 + crop.shape[0], x0 + crop.shape[1]) if crop.size else (0, 0, 0, 0)
        return cls(bbox, crop, float(score), prompt or {})

    @property
    def area(self) -> int:
        return int(self.crop.sum())

    @property
    def empty(self) -> bool:
        return self.area == 0

    def to_array(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask as a full (H, W) bool array (for small images and tests)."""
        return paste(self.crop, self.bbox[:2], (0, 0, *shape))

    def iou(self, other: Mask) -> float:
        """Intersection over union with another mask, computed on the joint bbox."""
        if self.empty or other.empty:
            return 1.0 if self.empty and other.empty else 0.0
        y0, x0 = min(self.bbox[0], other.bbox[0]), min(self.bbox[1], other.bbox[1])
        y1, x1 = max(self.bbox[2], other.bbox[2]), max(self.bbox[3], other.bbox[3])
        a, b = (paste(m.crop, m.bbox[:2], (y0, x0, y1, x1)) for m in (self, other))
        union = np.count_nonzero(a | b)
        return float(np.count_nonzero(a & b) / union) if union else 1.0
