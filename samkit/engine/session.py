"""``Session``: one image, one model, tiles embedded on demand, whole objects from clicks.

The object both front ends drive. It reads the image window by window,
embeds windows lazily on a background worker shared by every session on the
same model, keeps embeddings in memory and (optionally) on disk, and turns
prompts in (y, x) image coordinates into :class:`Mask` objects. An object
that crosses window borders is followed into the neighbouring windows and
put back together (see :mod:`samkit.engine.stitch`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from skimage.transform import resize

from ..errors import InvalidPromptError, InvalidSettingError
from ..intensity import DEFAULT_PERCENTILES, IntensityPolicy, sample_pixels
from ..io import open_image
from ..io.identity import pixel_digest
from ..prompts import LOWRES_SIZE, check_boxes, check_points
from . import stitch
from .grid import TileGrid, default_halo
from .mask import Mask, paste, tight
from .models import window_model
from .store import EmbeddingStore
from .worker import EmbedJob, Worker

DEFAULT_TILE = 1024


def worker_for(model) -> Worker:
    """The one background worker of a window model (created on first use)."""
    worker = getattr(model, "_samkit_worker", None)
    if worker is None:
        worker = Worker(batch_size=getattr(model, "batch_size", 1))
        object.__setattr__(model, "_samkit_worker", worker)
    return worker


class Session:
    """Segment objects in one (possibly huge) image with one model.

    Parameters
    ----------
    image : path, array or :class:`samkit.io.Image`
        Anything :func:`samkit.open_image` reads; a 2D plane with optional
        channels (pick a plane of a stack with ``open_image(...).plane(Z=...)``).
    model : Sam, window model, registry name, checkpoint path or ``"classical"``
        One model instance may serve any number of sessions.
    tile_size : int, optional
        Side of the windows the model sees, in pixels of ``level``
        (default: the model's input size, 1024 for SAM).
    halo : int, optional
        Neighbouring windows overlap by ``2 * halo`` pixels (default 128, an
        eighth of windows smaller than 1024 px;
        at least 1: an object is followed into the next window from a
        point inside it that both windows see).
    level : int
        Pyramid level to embed at (0 = full resolution; higher levels see
        larger objects whole). Masks always come back at level 0.
    cache : path, optional
        Keep embeddings on disk: a folder (one store per image, model and
        settings inside it) or a ``.zarr`` path. Default: memory only.
        A stored window is used only when its pixels hash as they did when
        it was embedded (each window is read and hashed once per session),
        so an image changed anywhere gets new embeddings where it changed.
        A change made while a session is open is seen only in the windows
        it has not used yet: open a new session after changing the image.
    channels : sequence of int, optional
        Up to three image channels shown to the model as R, G, B.
    percentiles, value_range
        The intensity mapping, decided once for the image
        (:class:`samkit.intensity.IntensityPolicy`).
    max_windows : int
        Most windows one object may be followed into (default 16).
    memory_bytes : int
        Embeddings kept in memory (default 1 GiB).

    Examples
    --------
    >>> session = samkit.Session("slide.ome.tif", samkit.load_model("vit_b_lm"))  # doctest: +SKIP
    >>> mask = session.segment(points=[[5120, 880]], labels=[1])                  # doctest: +SKIP
    >>> job = session.embed_all(progress=print)                                  # doctest: +SKIP
    """

    def __init__(
        self,
        image,
        model,
        *,
        tile_size: int | None = None,
        halo: int | None = None,
        level: int = 0,
        cache=None,
        channels=None,
        percentiles=DEFAULT_PERCENTILES,
        value_range: tuple[float, float] | None = None,
        max_windows: int = 16,
        memory_bytes: int = 2**30,
    ) -> None:
        self.image = open_image(image).yxc()
        self.model = window_model(model)
        shapes = self.image.level_shapes
        if not 0 <= level < len(shapes):
            raise InvalidSettingError(f"level={level}: the image has {len(shapes)} pyramid level(s), 0..{len(shapes) - 1}")
        self.level = level
        self.shape = tuple(int(n) for n in shapes[0][:2])  # (H, W) at level 0, where prompts live
        level_shape = tuple(int(n) for n in shapes[level][:2])
        self.scale = (self.shape[0] / level_shape[0], self.shape[1] / level_shape[1])
        default = getattr(self.model, "input_size", DEFAULT_TILE)
        side = default if tile_size is None else tile_size  # 0 is refused by the grid, not taken as the default
        halo = default_halo(side) if halo is None else halo
        if halo < 1:
            raise InvalidSettingError(f"halo={halo}: windows must overlap (halo >= 1) for objects to be followed across them")
        self.grid = TileGrid(level_shape, side, halo)
        self.max_windows = max_windows

        def read(y0, x0, y1, x1):
            return self.image.read(y0, x0, y1, x1, level=len(shapes) - 1)

        sample = sample_pixels(read, tuple(shapes[-1][:2]))
        self.intensity = IntensityPolicy.fit(sample, channels=channels, percentiles=percentiles, value_range=value_range)
        emb_shape, emb_dtype = self.model.embedding_spec(self.grid.window_shape)
        self.signature = {
            "format": 1,
            "model": self.model.signature(),
            "grid": self.grid.signature(),
            "level": level,
            "intensity": self.intensity.signature(),
            "image": self.image.identity(),
        }
        self.store = EmbeddingStore(self.signature, self.grid.grid_shape, emb_shape, emb_dtype, path=cache, memory_bytes=memory_bytes)
        self.worker = worker_for(self.model)
        self._digests: dict = {}  # window -> pixel_digest of its pixels, read once per session
        self._decoders: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        ny, nx = self.grid.grid_shape
        return (
            f"Session({self.shape[0]} x {self.shape[1]} image, {self.model.name}, "
            f"{ny} x {nx} windows of {self.grid.tile_size} px at level {self.level}, "
            f"{int(self.store.present().sum())} embedded)"
        )

    # -- embedding ---------------------------------------------------------

    def compute(self, indices) -> list[np.ndarray]:
        """Embed windows ``indices`` now, on the calling thread (the worker calls this)."""
        out, todo = self._cached(indices)
        if todo:
            windows = [self.grid.window(i) for i in todo]
            raw = [self.image.read(*w, level=self.level) for w in windows]
            pixels = np.stack([self.intensity.apply(r) for r in raw])
            embeddings = self.model.embed(pixels, [self._to_level0_box(w) for w in windows])
            for index, window_pixels, embedding in zip(todo, raw, embeddings):
                digest = self._digests[index] = pixel_digest(window_pixels)
                out[index] = self.store.put(index, embedding, digest=digest)  # as stored: cached and fresh agree
        return [out[i] for i in indices]

    def embed(self, region=None, *, progress=None) -> EmbedJob:
        """Embed the windows overlapping ``region`` (y0, x0, y1, x1 at level 0; default: all) in the background.

        Returns at once. ``progress(done, total, eta_seconds)`` is called
        from the worker thread after each window.
        """
        indices = self.windows(region)
        present = self.store.present()
        missing = [i for i in indices if not present[i] or i not in self._digests]  # the worker checks the others
        futures = self.worker.request(self, missing)
        return EmbedJob(futures, self.worker, progress, total=len(indices))

    def windows(self, region=None) -> list[tuple[int, int]]:
        """Indices of the windows overlapping ``region`` (y0, x0, y1, x1 at level 0; default: all)."""
        if region is None:
            return self.grid.indices()
        y0, x0, y1, x1 = check_boxes(region, self.shape)[0]
        sy, sx = self.scale
        return self.grid.overlapping((int(y0 / sy), int(x0 / sx), int(np.ceil(y1 / sy)), int(np.ceil(x1 / sx))))

    def embed_all(self, *, progress=None) -> EmbedJob:
        """Embed every window in the background; see :meth:`embed`."""
        return self.embed(None, progress=progress)

    def cancel(self) -> None:
        """Stop all embedding for this session; prompts waiting for a tile raise EmbeddingCancelled."""
        self.worker.cancel(self)

    def embedded(self) -> np.ndarray:
        """(ny, nx) bool: which windows have embeddings."""
        return self.store.present()

    def _cached(self, indices) -> tuple[dict, list]:
        """({index: embedding} of the windows stored for their current pixels, [indices of the others])."""
        found, missing = {}, []
        for index in indices:
            entry = self.store.get_with_digest(index)
            if entry is not None and entry[1] == self._digest(index):
                found[index] = entry[0]
            else:  # not embedded yet, or embedded from other pixels (the image changed)
                missing.append(index)
        return found, missing

    def _digest(self, index) -> bytes:
        """The pixel digest of window ``index``, read and hashed the first time it is asked for."""
        digest = self._digests.get(index)
        if digest is None:
            digest = self._digests[index] = pixel_digest(self.image.read(*self.grid.window(index), level=self.level))
        return digest

    def _embedding(self, indices, timeout) -> dict:
        out, missing = self._cached(indices)
        if missing:
            futures = self.worker.request(self, missing, urgent=True)
            for index, future in futures.items():
                out[index] = future.result(timeout)
        return out

    def _decoder(self, index, timeout=None):
        with self._lock:
            decoder = self._decoders.get(index)
            if decoder is not None:
                self._decoders.move_to_end(index)
                return decoder
        embedding = self._embedding([index], timeout)[index]
        decoder = self.model.decoder(embedding, self.grid.window(index))
        with self._lock:
            self._decoders[index] = decoder
            while len(self._decoders) > 8:
                self._decoders.popitem(last=False)
        return decoder

    # -- prompts -> masks ----------------------------------------------------

    def segment(self, points=None, labels=None, box=None, mask_input: Mask | None = None, *, timeout=None):
        """The object designated by the prompts, whole even across windows.

        Parameters
        ----------
        points : (N, 2) array_like, optional
            (y, x) in image pixels (level 0).
        labels : (N,) array_like, optional
            1 = the object, 0 = not the object.
        box : (4,) or (B, 4) array_like, optional
            (y0, x0, y1, x1). Several boxes give one mask each.
        mask_input : Mask, optional
            A previous mask of this object, to refine (SAM only).
        timeout : float, optional
            Most seconds to wait for a window's embedding.

        Returns
        -------
        Mask, or a list of Mask for a (B, 4) box array.
        """
        if points is None and box is None:
            raise InvalidPromptError("no prompt given: pass points (+ labels) or a box")
        if mask_input is not None and not isinstance(mask_input, Mask):
            raise InvalidPromptError(
                f"mask_input must be a samkit.Mask from an earlier segment() call, not {type(mask_input).__name__}"
            )
        pts = lab = None
        if points is not None:
            pts, lab = check_points(points, labels, self.shape)
            if pts.shape[0] != 1:
                raise InvalidPromptError("points must be (N, 2): one object per call (use boxes for many)")
            pts, lab = pts[0] / self.scale, lab[0]
        boxes = None
        if box is not None:
            boxes = check_boxes(box, self.shape) / np.tile(self.scale, 2)
            if pts is not None and len(boxes) > 1:
                raise InvalidPromptError("points can be combined with one box, not several")
        prompt = {
            "points": None if points is None else np.asarray(points, float).tolist(),
            "labels": None if labels is None else np.asarray(labels).astype(int).tolist(),
            "box": None if box is None else np.asarray(box, float).tolist(),
            "model": self.model.name,
        }
        if boxes is None or len(boxes) == 1:
            piece, score, route = self._grow(pts, lab, None if boxes is None else boxes[0], mask_input, timeout)
            return self._mask(piece, score, dict(prompt, **route))
        starts: dict = {}  # boxes decoded in a batch per window, then each object followed on its own
        for i, b in enumerate(boxes):
            starts.setdefault(self.grid.best_window([b[0], b[2] - 1], [b[1], b[3] - 1]), []).append(i)
        masks = [None] * len(boxes)
        for index, members in starts.items():
            y0, x0, y1, x1 = self.grid.window(index)
            clipped = np.clip(boxes[members], (y0, x0, y0, x0), (y1, x1, y1, x1)) - (y0, x0, y0, x0)
            decoded = self._decoder(index, timeout)(boxes=clipped)
            for i, first in zip(members, decoded):
                piece, score, route = self._grow(None, None, boxes[i], None, timeout, first=first)
                masks[i] = self._mask(piece, score, dict(prompt, box=np.asarray(box, float)[i].tolist(), **route))
        return masks

    def _grow(self, pts, lab, box, mask_input, timeout, first=None):
        """Decode in the best window (or take its result, ``first``), then follow the object into
        neighbours until it stops at no window edge."""
        grid = self.grid
        corners = [] if box is None else [[box[0], box[1]], [box[2] - 1, box[3] - 1]]
        positive = [] if pts is None else [p for p, l in zip(pts, lab) if l == 1]
        anchor = np.array(positive + corners if positive or corners else list(pts))
        start = grid.best_window(anchor[:, 0], anchor[:, 1])
        queue = [start]
        for p in positive:  # positive points the first window misses bring their own windows
            holder = grid.best_window([p[0]], [p[1]])
            if holder not in queue:
                queue.append(holder)
        pieces: dict = {}
        merged: stitch.Piece = (np.zeros((0, 0), bool), (0, 0))
        score, truncated = 0.0, False
        while queue:
            index = queue.pop(0)
            if index in pieces:
                continue
            if len(pieces) >= self.max_windows:
                truncated = True
                break
            window = grid.window(index)
            decoded = self._decode_in(
                index, window, pts, lab, box if index == start else None, merged, mask_input, timeout,
                first if index == start else None,
            )
            if decoded is None:
                pieces[index] = (np.zeros((0, 0), bool), (0, 0))
                continue
            crop, offset, window_score = decoded
            if index == start:
                score = window_score
            pieces[index] = (crop, offset)
            merged = stitch.merge(grid, pieces)
            queue += [n for n in stitch.neighbours(grid, index, (crop, offset)) if n not in pieces and n not in queue]
        return merged, score, {"windows": [list(i) for i in pieces], "truncated": truncated}

    def _decode_in(self, index, window, pts, lab, box, merged, mask_input, timeout, result=None):
        """Decode in one window: the user's prompts inside it, plus a seed inside what is known of the object
        (``result``: already decoded)."""
        y0, x0, y1, x1 = window
        w_pts, w_lab = [], []
        if pts is not None:
            inside = (pts[:, 0] >= y0) & (pts[:, 0] < y1) & (pts[:, 1] >= x0) & (pts[:, 1] < x1)
            w_pts, w_lab = list(pts[inside] - (y0, x0)), list(lab[inside])
        known = stitch.window_part(merged, window)
        if known.any() and not any(w_lab):
            seed = stitch.seed_point(known)
            w_pts.append(np.array(seed, float))
            w_lab.append(1)
        w_box = None
        if box is not None:
            w_box = np.array([max(box[0], y0), max(box[1], x0), min(box[2], y1), min(box[3], x1)]) - (y0, x0, y0, x0)
        if not any(w_lab) and w_box is None:
            return None  # nothing designates the object here
        if result is None:
            refine = mask_input is not None and getattr(self.model, "accepts_mask_input", False)
            mask_logits = self._lowres(mask_input, window) if refine else None
            result = self._decoder(index, timeout)(
                points=np.array(w_pts) if w_pts else None,
                labels=np.array(w_lab) if w_pts else None,
                boxes=None if w_box is None else w_box[None],
                mask_input=mask_logits,
            )[0]
        crop, (oy, ox) = tight(result.crop, result.offset)
        if known.any():  # keep only what is connected to the object as known so far
            full = paste(crop, (oy, ox), (0, 0, y1 - y0, x1 - x0))
            keep = known.copy()
            for (py, px), l in zip(w_pts, w_lab):
                keep[int(py), int(px)] |= bool(l)
            crop, (oy, ox) = tight(stitch.connected_to(full, keep))
        return crop, (oy + y0, ox + x0), result.score

    def _lowres(self, mask: Mask, window) -> np.ndarray:
        """A previous mask as SAM low-res logits for ``window`` (approximate: +-10 inside/outside)."""
        sy, sx = self.scale
        y0, x0, y1, x1 = mask.bbox
        level_piece = (mask.crop[:: max(1, round(sy)), :: max(1, round(sx))], (int(y0 / sy), int(x0 / sx)))
        part = stitch.window_part(level_piece, window).astype(np.float32)
        h, w = part.shape
        if getattr(self.model, "stretches_input", False):  # SAM 2: the window fills the whole square input
            small = resize(part, (LOWRES_SIZE, LOWRES_SIZE), order=1)
        else:  # SAM: the window's long side fills the model input
            scale = LOWRES_SIZE / max(h, w)
            small = resize(part, (max(1, round(h * scale)), max(1, round(w * scale))), order=1)
        logits = np.full((LOWRES_SIZE, LOWRES_SIZE), -10.0, np.float32)
        logits[: small.shape[0], : small.shape[1]] = (small - 0.5) * 20
        return logits[None]

    def _to_level0_box(self, box) -> tuple[int, int, int, int]:
        sy, sx = self.scale
        y0, x0, y1, x1 = box
        return (int(round(y0 * sy)), int(round(x0 * sx)), min(int(round(y1 * sy)), self.shape[0]), min(int(round(x1 * sx)), self.shape[1]))

    def _mask(self, piece: stitch.Piece, score: float, prompt: dict) -> Mask:
        crop, (oy, ox) = piece
        if crop.size == 0:
            return Mask((0, 0, 0, 0), np.zeros((0, 0), bool), score, prompt)
        if self.scale == (1.0, 1.0):
            return Mask((oy, ox, oy + crop.shape[0], ox + crop.shape[1]), crop, score, prompt)
        y0, x0, y1, x1 = self._to_level0_box((oy, ox, oy + crop.shape[0], ox + crop.shape[1]))
        sy, sx = self.scale  # nearest neighbour: each level-0 pixel takes its level pixel's value
        rows = np.minimum(((np.arange(y0, y1) + 0.5) / sy).astype(int) - oy, crop.shape[0] - 1)
        cols = np.minimum(((np.arange(x0, x1) + 0.5) / sx).astype(int) - ox, crop.shape[1] - 1)
        return Mask.from_array(crop[np.maximum(rows, 0)[:, None], np.maximum(cols, 0)[None, :]], (y0, x0), score, prompt)
