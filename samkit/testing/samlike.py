"""A test model built from ground truth that behaves like SAM where samkit depends on it.

The exact oracle (:class:`~samkit.testing.OracleModel`) answers every prompt
with the true object, so a pipeline that ignores negative points or mixes up
candidates still passes with it. :class:`SamLikeModel` answers from the same
ground truth, but the way SAM does, so those mistakes show:

* it sees only its window: an object cut by the window edge comes back cut;
* each window sees object edges moved by seeded, smooth 1-2 px noise, so two
  overlapping windows disagree slightly at the edges they share;
* a positive point selects the object under it; a point on background gives
  a small blob with a low score, not nothing;
* a negative point on another object removes that object; a negative point
  on a selected object cuts away the part of it nearer to that point than
  to any positive point; one on background changes nothing;
* a box selects the objects lying mostly (> 50 %) inside it;
* one point alone gives three candidates, as SAM's multimask output: a part
  (a disc around the point), the object, and the object with the objects
  touching it, each with a predicted IoU and a stability score ranked as
  SAM's usually are (the object first; only the object passes SAM's default
  filters of 0.88 and 0.95);
* ``mask_input`` (the previous answer as low-res logits) keeps the answer at
  the previous granularity and halves the remaining shape error;
* ``quality`` < 1 shrinks or grows each answer (a seeded choice per object)
  until its IoU with the noisy object is about ``quality``.

Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import ndimage

from ..engine.mask import paste, tight
from ..engine.models import Decoded, point_masks
from ..errors import InvalidSettingError
from ..prompts import LOWRES_SIZE
from .oracle import OracleModel

# (predicted IoU, stability) of each candidate, before a seeded jitter of +-JITTER
OBJECT = (0.95, 0.975)
PART = (0.80, 0.93)
GROUP = (0.76, 0.90)  # the object with its touching neighbours (or a halo around it when it has none)
BLOB = (0.30, 0.55)  # a point on background
JITTER = 0.015
BLOB_RADIUS = 3
MARGIN = 8  # pixels around an answer's objects in which it may grow


class SamLikeModel(OracleModel):
    """A window model that answers prompts from ground truth with SAM's behaviour.

    Parameters
    ----------
    labels : (H, W) integer array-like
        Ground-truth instance labels (0 = background) at level 0.
    noise : float
        Standard deviation, in pixels, of the smooth field that moves object
        edges in each window (default 0.5: edges move by 1 px in places and
        by 2 px here and there; 0 gives the exact edges).
    quality : float
        About the IoU of each answer with the object it designates (default
        1: no shape error beyond ``noise``).
    seed : int
        Seeds the edge noise, score jitter and the shrink-or-grow choice.
    delay : float
        Seconds each window's embedding takes.
    """

    name = "SAM-like test model (ground truth with SAM's behaviour; not SAM)"
    accepts_mask_input = True

    def __init__(self, labels, *, noise: float = 0.5, quality: float = 1.0, seed: int = 0, delay: float = 0.0) -> None:
        super().__init__(labels, delay=delay)
        if not noise >= 0:
            raise InvalidSettingError(f"noise={noise!r}: must be >= 0 (pixels)")
        if not 0 < quality <= 1:
            raise InvalidSettingError(f"quality={quality!r}: must lie in (0, 1]")
        self.noise, self.quality, self.seed = float(noise), float(quality), int(seed)

    def signature(self) -> dict:
        return dict(super().signature(), model="sam-like", noise=self.noise, quality=self.quality, seed=self.seed)

    # -- embedding: the window's objects, edges moved by this window's noise --

    def label_window(self, pixels: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
        objects = super().label_window(pixels, window)
        if self.noise == 0:
            return objects
        return roughen(objects, self.noise, self._rng("edges", *window))

    # -- decoding ----------------------------------------------------------

    def decoder(self, embedding: np.ndarray, window):
        view = _Window(np.asarray(embedding), window)

        def decode(points=None, labels=None, boxes=None, mask_input=None) -> list[Decoded]:
            previous = None if mask_input is None else _from_lowres(mask_input, view.objects.shape)
            if boxes is None:
                return [self._answer(view, points, labels, None, previous)]
            return [self._answer(view, points, labels, box, previous) for box in boxes]

        return decode

    def point_decoder(self, embedding: np.ndarray, window):
        view = _Window(np.asarray(embedding), window)

        def decode_points(points, *, multimask=True, min_score=0.0, min_stability=0.0, stability_offset=1.0, batch=None):
            parts = []
            for k, point in enumerate(np.asarray(points, float).reshape(-1, 2)):
                for (crop, offset), score, stability in self._candidates(view, point[None], None, multimask):
                    if score >= min_score and stability >= min_stability and crop.any():
                        parts.append((k, score, stability, crop, offset))
            return point_masks(parts)

        return decode_points

    def _answer(self, view: "_Window", points, labels, box, previous) -> Decoded:
        pts = np.zeros((0, 2)) if points is None else np.asarray(points, float).reshape(-1, 2)
        lab = np.ones(len(pts), int) if labels is None else np.asarray(labels).reshape(-1).astype(int)
        positive, negative = pts[lab == 1], pts[lab != 1]
        multimask = box is None and len(pts) == 1
        candidates = self._candidates(view, positive, box, multimask)
        if not candidates:
            return Decoded(np.zeros((0, 0), bool), (0, 0), 0.0)
        if previous is not None and multimask:  # the granularity asked for before
            pick = max(candidates, key=lambda c: _iou(c[0], (previous, (0, 0))))
        else:
            pick = max(candidates, key=lambda c: c[1])
        (crop, offset), score = pick[0], pick[1]
        crop, offset = view.cut_negatives(crop, offset, positive, negative)
        quality = self.quality
        if previous is not None:  # refining: half of the remaining error goes
            quality = 1 - (1 - quality) / 2
        crop, offset = self._degrade(view, crop, offset, quality)
        crop, offset = tight(crop, offset)
        return Decoded(crop, offset, float(score))

    def _candidates(self, view: "_Window", positive: np.ndarray, box, multimask: bool) -> list:
        """[((crop, offset), score, stability)] for the prompts, best first when ``multimask``."""
        ids = view.ids_under(positive)
        if box is not None:
            in_box = view.ids_in_box(box)
            ids = [i for i in ids if i in in_box] or in_box
        if not ids:
            centre = positive[0] if len(positive) else None
            if centre is None and box is not None:
                centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            if centre is None:
                return []
            return [(view.blob(centre), *self._scores(BLOB, view, 0, "blob"))]
        whole = (view.union(ids), *self._scores(OBJECT, view, ids[0], "object"))
        if not multimask:
            return [whole]
        part = (view.part(ids[0], positive[0]), *self._scores(PART, view, ids[0], "part"))
        group = (view.group(ids), *self._scores(GROUP, view, ids[0], "group"))
        return [whole, part, group]

    def _scores(self, base, view: "_Window", label: int, kind: str) -> tuple[float, float]:
        jitter = self._rng(kind, label, *view.window).uniform(-JITTER, JITTER, 2)
        return float(min(base[0] + jitter[0], 1.0)), float(min(base[1] + jitter[1], 1.0))

    def _degrade(self, view: "_Window", crop, offset, quality: float):
        """Shrink or grow (seeded per object) until the IoU with the answer is about ``quality``."""
        if quality >= 1 or not crop.any():
            return crop, offset
        padded = np.pad(crop, MARGIN)
        signed = ndimage.distance_transform_edt(padded) - ndimage.distance_transform_edt(~padded)  # > 0 inside
        label = view.label_at(crop, offset)
        grow = self._rng("shape", label).random() < 0.5
        best, best_gap = padded, 1.0
        for step in np.arange(0.5, MARGIN, 0.5):
            shaped = signed > (-step if grow else step)
            gap = abs(_iou((shaped, (0, 0)), (padded, (0, 0))) - quality)
            if gap < best_gap:
                best, best_gap = shaped, gap
        h, w = view.objects.shape
        oy, ox = offset[0] - MARGIN, offset[1] - MARGIN
        best = paste(best, (oy, ox), (0, 0, h, w))  # the model never answers outside its window
        return best, (0, 0)

    def _rng(self, *key) -> np.random.Generator:
        words = [zlib.crc32(str(k).encode()) for k in key]
        return np.random.default_rng([self.seed, *words])


def roughen(objects: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``objects`` with their edges moved by a smooth random field of standard deviation ``noise`` px.

    A pixel inside an object at depth d (1 = on its edge) leaves it where the
    field is below 0.5 - d; a background pixel at distance d from an object
    joins it where the field is above d - 0.5. Objects never take pixels of
    other objects.
    """
    field = ndimage.gaussian_filter(rng.standard_normal(objects.shape), sigma=4.0)
    field *= noise / max(float(field.std()), 1e-12)
    inside = objects > 0
    depth = ndimage.distance_transform_edt(_interior(objects))  # 0 on an object's edge pixels
    distance, (iy, ix) = ndimage.distance_transform_edt(~inside, return_indices=True)
    out = np.where(inside & (field < -0.5 - depth), 0, objects)
    grows = ~inside & (field > distance - 0.5)
    out[grows] = objects[iy[grows], ix[grows]]
    return out.astype(objects.dtype, copy=False)


