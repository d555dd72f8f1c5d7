"""The challenger run in a child process at the CPU's idle priority, so that it never takes a core from the
champion.

A thread with less work to do is not enough on a few cores: once the challenger's inference has started, a
request arriving for the champion shares the cores with it (measured with ``make bench-serve`` on 2 cores, a
ResNet50 challenger beside a Lite0 champion, every request mirrored: the champion's p50 at one client went
from 14.5 to 32.1 ms). The child runs under ``SCHED_IDLE`` (nice 19 where that is refused), which every thread
of its runtime inherits, so the kernel gives it only the cycles the champion leaves. It loads the model
itself and answers over a pipe; it exits when asked, when its pipe closes, or when the worker that started it
is gone (checked every second), so a killed worker leaves no child behind. The child also decodes: the
worker sends the uploads' bytes as they came (tens of KB a photo, not the 600 KB of a decoded 224 px image)
and the decoding and resizing for the challenger's input (~3 core-ms a photo) run at idle priority too.

Idle priority is not all: a challenger's inference running beside the champion's still shares the caches
and memory bandwidth. So the worker **pauses** the child (``SIGSTOP``) as a request comes in and resumes it
(``SIGCONT``) only once the worker has had no request for ``serve.shadow_idle_ms`` (:mod:`serving.shadow`).
Resuming it as soon as each request ended was measured first (``make bench-serve --challenger-only``, 2
cores, one client back to back): the champion's p99 was still 1.09-1.14x, since the child computed in the ~1
ms gaps and the next request met caches full of its model; with the idle wait it is within the round-to-round
noise, and under sustained load the challenger scores nothing and drops, as designed. A paused child cannot
check its parent, so it asks the kernel to kill it (``SIGKILL``, which reaches a stopped process) when the
thread that started it ends.

Cost: one process with the challenger's model per worker while a challenger exists (none otherwise); each
scored batch crosses the pipe once each way (uploads in, probabilities out); at most two signals per busy
spell (none while the child is paused already).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from dataclasses import dataclass

import numpy as np

from serving.errors import ApiError
from serving.predictor import ModelRef, Predictor
from serving.uploads import decode_upload

LOAD_TIMEOUT_S = 600  # a spawned interpreter imports TensorFlow and OpenVINO, then loads the model
PARENT_CHECK_S = 1.0
ANSWER_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class _Loaded:
    ref: ModelRef
    class_names: list[str]


def score_uploads(model: Predictor, uploads: list[bytes], min_side: int) -> tuple[np.ndarray, list[int]]:
    """Decode each upload for ``model`` (its input size and resize rule) and score those it accepts: (their
    class probabilities, the indices of the uploads scored). An upload this model's limits refuse is left out:
    the champion took it, so it is not comparable."""
    pixels, kept = [], []
    for index, data in enumerate(uploads):
        try:
            pixels.append(decode_upload(data, model.image_size, min_side, resize=model.resize))
        except ApiError:
            continue
        kept.append(index)
    if not pixels:
        return np.zeros((0, len(model.class_names)), np.float32), []
    return model.predict(np.stack(pixels)), kept


class InProcessChallenger:
    """A challenger scored in the calling thread (tests): the interface
    :class:`serving.shadow.Shadow` uses, as :class:`IdleChallenger` has it."""

    def __init__(self, model: Predictor) -> None:
        self.model, self.ref, self.class_names = model, model.ref, model.class_names

    def score(self, uploads: list[bytes], min_side: int) -> tuple[np.ndarray, list[int]]:
        """:func:`score_uploads` with this model."""
        return score_uploads(self.model, uploads, min_side)

    def pause(self) -> None:
        """Nothing to pause: scoring runs in the caller's thread."""

    def resume(self) -> None:
        """Nothing to resume."""


