"""Size-aware prompts for SAM without an instance decoder: prompts where the window has objects.

For one window, with the object size ``d`` decided for the whole image
(:mod:`samkit.automatic.scale`):

1. *Candidates*: points every ``d / 6`` pixels where the image is
   significantly brighter or darker than its background
   (:mod:`samkit.automatic.contrast`), first at 3 noise units, then at 1.5;
   a point's evidence is its significance times its depth inside the
   significant region (capped at ``d / 2``), so object centres come first.
   Then a coarse grid (every ``2 d`` pixels, at most 32 x 32) for objects
   much larger than ``d``. Only points within ``d`` of the window's core are
   used: the rest of the window belongs to its neighbours.
2. *Decoding*, ``points_per_batch`` prompts at a time, at most one per
   ``d / 2`` cell in a batch. The decoder's answers steer what comes next:
   candidates inside a mask found so far (grown by a disc of ``d / 8``) are skipped; a
   prompt that finds nothing rules out the significant region around it
   (within ``d / 2``); and each block and polarity is ranked by the share of
   its prompts that found an object (Laplace's rule of succession), so
   prompts go where objects are found: the right polarity, away from
   background texture.
3. Masks kept by SAM's filters (predicted IoU, stability), box NMS and
   ``min_area``, as in :mod:`samkit.automatic.generate`.

At most ``max_prompts`` prompts (decoder calls) per window, 1024 by default
(SAM's 32 x 32 grid): in a window with fewer objects far fewer are used.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from skimage.morphology import disk

from ..engine.mask import paste
from . import generate
from .contrast import Significance, grey, significance

HALF = 0.5  # first round: only pixels above this share of the strongest significance within d
TIERS = (3.0, 1.5)  # significance (noise units) of the first and second round of candidates
MAX_RANK_SIGNIFICANCE = 20.0  # beyond this, more contrast does not make a point more likely an object
GRID_CELLS = 32  # the coarse grid has at most this many points per side
STEP = 1 / 6  # candidates every STEP * d pixels
SEPARATION = 0.75  # prompts of one batch lie at least this many object sizes apart
MISS = 1 / 2  # a prompt that finds nothing rules out the significant region within MISS * d


class Candidates:
    """The prompt candidates of one window, ordered by evidence and by the decoder's answers so far.

    Parameters
    ----------
    sig : Significance
    object_size : float
    area : (y0, x0, y1, x1)
        Window coordinates where prompts may go.
    """

    def __init__(self, sig: Significance, object_size: float, area) -> None:
        d = float(object_size)
        shape = sig.bright.shape
        step = max(1, int(round(d * STEP)))
        ys, xs = np.mgrid[step // 2 : shape[0] : step, step // 2 : shape[1] : step]
        ys, xs = ys.ravel(), xs.ravel()
        inside = (ys >= area[0]) & (ys < area[2]) & (xs >= area[1]) & (xs < area[3])
        ys, xs = ys[inside], xs[inside]
        nby = -(-shape[0] // sig.block)
        nbx = -(-shape[1] // sig.block)
        points, tiers, ranks, arms = [], [], [], []
        taken = np.zeros(len(ys), bool)
        peaks = [ndimage.maximum_filter(v, size=max(3, int(d))) for v in (sig.bright, sig.dark)]
        for tier, threshold in enumerate(TIERS):
            for polarity, values in enumerate((sig.bright, sig.dark)):
                region = values >= threshold
                if tier == 0:  # object bodies first: above half the strongest significance nearby (no halos)
                    region &= values >= HALF * peaks[polarity]
                depth = np.minimum(ndimage.distance_transform_edt(region), d / 2)[ys, xs]
                new = (depth >= 1) & ~taken
                taken |= new
                points.append(np.stack([ys[new], xs[new]], axis=1))
                tiers.append(np.full(new.sum(), tier))
                ranks.append(depth[new] * np.minimum(values[ys[new], xs[new]], MAX_RANK_SIGNIFICANCE))
                arms.append((polarity * nby + ys[new] // sig.block) * nbx + xs[new] // sig.block)
        # a coarse grid for large objects, then ever finer ones (coarse to fine, so a budget that runs out
        # leaves no part of the window unvisited) for what the contrast missed
        spacings = (max(8.0, 2 * d, max(shape) / GRID_CELLS), max(2.0, d), max(2.0, d / 2), max(2.0, d / 4))
        seen = set()
        for tier, spacing in enumerate(spacings, start=len(TIERS)):
            grid = np.array([p for p in _grid(shape, spacing, area).tolist() if tuple(p) not in seen], int).reshape(-1, 2)
            seen.update(map(tuple, grid.tolist()))
            points.append(grid)
            tiers.append(np.full(len(grid), tier))
            ranks.append(np.zeros(len(grid)))
            arms.append(np.full(len(grid), 2 * nby * nbx))
        self.points = np.concatenate(points).astype(int).reshape(-1, 2)
        self.tier = np.concatenate(tiers)
        self.rank = np.concatenate(ranks)
        self.arm = np.concatenate(arms).astype(int)
        self.found = np.zeros(2 * nby * nbx + 1)
        self.tried = np.zeros(2 * nby * nbx + 1)
        self.open = np.ones(len(self.points), bool)
        self.sig, self.object_size = sig, d
        self.separation = max(1.0, SEPARATION * d)

    def next(self, explained: np.ndarray, found: np.ndarray, count: int) -> np.ndarray:
        """Indices of up to ``count`` open candidates, best first, no two closer than ``SEPARATION * d`` (two
        prompts into one object in a batch waste a call). Candidates inside ``explained`` are closed; the
        fine grid, the last resort, only skips what was ``found``."""
        ys, xs = self.points[:, 0], self.points[:, 1]
        self.open &= ~np.where(self.tier > len(TIERS), found[ys, xs], explained[ys, xs])
        index = np.flatnonzero(self.open)
        if index.size == 0 or count <= 0:
            return index[:0]
        share = (self.found + 1) / (self.tried + 2)
        order = index[np.lexsort((-self.rank[index] * share[self.arm[index]], self.tier[index]))]
        chosen, taken = [], {}
        reach = self.separation**2
        for i in order:
            y, x = self.points[i]
            cy, cx = int(y // self.separation), int(x // self.separation)
            near = (taken.get((cy + a, cx + b), ()) for a in (-1, 0, 1) for b in (-1, 0, 1))
            if any((y - py) ** 2 + (x - px) ** 2 < reach for cell in near for py, px in cell):
                continue
            taken.setdefault((cy, cx), []).append((y, x))
            chosen.append(i)
            if len(chosen) == count:
                break
        return np.array(chosen, int)

    def answer(self, chosen: np.ndarray, hits: np.ndarray, explained: np.ndarray) -> None:
        """Record the decoder's answers to ``chosen`` (True: an object was found); a miss rules out the
        significant region around it."""
        self.open[chosen] = False
        np.add.at(self.tried, self.arm[chosen], 1)
        np.add.at(self.found, self.arm[chosen[hits]], 1)
        radius = max(1, int(self.object_size * MISS))
        h, w = explained.shape
        for i in chosen[~hits]:
            y, x = self.points[i]
            y0, x0, y1, x1 = max(y - radius, 0), max(x - radius, 0), min(y + radius + 1, h), min(x + radius + 1, w)
            if self.tier[i] < len(TIERS):
                values = self.sig.bright if self.arm[i] < len(self.found) // 2 else self.sig.dark
                region, _ = ndimage.label(values[y0:y1, x0:x1] >= TIERS[self.tier[i]])
                here = region[y - y0, x - x0]
                if here:
                    explained[y0:y1, x0:x1] |= region == here
            explained[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3] = True


def _grid(shape, spacing: float, area) -> np.ndarray:
    """(n, 2) int points of a square grid of ``spacing`` over a window of ``shape``, inside ``area``."""
    ys = np.arange(spacing / 2, shape[0], spacing).astype(int)
    xs = np.arange(spacing / 2, shape[1], spacing).astype(int)
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)
    inside = (grid[:, 0] >= area[0]) & (grid[:, 0] < area[2]) & (grid[:, 1] >= area[1]) & (grid[:, 1] < area[3])
    return grid[inside]


def window_objects(decode_points, pixels: np.ndarray, settings, inner_edges=(None,) * 4, area=None) -> list:
    """The masks of one window found by size-aware prompts (see the module docstring).

    Parameters
    ----------
    decode_points : callable
        The window's ``point_decoder``.
    pixels : (h, w, 3) uint8
        The window as the model sees it (the image's intensity policy applied).
    settings : samkit.automatic.Settings
        With ``object_size`` decided.
    inner_edges : (y0, x0, y1, x1)
        See :func:`samkit.automatic.generate.clean`.
    area : (y0, x0, y1, x1), optional
        Window coordinates where prompts may go (default: the whole window).

    Returns
    -------
    list of :class:`samkit.automatic.generate.Found`
    """
    shape = pixels.shape[:2]
    d = float(settings.object_size)
    area = (0, 0, *shape) if area is None else area
    candidates = Candidates(significance(grey(pixels), d), d, area)
    explained = np.zeros(shape, bool)  # found objects with a margin (a disc of d / 8), and what prompts that found nothing rule out
    found_pixels = np.zeros(shape, bool)
    grow = max(1, int(round(d / 8)))
    disc = disk(grow).astype(bool)
    found, calls = [], 0
    while calls < settings.max_prompts:
        chosen = candidates.next(explained, found_pixels, min(settings.points_per_batch, settings.max_prompts - calls))
        if chosen.size == 0:
            break
        answers = decode_points(
            candidates.points[chosen].astype(np.float64) + 0.5, multimask=True, min_score=settings.pred_iou_thresh,
            min_stability=settings.stability_score_thresh, stability_offset=settings.stability_score_offset,
            batch=settings.points_per_batch,
        )  # fmt: skip
        calls += len(chosen)
        masks = generate.masks_of(answers)
        hits = np.zeros(len(chosen), bool)
        best: dict = {}
        for k, mask in zip(answers.point.tolist(), masks):
            hits[k] = True
            if k not in best or mask.score > best[k].score:
                best[k] = mask
        for mask in best.values():  # what a prompt found explains its pixels and a margin around them
            oy, ox = mask.offset
            box = (max(oy - grow, 0), max(ox - grow, 0), min(oy + mask.crop.shape[0] + grow, shape[0]),
                   min(ox + mask.crop.shape[1] + grow, shape[1]))  # fmt: skip
            crop = paste(mask.crop, mask.offset, box)
            explained[box[0] : box[2], box[1] : box[3]] |= ndimage.binary_dilation(crop, disc)
            found_pixels[box[0] : box[2], box[1] : box[3]] |= crop
        candidates.answer(chosen, hits, explained)
        found += masks
    return generate.suppress(found, settings, inner_edges)
