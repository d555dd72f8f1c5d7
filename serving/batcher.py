"""Micro-batching: concurrent requests are grouped into one model call, with a bounded queue.

A request waits at most ``serve.max_wait_ms`` for companions — and not at all when no other request is in
flight, so a lone client pays no batching delay — a batch holds at most ``serve.max_batch``
images, and at most ``serve.queue_size`` requests wait; beyond that :class:`Overloaded` is raised (the app
answers 503 with ``Retry-After``). Each batch runs on the predictor current when it starts, so a hot
reload never mixes versions inside one batch.

Config keys: ``serve.max_batch``, ``serve.max_wait_ms``, ``serve.queue_size``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Overloaded(RuntimeError):
    """The request queue is full."""


@dataclass
class _Job:
    pixels: np.ndarray
    done: threading.Event = field(default_factory=threading.Event)
    result: np.ndarray | None = None
    predictor: Any = None
    error: BaseException | None = None


class MicroBatcher:
    """Runs ``current().predict`` on batches formed from concurrent :meth:`submit` calls."""

    def __init__(
        self,
        current: Callable[[], Any],
        max_batch: int,
        max_wait_ms: float,
        queue_size: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._current, self.max_batch, self.max_wait = current, max_batch, max_wait_ms / 1000
        self._queue: queue.Queue[_Job] = queue.Queue(maxsize=queue_size)
        self._on_batch = on_batch or (lambda n: None)
        self._in_flight = 0  # submitted and not yet answered
        self._count_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="stj-batcher", daemon=True)
        self._thread.start()

    def submit(self, pixels: np.ndarray, timeout_s: float = 30.0) -> tuple[np.ndarray, Any]:
        """Probabilities for one image, and the predictor that computed them."""
        job = _Job(pixels)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded("too many requests waiting") from None
        with self._count_lock:
            self._in_flight += 1
        try:
            answered = job.done.wait(timeout_s)
        finally:
            with self._count_lock:
                self._in_flight -= 1
        if not answered:
            raise Overloaded("timed out waiting for the model")
        if job.error is not None:
            raise job.error
        return job.result, job.predictor

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            with self._count_lock:
                alone = self._in_flight <= 1 and self._queue.empty()
            deadline = time.monotonic() + (0 if alone else self.max_wait)
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            predictor = self._current()
            try:
                probs = predictor.predict(np.stack([job.pixels for job in batch]))
            except BaseException as exc:  # handed to each waiting request, never kills the loop
                for job in batch:
                    job.error = exc
                    job.done.set()
                continue
            self._on_batch(len(batch))
            for job, row in zip(batch, probs, strict=True):
                job.result, job.predictor = row, predictor
                job.done.set()