def _interior(objects: np.ndarray) -> np.ndarray:
    """True on object pixels whose 4 neighbours all belong to the same object (the window edge is no edge)."""
    padded = np.pad(objects, 1, mode="edge")
    core = padded[1:-1, 1:-1]
    same = (core > 0) & (padded[:-2, 1:-1] == core) & (padded[2:, 1:-1] == core)
    return same & (padded[1:-1, :-2] == core) & (padded[1:-1, 2:] == core)


def _from_lowres(mask_input, shape: tuple[int, int]) -> np.ndarray:
    """SAM's (1, 256, 256) low-res logits of a window of ``shape`` -> (h, w) bool mask."""
    logits = np.asarray(mask_input, np.float32).reshape(LOWRES_SIZE, LOWRES_SIZE)
    h, w = shape
    side = max(h, w)  # the window's long side fills the model input
    ys = ((np.arange(h) + 0.5) * LOWRES_SIZE / side).astype(int)
    xs = ((np.arange(w) + 0.5) * LOWRES_SIZE / side).astype(int)
    return logits[ys[:, None], xs[None, :]] > 0


def _iou(a, b) -> float:
    """IoU of two (crop, offset) masks."""
    (ca, oa), (cb, ob) = a, b
    box = (min(oa[0], ob[0]), min(oa[1], ob[1]),
           max(oa[0] + ca.shape[0], ob[0] + cb.shape[0]), max(oa[1] + ca.shape[1], ob[1] + cb.shape[1]))
    pa, pb = paste(ca, oa, box), paste(cb, ob, box)
    union = np.count_nonzero(pa | pb)
    return np.count_nonzero(pa & pb) / union if union else 0.0


