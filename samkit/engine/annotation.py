"""``Annotation``: the prompt state of interactive segmentation, shared by every front end.

A front end (the Jupyter widget, the napari plugin, a script) turns user
events into calls here: add or remove points, draw a box, commit, undo,
erase. The annotation decodes the current object after every change and
tells listeners; committed objects go into a :class:`samkit.LabelImage`.
The front end only draws.

Decoding can run on the caller's thread (``background=False``: simplest,
for scripts and tests) or on a decode thread (``background=True``: for user
interfaces, whose event loop must never wait for an embedding). In the
background, only the newest prompts are decoded: a decode that finishes
after the prompts changed again is dropped.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable

import numpy as np

from ..errors import InvalidLabelError, InvalidPromptError, NotReadyError, SamkitError
from ..labels import LabelImage
from ..prompts import check_boxes, check_points
from .mask import Mask

log = logging.getLogger(__name__)


class Annotation:
    """Points, box and the current mask for one object at a time; commits into labels.

    Parameters
    ----------
    session : samkit.Session
    labels : samkit.LabelImage, optional
        Where committed objects go (default: a new in-memory one of the
        image's size).
    overwrite : bool
        Committed objects replace existing ones (default: keep them).
    background : bool
        Decode on a background thread and report through :meth:`on_preview`.

    Examples
    --------
    >>> annotation = Annotation(session)                  # doctest: +SKIP
    >>> annotation.add_point(120, 80)                     # doctest: +SKIP
    >>> annotation.add_point(130, 95, positive=False)     # doctest: +SKIP
    >>> annotation.commit()                               # doctest: +SKIP
    1
    """

    def __init__(self, session, labels: LabelImage | None = None, *, overwrite: bool = False, background: bool = False):
        self.session = session
        self.labels = labels if labels is not None else LabelImage(session.shape)
        if tuple(self.labels.shape) != tuple(session.shape):
            raise InvalidLabelError(f"labels shape {tuple(self.labels.shape)} differs from the image's {tuple(session.shape)}")
        self.overwrite = overwrite
        self.points: list[tuple[float, float]] = []
        self.point_labels: list[int] = []
        self.box: tuple[float, float, float, float] | None = None
        self.mask: Mask | None = None
        self.error: SamkitError | None = None
        self.label: int | None = None  # the id the next commit gets; None = labels.next_label
        self._listeners: list[Callable] = []
        self._lock = threading.Lock()
        self._generation = 0
        self._pending: Future | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="samkit-decode") if background else None

    # -- listening -------------------------------------------------------------

    def on_preview(self, callback: Callable[[Mask | None, SamkitError | None], None]) -> Callable:
        """Call ``callback(mask, error)`` whenever the current mask changes (mask None: no object).

        In the background mode it runs on the decode thread.
        """
        self._listeners.append(callback)
        return callback

    def off_preview(self, callback: Callable) -> None:
        """Stop calling ``callback`` (registered with :meth:`on_preview`)."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _tell(self) -> None:
        for callback in list(self._listeners):
            try:
                callback(self.mask, self.error)
            except Exception:  # a broken view must not break annotation
                log.exception("preview callback failed")

    # -- prompts ---------------------------------------------------------------

    def add_point(self, y: float, x: float, positive: bool = True) -> Future | Mask | None:
        """Add a point (1 = object, 0 = not) and decode; returns the mask (or a Future in the background)."""
        check_points([[y, x]], [int(positive)], self.session.shape)
        with self._lock:
            self.points.append((float(y), float(x)))
            self.point_labels.append(int(bool(positive)))
        return self._update()

    def move_point(self, index: int, y: float, x: float) -> Future | Mask | None:
        """Move point ``index`` to (y, x) and decode again."""
        check_points([[y, x]], [1], self.session.shape)
        with self._lock:
            self._check_index(index)
            self.points[index] = (float(y), float(x))
        return self._update()

    def remove_point(self, index: int = -1) -> Future | Mask | None:
        """Remove point ``index`` (default: the last) and decode again."""
        with self._lock:
            self._check_index(index)
            del self.points[index], self.point_labels[index]
        return self._update()

    def set_box(self, box) -> Future | Mask | None:
        """Set the box (y0, x0, y1, x1), or remove it with None, and decode again."""
        if box is not None:
            box = tuple(float(v) for v in check_boxes(box, self.session.shape)[0])
        with self._lock:
            self.box = box
        return self._update()

    def set_prompts(self, points=(), labels=(), box=None) -> Future | Mask | None:
        """Replace every prompt at once (one decode): ``points`` (N, 2) (y, x), ``labels`` (N,) 1/0, ``box`` or None.

        For front ends whose prompt layer reports its whole content after a change.
        """
        points = [(float(y), float(x)) for y, x in np.asarray(points, float).reshape(-1, 2)]
        labels = [int(bool(v)) for v in np.asarray(labels).reshape(-1)]
        if len(points) != len(labels):
            raise InvalidPromptError(f"{len(points)} points but {len(labels)} labels: give one label per point")
        if points:
            check_points(points, labels, self.session.shape)
        if box is not None:
            box = tuple(float(v) for v in check_boxes(box, self.session.shape)[0])
        with self._lock:
            self.points, self.point_labels, self.box = points, labels, box
        if not points and box is None:
            self.clear()
            return None
        return self._update()

    def clear(self) -> None:
        """Drop the prompts and the current mask."""
        with self._lock:
            self.points, self.point_labels, self.box = [], [], None
            self._generation += 1
            self.mask, self.error = None, None
        self._tell()

    @property
    def has_prompts(self) -> bool:
        return bool(self.points) or self.box is not None

    def _check_index(self, index: int) -> None:
        if not -len(self.points) <= index < len(self.points):
            raise InvalidPromptError(f"no point {index}: there are {len(self.points)} points")

    # -- decoding --------------------------------------------------------------

    def _update(self) -> Future | Mask | None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            prompts = (list(self.points), list(self.point_labels), self.box)
        if self._executor is None:
            self._decode(generation, prompts)
            return self.mask
        self._pending = self._executor.submit(self._decode, generation, prompts)
        return self._pending

    def _decode(self, generation: int, prompts) -> None:
        points, point_labels, box = prompts
        mask, error = None, None
        if points or box is not None:
            try:
                mask = self.session.segment(
                    points=np.array(points) if points else None,
                    labels=np.array(point_labels) if points else None,
                    box=box,
                )
            except SamkitError as e:  # shown by the front end, never raised into its event loop
                error = e
        with self._lock:
            if generation != self._generation:  # the prompts changed meanwhile: a newer decode follows
                return
            self.mask, self.error = (None if mask is not None and mask.empty else mask), error
        self._tell()

    @property
    def decoding(self) -> bool:
        """True while a background decode is under way (e.g. waiting for its tile's embedding)."""
        pending = self._pending
        return pending is not None and not pending.done()

    def wait(self, timeout: float | None = None) -> Mask | None:
        """Wait for the newest decode (background mode) and return the current mask."""
        pending = self._pending
        if pending is not None:
            pending.result(timeout)
        return self.mask

    # -- labels ----------------------------------------------------------------

    def commit(self, label: int | None = None, *, timeout: float | None = None) -> int:
        """Write the current mask into the labels as ``label`` (default: the next id); clear the prompts.

        Waits for the decode under way first (at most ``timeout`` seconds; None: as long as it
        takes). The object's ``mode`` attribute says which prompts made it ("clicks", "box", "box+clicks").

        Raises
        ------
        InvalidLabelError
            There is no current mask (no prompt, or the object was not found).
        NotReadyError
            The decode was still running after ``timeout`` seconds; nothing was committed.
        """
        try:
            self.wait(timeout)
        except FutureTimeout as e:
            raise NotReadyError(f"the object is still being worked out after {timeout:g} s (its tile may still be "
                                "embedding); nothing was committed: commit again when it shows") from e  # fmt: skip
        with self._lock:
            mask, points, box = self.mask, bool(self.points), self.box is not None
        if mask is None:
            raise InvalidLabelError("nothing to commit: add a point or a box on an object first")
        chosen = label if label is not None else self.label
        mode = "box+clicks" if box and points else "box" if box else "clicks"
        written = self.labels.commit(mask, chosen, overwrite=self.overwrite, attributes={"mode": mode})
        self.label = None
        self.clear()
        return written

    def undo(self) -> bool:
        """Undo the last prompt if there are prompts, else the last change of the labels."""
        if self.has_prompts:
            with self._lock:
                if self.box is not None and not self.points:
                    self.box = None
                else:
                    self.points.pop(), self.point_labels.pop()
            self._update()
            return True
        return self.labels.undo()

    def redo(self) -> bool:
        """Redo the last undone change of the labels."""
        return self.labels.redo()

    def erase_at(self, y: float, x: float) -> int:
        """Erase the object under (y, x); returns its id (0: nothing there)."""
        check_points([[y, x]], [1], self.session.shape)
        label = int(self.labels[int(y), int(x)])
        if label:
            self.labels.erase(label)
        return label

    def next_label(self) -> int:
        """Start a new object: the next commit gets a fresh id (returned)."""
        self.label = None
        self.clear()
        return self.labels.next_label

    def measure(self, **options):
        """The measurement table of the committed objects, with the image as intensity.

        Spacing, unit and channel names come from the image's metadata;
        ``options`` go to :func:`samkit.measure` (e.g. ``properties=("basic", "shape")``).
        """
        from ..measurement import measure

        options.setdefault("intensity", self.session.image)
        return measure(self.labels, **options)

    def close(self) -> None:
        """Stop the decode thread (background mode)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
