"""``Mask``: one object as a bounding box in image coordinates plus a boolean crop."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end exclusive


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
            raise ValueError(f"crop {self.crop.shape} {self.crop.dtype} does not match bbox {self.bbox}")

    @classmethod
    def from_array(cls, mask: np.ndarray, offset: tuple[int, int] = (0, 0), score: float = 1.0, prompt=None) -> Mask:
        """The tight mask of a boolean array whose (0, 0) lies at ``offset`` in the image."""
        mask = np.asarray(mask, dtype=bool)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            return cls((0, 0, 0, 0), np.zeros((0, 0), bool), score, prompt or {})
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        oy, ox = offset
        bbox = (int(y0 + oy), int(x0 + ox), int(y1 + oy), int(x1 + ox))
        return cls(bbox, np.ascontiguousarray(mask[y0:y1, x0:x1]), float(score), prompt or {})

    @property
    def area(self) -> int:
        return int(self.crop.sum())

    @property
    def empty(self) -> bool:
        return self.area == 0

    def to_array(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask as a full (H, W) bool array (for small images and tests)."""
        out = np.zeros(shape, bool)
        y0, x0, y1, x1 = self.bbox
        out[y0:y1, x0:x1] = self.crop
        return out

    def iou(self, other: Mask) -> float:
        """Intersection over union with another mask, computed on the joint bbox."""
        if self.empty or other.empty:
            return 1.0 if self.empty and other.empty else 0.0
        y0, x0 = min(self.bbox[0], other.bbox[0]), min(self.bbox[1], other.bbox[1])
        y1, x1 = max(self.bbox[2], other.bbox[2]), max(self.bbox[3], other.bbox[3])
        a, b = (m._paste((y0, x0, y1, x1)) for m in (self, other))
        union = np.count_nonzero(a | b)
        return float(np.count_nonzero(a & b) / union) if union else 1.0

    def _paste(self, box: Box) -> np.ndarray:
        out = np.zeros((box[2] - box[0], box[3] - box[1]), bool)
        y0, x0, y1, x1 = self.bbox
        out[y0 - box[0] : y1 - box[0], x0 - box[1] : x1 - box[1]] = self.crop
        return out