class _Window:
    """One window's (noisy) objects, with the lookups the answers need."""

    def __init__(self, objects: np.ndarray, window) -> None:
        self.objects = objects
        self.window = tuple(int(v) for v in window)
        self.slices = ndimage.find_objects(objects)

    def ids_under(self, points: np.ndarray) -> list[int]:
        h, w = self.objects.shape
        ids = []
        for y, x in np.asarray(points, float).reshape(-1, 2):
            label = int(self.objects[min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1)])
            if label and label not in ids:
                ids.append(label)
        return ids

    def ids_in_box(self, box) -> list[int]:
        y0, x0, y1, x1 = (int(round(float(v))) for v in box)
        inside = self.objects[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)]
        ids, counts = np.unique(inside[inside > 0], return_counts=True)
        return [int(i) for i, c in zip(ids, counts) if c > 0.5 * self.area(int(i))]

    def area(self, label: int) -> int:
        box = self.slices[label - 1]
        return int(np.count_nonzero(self.objects[box] == label))

    def bounds(self, ids, margin: int = 0) -> tuple[int, int, int, int]:
        h, w = self.objects.shape
        boxes = np.array([[s[0].start, s[1].start, s[0].stop, s[1].stop] for s in (self.slices[i - 1] for i in ids)])
        return (max(int(boxes[:, 0].min()) - margin, 0), max(int(boxes[:, 1].min()) - margin, 0),
                min(int(boxes[:, 2].max()) + margin, h), min(int(boxes[:, 3].max()) + margin, w))

    def union(self, ids, margin: int = 0):
        y0, x0, y1, x1 = self.bounds(ids, margin)
        return np.isin(self.objects[y0:y1, x0:x1], ids), (y0, x0)

    def part(self, label: int, point) -> tuple[np.ndarray, tuple[int, int]]:
        """The object within a disc around ``point`` (radius 0.6 of the object's equivalent radius)."""
        crop, (oy, ox) = self.union([label])
        radius = max(2.0, 0.6 * np.sqrt(crop.sum() / np.pi))
        ys, xs = np.ogrid[: crop.shape[0], : crop.shape[1]]
        disc = (ys + oy - point[0]) ** 2 + (xs + ox - point[1]) ** 2 <= radius**2
        return tight(crop & disc, (oy, ox))

    def group(self, ids) -> tuple[np.ndarray, tuple[int, int]]:
        """The objects with those touching them; with none touching, the objects and a 3 px halo."""
        crop, (oy, ox) = self.union(ids, margin=2)
        near = ndimage.binary_dilation(crop, iterations=2)
        found = self.objects[oy : oy + crop.shape[0], ox : ox + crop.shape[1]][near & ~crop]
        touching = [int(i) for i in np.unique(found[found > 0])]
        if touching:
            return self.union(list(ids) + touching)
        crop, (oy, ox) = self.union(ids, margin=3)
        halo = ndimage.binary_dilation(crop, iterations=3) & (self.objects[oy : oy + crop.shape[0], ox : ox + crop.shape[1]] == 0)
        return tight(crop | halo, (oy, ox))

    def blob(self, centre) -> tuple[np.ndarray, tuple[int, int]]:
        """A small disc of background around ``centre``."""
        h, w = self.objects.shape
        cy, cx = int(min(max(centre[0], 0), h - 1)), int(min(max(centre[1], 0), w - 1))
        y0, x0 = max(cy - BLOB_RADIUS, 0), max(cx - BLOB_RADIUS, 0)
        y1, x1 = min(cy + BLOB_RADIUS + 1, h), min(cx + BLOB_RADIUS + 1, w)
        ys, xs = np.ogrid[y0:y1, x0:x1]
        disc = ((ys - cy) ** 2 + (xs - cx) ** 2 <= BLOB_RADIUS**2) & (self.objects[y0:y1, x0:x1] == 0)
        return tight(disc, (y0, x0))

    def cut_negatives(self, crop, offset, positive: np.ndarray, negative: np.ndarray):
        """Remove objects under negative points, and the part of a selected object nearer a negative point."""
        if len(negative) == 0 or not crop.any():
            return crop, offset
        oy, ox = offset
        region = self.objects[oy : oy + crop.shape[0], ox : ox + crop.shape[1]]
        keep = crop.copy()
        chosen = set(self.ids_under(positive))
        for label in self.ids_under(negative):
            if label not in chosen:
                keep &= region != label
                continue
            # the object holds both kinds of point: each of its pixels goes with the nearest point
            ys, xs = np.nonzero(keep & (region == label))
            pts = np.concatenate([positive, negative])
            d2 = (ys[:, None] + oy - pts[None, :, 0]) ** 2 + (xs[:, None] + ox - pts[None, :, 1]) ** 2
            nearest_negative = np.argmin(d2, axis=1) >= len(positive)
            keep[ys[nearest_negative], xs[nearest_negative]] = False
        return tight(keep, offset)

    def label_at(self, crop, offset) -> int:
        oy, ox = offset
        found = self.objects[oy : oy + crop.shape[0], ox : ox + crop.shape[1]][crop]
        found = found[found > 0]
        return int(np.bincount(found).argmax()) if found.size else 0