class IdleChallenger:
    """A model version decoded for and scored in a low-priority child process: ``ref``, ``class_names`` and
    :meth:`score`, as :class:`InProcessChallenger` has them, plus :meth:`close`.

    Raises:
        RuntimeError: the child could not load the model (its error's text), or did not answer in time.
    """

    def __init__(self, model_uri: str, tracking_uri: str, runtime: str) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process that holds TensorFlow's threads
        self._pipe, child = context.Pipe()
        self._lock = threading.Lock()
        self._signals = threading.Lock()  # a signal is never sent to a pid that close() has reaped
        self._closed = False
        self._paused = False  # SIGSTOP sent and no SIGCONT since
        self._calls = 0  # numbers each score call: an answer that comes after its call timed out is skipped
        self._process = context.Process(
            target=_serve,
            args=(child, model_uri, tracking_uri, runtime, os.getpid()),
            name="stj-shadow-challenger",
            daemon=True,  # multiprocessing stops it when the worker exits
        )
        self._process.start()
        child.close()
        try:
            kind, value = self._answer(LOAD_TIMEOUT_S)
            if kind != "loaded":
                raise RuntimeError(value)
        except BaseException:
            self.close()
            raise
        self.ref, self.class_names = value.ref, value.class_names

    @property
    def pid(self) -> int | None:
        """The child's process id (while it runs)."""
        return self._process.pid

    def score(self, uploads: list[bytes], min_side: int) -> tuple[np.ndarray, list[int]]:
        """:func:`score_uploads` in the child: decoding and inference at idle priority."""
        with self._lock:
            self._calls += 1
            self._pipe.send(("score", (self._calls, list(uploads), min_side)))
            while True:
                kind, (call, value) = self._answer(LOAD_TIMEOUT_S, running_only=True)
                if call == self._calls:
                    break
        if kind != "scored":
            raise RuntimeError(value)
        return value

    def pause(self) -> None:
        """Stop the child's computing at once, mid-inference too (``SIGSTOP``): the champion has work."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let the child go on (``SIGCONT``)."""
        self._signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the child (resumed and asked first, then terminated); no signal is sent to it afterwards."""
        with self._signals:
            self._send_signal(signal.SIGCONT)  # a stopped process acts on neither the request nor SIGTERM
            self._closed = True
        try:
            self._pipe.send(("stop", None))
        except (OSError, ValueError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._pipe.close()

    def _signal(self, signum: int) -> None:
        with self._signals:
            if not self._closed:
                self._send_signal(signum)
                self._paused = signum == signal.SIGSTOP

    def _send_signal(self, signum: int) -> None:
        if self._process.is_alive():  # not reaped, so the pid is still the child's
            try:
                os.kill(self._process.pid, signum)
            except ProcessLookupError:
                pass

    def _answer(self, timeout_s: float, running_only: bool = False) -> tuple[str, object]:
        """The child's next message; ``running_only``: the time it spends paused does not count (a busy
        worker may keep it stopped for as long as its load lasts)."""
        waited = 0.0
        while not self._pipe.poll(ANSWER_POLL_S):
            if not (running_only and self._paused):
                waited += ANSWER_POLL_S
            if waited >= timeout_s:
                raise RuntimeError(f"the challenger's process did not answer within {timeout_s:.0f} s of running")
        return self._pipe.recv()


def idle_priority() -> None:
    """Lower this process (and the threads it starts from now on) to the idle CPU priority (nice 19 where
    ``SCHED_IDLE`` is refused)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _serve(pipe, model_uri: str, tracking_uri: str, runtime: str, parent: int) -> None:
    """The child: load the model at idle priority, then score what the parent sends until told to stop."""
    if sys.platform.startswith("linux"):  # a paused child cannot notice its parent is gone: the kernel kills it
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    idle_priority()
    try:
        model = Predictor.load(model_uri, tracking_uri, runtime)
    except Exception as exc:  # noqa: BLE001 - the parent reports it; the child has nothing to serve
        pipe.send(("error", f"{exc.__class__.__name__}: {exc}"))
        return
    pipe.send(("loaded", _Loaded(model.ref, list(model.class_names))))
    while os.getppid() == parent:
        try:
            if not pipe.poll(PARENT_CHECK_S):
                continue
            kind, value = pipe.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        call, uploads, min_side = value
        try:
            pipe.send(("scored", (call, score_uploads(model, uploads, min_side))))
        except Exception as exc:  # noqa: BLE001 - one bad batch must not end the challenger
            pipe.send(("error", (call, f"{exc.__class__.__name__}: {exc}")))
