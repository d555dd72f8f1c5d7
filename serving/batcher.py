"""Micro-batching behind one bounded queue: concurrent requests are grouped into one model call.

A request waits at most ``serve.max_wait_ms`` for companions — and not at all when no other request is in
flight, so a lone client pays no batching delay — and a model call holds at most ``serve.max_batch``
images (a multi-image request is one job, never split, so one model answers all its images). At most
``serve.queue_size`` jobs may wait, counted over every lane (predictions and Grad-CAM explanations share
the limit); beyond that :class:`Overloaded` is raised and the app answers 503 with ``Retry-After``. Each
job carries the predictor its request resolved once (and decoded its photo for): a batch only groups jobs
of one predictor, so a hot reload between decode and batch never mixes versions or input sizes.

Config keys: ``serve.max_batch``, ``serve.max_wait_ms``, ``serve.queue_size``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from serving.predictor import Assessed, Predictor

JOB_TIMEOUT_S = 30.0


class Overloaded(RuntimeError):
    """Too many requests are waiting, or one waited too long."""


class _Closed(Exception):
    """The lane was closed and has nothing left to do."""


class Admission:
    """How many jobs may wait, over all lanes together."""

    def __init__(self, limit: int) -> None:
        self.limit, self.waiting = limit, 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        """Take a place in the queue, or raise :class:`Overloaded`."""
        with self._lock:
            if self.waiting >= self.limit:
                raise Overloaded("too many requests waiting")
            self.waiting += 1

    def leave(self) -> None:
        """Give a place back (the job left the queue to run)."""
        with self._lock:
            self.waiting -= 1


@dataclass
class _Job:
    payload: Any  # a (n, h, w, 3) stack for predictions, a function of the predictor for serial work
    predictor: Predictor  # resolved once by the request: the one that computes this job
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None

    def finish(self, result: Any) -> None:
        """Hand the result to the waiting request."""
        self.result = result
        self.done.set()

    def fail(self, error: BaseException) -> None:
        """Hand an error to the waiting request."""
        self.error = error
        self.done.set()

    def wait(self) -> tuple[Any, Predictor]:
        """(result, predictor) once the job is done; raises its error, or :class:`Overloaded` after 30 s."""
        if not self.done.wait(JOB_TIMEOUT_S):
            raise Overloaded("timed out waiting for the model")
        if self.error is not None:
            raise self.error
        return self.result, self.predictor


class _Lane:
    """A worker thread taking jobs from its own deque; places are counted by the shared admission."""

    def __init__(self, name: str, admission: Admission) -> None:
        self.admission = admission
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._in_flight = 0  # submitted and not yet answered
        self._closed = False
        threading.Thread(target=self._run, name=name, daemon=True).start()

    @property
    def idle(self) -> bool:
        """Whether no job is waiting or running in this lane right now."""
        return self._in_flight == 0

    def close(self) -> None:
        """Stop the worker once the jobs already queued are done (a pinned model version dropped)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            self._loop()
        except _Closed:
            pass

    def _submit(self, payload: Any, predictor: Predictor) -> tuple[Any, Predictor]:
        self.admission.enter()
        job = _Job(payload, predictor)
        with self._cond:
            self._jobs.append(job)
            self._in_flight += 1
            self._cond.notify()
        try:
            return job.wait()
        finally:
            with self._cond:
                self._in_flight -= 1

    def _take(self) -> _Job:
        """The next job, waiting for one; raises :class:`_Closed` once the lane is closed and empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._jobs or self._closed)
            if not self._jobs:
                raise _Closed
            job = self._jobs.popleft()
        self.admission.leave()
        return job

    def _loop(self) -> None:
        raise NotImplementedError


class MicroBatcher(_Lane):
    """Runs each job's ``predictor.assess`` on batches formed from concurrent :meth:`submit` calls."""

    def __init__(
        self,
        max_batch: int,
        max_wait_ms: float,
        queue_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000
        self._on_batch = on_batch or (lambda n: None)
        super().__init__("stj-batcher", admission or Admission(queue_size or 64))

    def submit(self, pixels: np.ndarray, predictor: Predictor) -> tuple[Assessed, Predictor]:
        """One image (decoded for ``predictor``) assessed by ``predictor``, which is returned too."""
        return self.submit_many(pixels[None], predictor)

    def submit_many(self, stack: np.ndarray, predictor: Predictor) -> tuple[Assessed, Predictor]:
        """A stack of images assessed (one job: ``predictor`` computes all of them)."""
        return self._submit(stack, predictor)

    def _companions(self, first: _Job) -> list[_Job]:
        batch, images = [first], len(first.payload)
        with self._cond:
            alone = self._in_flight <= 1 and not self._jobs
        deadline = time.monotonic() + (0 if alone else self.max_wait)
        while images < self.max_batch:
            with self._cond:
                if not self._cond.wait_for(lambda: self._jobs, max(0.0, deadline - time.monotonic())):
                    break
                following = self._jobs[0]
                if following.predictor is not first.predictor or images + len(following.payload) > self.max_batch:
                    break  # another model's job, or one that does not fit: it starts the next batch
                job = self._jobs.popleft()
            self.admission.leave()
            batch.append(job)
            images += len(job.payload)
        return batch

    def _loop(self) -> None:
        while True:
            batch = self._companions(self._take())
            try:
                assessed = batch[0].predictor.assess(np.concatenate([job.payload for job in batch]))
            except BaseException as exc:  # handed to each waiting request, never kills the loop
                for job in batch:
                    job.fail(exc)
                continue
            self._on_batch(len(assessed.probs))
            start = 0
            for job in batch:
                job.finish(assessed.rows(start, start + len(job.payload)))
                start += len(job.payload)


class SerialLane(_Lane):
    """Runs heavier one-at-a-time work (Grad-CAM) on a request's predictor, behind the same admission."""

    def __init__(self, admission: Admission) -> None:
        super().__init__("stj-serial", admission)

    def run(self, work: Callable[[Predictor], Any], predictor: Predictor) -> tuple[Any, Predictor]:
        """``work(predictor)``; returns its result and ``predictor``."""
        return self._submit(work, predictor)

    def _loop(self) -> None:
        while True:
            job = self._take()
            try:
                job.finish(job.payload(job.predictor))
            except BaseException as exc:
                job.fail(exc)
