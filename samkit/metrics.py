"""Comparing instance segmentations: matched objects, IoU, average precision.

The measure of the 2018 Data Science Bowl (and of StarDist and Cellpose
papers): ground-truth and predicted objects are paired one to one by an
optimal assignment on their IoU (Hungarian algorithm), a pair counts as a
true positive at threshold ``t`` when its IoU is >= ``t``, and

    AP(t) = TP / (TP + FP + FN)

(1 when both images are empty). Label images are read block by block, so
zarr arrays and :class:`samkit.LabelImage` of any size work.

Examples
--------
>>> import numpy as np
>>> from samkit.metrics import evaluate
>>> truth = np.array([[1, 1, 0, 2, 2]])
>>> pred = np.array([[3, 3, 0, 0, 5]])
>>> scores = evaluate(truth, pred, thresholds=(0.5, 0.75))
>>> scores.ap.round(2).tolist(), round(scores.mean_iou, 2)  # object 2 is matched with IoU 0.5
([1.0, 0.33], 0.75)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from .errors import InvalidImageError, InvalidSettingError

BLOCK = 2048  # rows and columns read at a time


class Overlaps(NamedTuple):
    """Pixel counts of two label images.

    truth_ids, pred_ids : (n,), (m,) the object ids present (0 excluded)
    truth_area, pred_area : (n,), (m,) pixels of each object
    intersection : (n, m) sparse matrix of shared pixels
    """

    truth_ids: np.ndarray
    pred_ids: np.ndarray
    truth_area: np.ndarray
    pred_area: np.ndarray
    intersection: sparse.csr_matrix

    def iou(self) -> sparse.csr_matrix:
        """(n, m) sparse IoU of every pair of objects that overlap."""
        inter = self.intersection.tocoo()
        union = self.truth_area[inter.row] + self.pred_area[inter.col] - inter.data
        return sparse.csr_matrix((inter.data / union, (inter.row, inter.col)), shape=inter.shape)


class Matches(NamedTuple):
    """One-to-one pairs of ground-truth and predicted objects.

    pairs : (k, 2) int64, (truth id, predicted id) of each pair, by truth id
    iou : (k,) float64, their IoU
    unmatched_truth, unmatched_pred : ids left without a partner
    """

    pairs: np.ndarray
    iou: np.ndarray
    unmatched_truth: np.ndarray
    unmatched_pred: np.ndarray


class Scores(NamedTuple):
    """Instance segmentation scores at several IoU thresholds.

    thresholds : (T,) IoU thresholds
    ap : (T,) TP / (TP + FP + FN) at each threshold
    tp, fp, fn : (T,) int64 counts
    mean_iou : float, mean IoU of the pairs matched at the first threshold (NaN if none)
    matches : Matches, at the first threshold
    """

    thresholds: np.ndarray
    ap: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    mean_iou: float
    matches: Matches


def overlaps(truth, pred) -> Overlaps:
    """The object areas and pairwise intersections of two (H, W) label images of the same shape."""
    truth_shape, pred_shape = _shape(truth, "truth"), _shape(pred, "pred")
    if truth_shape != pred_shape:
        raise InvalidImageError(f"truth has shape {truth_shape} but pred has {pred_shape}; compare label images of one size")
    rows, cols, counts = [], [], []
    truth_area, pred_area = {}, {}
    h, w = truth_shape
    for y in range(0, h, BLOCK):
        for x in range(0, w, BLOCK):
            t = _block(truth, y, x, "truth")
            p = _block(pred, y, x, "pred")
            for ids, area in ((t, truth_area), (p, pred_area)):
                found, n = np.unique(ids[ids > 0], return_counts=True)
                for i, c in zip(found.tolist(), n.tolist()):
                    area[i] = area.get(i, 0) + c
            both = (t > 0) & (p > 0)
            pairs, n = np.unique(np.stack([t[both], p[both]]), axis=1, return_counts=True)
            rows.append(pairs[0])
            cols.append(pairs[1])
            counts.append(n)
    truth_ids = np.array(sorted(truth_area), np.int64)
    pred_ids = np.array(sorted(pred_area), np.int64)
    r, c = np.concatenate(rows), np.concatenate(cols)
    inter = sparse.coo_matrix(
        (np.concatenate(counts).astype(np.float64), (np.searchsorted(truth_ids, r), np.searchsorted(pred_ids, c))),
        shape=(len(truth_ids), len(pred_ids)),
    ).tocsr()  # duplicates (pairs seen in several blocks) are summed
    return Overlaps(
        truth_ids, pred_ids,
        np.array([truth_area[i] for i in truth_ids.tolist()], np.float64),
        np.array([pred_area[i] for i in pred_ids.tolist()], np.float64),
        inter,
    )  # fmt: skip


def match(truth, pred, *, threshold: float = 0.5) -> Matches:
    """Pair objects one to one, maximising the total IoU, and keep the pairs with IoU >= ``threshold``.

    Parameters
    ----------
    truth, pred : (H, W) integer array-like
        Label images (0 = background): numpy, zarr, dask or :class:`samkit.LabelImage`.
    threshold : float
        Least IoU of a pair, in (0, 1].
    """
    return _match(overlaps(truth, pred), _check_threshold(threshold))


def evaluate(truth, pred, *, thresholds=(0.5, 0.75, 0.9)) -> Scores:
    """Average precision TP / (TP + FP + FN) at each IoU threshold, and the mean IoU of matched pairs.

    Parameters
    ----------
    truth, pred : (H, W) integer array-like
        Label images (0 = background): numpy, zarr, dask or :class:`samkit.LabelImage`.
    thresholds : sequence of float
        IoU thresholds in (0, 1]; the first one also defines :attr:`Scores.matches`
        and :attr:`Scores.mean_iou`.

    Returns
    -------
    Scores
    """
    thresholds = np.array([_check_threshold(t) for t in np.atleast_1d(thresholds)], np.float64)
    if thresholds.size == 0:
        raise InvalidSettingError("thresholds is empty; give at least one IoU threshold, e.g. (0.5,)")
    table = overlaps(truth, pred)
    n_truth, n_pred = len(table.truth_ids), len(table.pred_ids)
    all_matches = [_match(table, t) for t in thresholds]
    tp = np.array([len(m.pairs) for m in all_matches], np.int64)
    fp, fn = n_pred - tp, n_truth - tp
    denominator = tp + fp + fn
    ap = np.where(denominator > 0, tp / np.maximum(denominator, 1), 1.0)
    first = all_matches[0]
    mean_iou = float(first.iou.mean()) if len(first.iou) else float("nan")
    return Scores(thresholds, ap, tp, fp, fn, mean_iou, first)


def _match(table: Overlaps, threshold: float) -> Matches:
    iou = table.iou().tocoo()
    keep = iou.data >= threshold
    r, c, v = iou.row[keep], iou.col[keep], iou.data[keep]
    n, m = len(table.truth_ids), len(table.pred_ids)
    # a pair whose two objects have no other candidate is matched as is (always so for thresholds > 0.5)
    alone = (np.bincount(r, minlength=n)[r] == 1) & (np.bincount(c, minlength=m)[c] == 1)
    rows, cols, values = [r[alone]], [c[alone]], [v[alone]]
    if not alone.all():  # the rest: an optimal assignment within each connected group of candidates
        r, c, v = r[~alone], c[~alone], v[~alone]
        graph = sparse.coo_matrix((np.ones(len(r)), (r, n + c)), shape=(n + m, n + m))
        _, group = connected_components(graph, directed=False)
        for g in np.unique(group[r]):
            mine = group[r] == g
            ur, uc = np.unique(r[mine]), np.unique(c[mine])
            dense = np.zeros((len(ur), len(uc)))
            dense[np.searchsorted(ur, r[mine]), np.searchsorted(uc, c[mine])] = v[mine]
            i, j = linear_sum_assignment(dense, maximize=True)
            good = dense[i, j] >= threshold
            rows.append(ur[i[good]])
            cols.append(uc[j[good]])
            values.append(dense[i[good], j[good]])
    rows, cols, values = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    pairs = np.stack([table.truth_ids[rows], table.pred_ids[cols]], axis=1).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    return Matches(
        pairs[order], values[order],
        np.setdiff1d(table.truth_ids, pairs[:, 0]), np.setdiff1d(table.pred_ids, pairs[:, 1]),
    )  # fmt: skip


def _check_threshold(threshold) -> float:
    t = float(threshold)
    if not 0.0 < t <= 1.0:
        raise InvalidSettingError(f"IoU threshold {t:g} must lie in (0, 1]")
    return t


def _shape(labels, name: str) -> tuple[int, int]:
    shape = tuple(int(n) for n in getattr(labels, "shape", np.shape(labels)))
    if len(shape) != 2:
        raise InvalidImageError(f"{name} must be a 2D (H, W) label image, got shape {shape}")
    return shape


def _block(labels, y: int, x: int, name: str) -> np.ndarray:
    block = np.asarray(labels[y : y + BLOCK, x : x + BLOCK])
    if not (np.issubdtype(block.dtype, np.integer) or block.dtype == bool):
        raise InvalidImageError(f"{name} must hold integer labels, not {block.dtype}")
    if block.size and block.min() < 0:
        raise InvalidImageError(f"{name} holds negative labels; ids must be >= 0 (0 = background)")
    return block.astype(np.int64)
