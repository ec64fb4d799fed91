"""The background worker that owns a model's encoder: one thread per model.

Sessions ask it for tile embeddings; it computes them one batch at a time,
urgent requests (a click waiting for its tile) before background ones
(``embed_all``), and never twice for the same tile. Callers get
:class:`concurrent.futures.Future` objects (one per tile) or an
:class:`EmbedJob` (a set of tiles, with progress, ETA and cancel), so a user
interface thread never waits for the encoder unless it chooses to.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from concurrent.futures import Future
from typing import Callable

from ..errors import EmbeddingCancelled

log = logging.getLogger(__name__)

URGENT, BACKGROUND = 0, 1


class EmbedJob:
    """A background embedding request: progress, waiting, cancelling.

    Attributes
    ----------
    total : int
        Tiles requested (including those embedded before).
    done : int
        Tiles embedded so far (or found in the cache).
    error : BaseException or None
        Why the job stopped early, if it did.
    """

    def __init__(self, futures: dict, worker: Worker, progress: Callable | None = None, total: int | None = None) -> None:
        self.futures = futures
        self._worker = worker
        self.total = len(futures) if total is None else total
        self.done = self.total - len(futures)  # the rest were embedded already
        self.error: BaseException | None = None
        self.cancelled = False
        self._progress = progress
        self._finished = threading.Event()
        self._started = time.perf_counter()
        self._lock = threading.Lock()
        if not futures:
            self._finished.set()
        for future in futures.values():
            future.add_done_callback(self._tile_done)

    @property
    def finished(self) -> bool:
        """True once every tile is embedded, or the job was cancelled or failed."""
        return self._finished.is_set()

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, or None before the first tile."""
        if self.done == 0:
            return None
        rate = (time.perf_counter() - self._started) / self.done
        return rate * (self.total - self.done)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until finished (or ``timeout`` seconds); True if finished."""
        return self._finished.wait(timeout)

    def result(self, timeout: float | None = None) -> None:
        """Wait, then raise the job's error if it has one (EmbeddingCancelled if cancelled)."""
        if not self.wait(timeout):
            raise TimeoutError(f"embedding not finished after {timeout} s ({self.done}/{self.total} tiles)")
        if self.error is not None:
            raise self.error

    def cancel(self) -> None:
        """Stop: tiles not started are dropped (a tile a click is waiting for is still embedded)."""
        self.cancelled = True
        self._worker.drop(self.futures.values(), urgent_too=False)

    def _tile_done(self, future: Future) -> None:
        with self._lock:
            error = future.exception() if not future.cancelled() else EmbeddingCancelled("cancelled")
            if error is None:
                self.done += 1
            elif self.error is None:
                self.error = error
            finished = self.done == self.total or (self.error is not None and all(f.done() for f in self.futures.values()))
        if self._progress is not None and error is None:
            try:
                self._progress(self.done, self.total, self.eta)
            except Exception:  # a broken progress bar must not stop the embedding
                log.exception("progress callback failed")
        if finished:
            self._finished.set()


def _taken(future: Future) -> bool:
    """Finished, failed, or being computed: nothing left to schedule."""
    return future.done() or future.running()


class Worker:
    """Embeds tiles for any number of sessions sharing one model, on one thread.

    A request is ``(source, index)``: ``source`` is any object with
    ``compute(indices) -> list of embeddings`` (done here, on the worker
    thread) and ``store`` (where results are put, and found if already there).
    """

    def __init__(self, batch_size: int = 1) -> None:
        self.batch_size = batch_size
        self._heap: list = []
        self._pending: dict = {}  # (id(source), index) -> Future
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def request(self, source, indices, *, urgent: bool = False) -> dict:
        """Futures for the embeddings of ``indices`` of ``source``; already queued tiles are shared."""
        futures = {}
        with self._cond:
            for index in indices:
                key = (id(source), index)
                future = self._pending.get(key)
                if future is None or future.done():
                    future = Future()
                    future.urgent = False
                    self._pending[key] = future
                    heapq.heappush(self._heap, (BACKGROUND, next(self._order), source, index, future))
                if urgent and not future.urgent:  # jump the queue
                    future.urgent = True
                    heapq.heappush(self._heap, (URGENT, next(self._order), source, index, future))
                futures[index] = future
            self._start()
            self._cond.notify()
        return futures

    def cancel(self, source) -> None:
        """Drop every queued tile of ``source``, urgent ones too (their waiters get EmbeddingCancelled)."""
        with self._cond:
            futures = [f for (sid, _), f in self._pending.items() if sid == id(source)]
        self.drop(futures, urgent_too=True)

    def drop(self, futures, *, urgent_too: bool) -> None:
        """Fail the ``futures`` not started yet with EmbeddingCancelled (a tile being embedded finishes)."""
        with self._cond:
            for future in futures:
                if not _taken(future) and (urgent_too or not future.urgent):
                    future.set_exception(EmbeddingCancelled("embedding was cancelled before this tile was embedded"))

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="samkit-embed", daemon=True)
            self._thread.start()

    def _next_batch(self):
        """Pop the next runnable tiles: same source, same priority, up to ``batch_size``."""
        with self._cond:
            while True:
                while self._heap and _taken(self._heap[0][-1]):
                    heapq.heappop(self._heap)
                if self._heap:
                    break
                if not self._cond.wait(timeout=30):
                    if not self._heap:
                        self._thread = None  # idle: let the thread end; request() starts another
                        return None
            priority, _, source, index, future = heapq.heappop(self._heap)
            batch = [(index, future)]
            rest = []
            while self._heap and len(batch) < self.batch_size:
                item = heapq.heappop(self._heap)
                if _taken(item[-1]):
                    continue
                if item[2] is source and item[0] == priority:
                    batch.append((item[3], item[-1]))
                else:
                    rest.append(item)
            for item in rest:
                heapq.heappush(self._heap, item)
            for _, f in batch:
                f.set_running_or_notify_cancel()
            return source, batch

    def _run(self) -> None:
        while True:
            work = self._next_batch()
            if work is None:
                return
            source, batch = work
            if not batch:
                continue
            try:
                embeddings = source.compute([index for index, _ in batch])
            except BaseException as error:  # reported to whoever waits for these tiles
                for _, future in batch:
                    future.set_exception(error)
            else:
                for (_, future), embedding in zip(batch, embeddings):
                    future.set_result(embedding)
            finally:
                with self._cond:
                    for index, future in batch:
                        if self._pending.get((id(source), index)) is future:
                            del self._pending[(id(source), index)]
