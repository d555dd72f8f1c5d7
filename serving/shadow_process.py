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

Cost: one process with the challenger's model per worker while a challenger exists (none otherwise); each
scored batch crosses the pipe once each way (uploads in, probabilities out).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from dataclasses import dataclass

import numpy as np

from serving.errors import ApiError
from serving.predictor import ModelRef, Predictor
from serving.uploads import decode_upload

LOAD_TIMEOUT_S = 600  # a spawned interpreter imports TensorFlow and OpenVINO, then loads the model
PARENT_CHECK_S = 1.0


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
            self._pipe.send(("score", (list(uploads), min_side)))
            kind, value = self._answer(LOAD_TIMEOUT_S)
        if kind != "scored":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        """Stop the child (it is asked first, then terminated)."""
        try:
            self._pipe.send(("stop", None))
        except (OSError, ValueError):
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._pipe.close()

    def _answer(self, timeout_s: float) -> tuple[str, object]:
        if not self._pipe.poll(timeout_s):
            raise RuntimeError(f"the challenger's process did not answer within {timeout_s:.0f} s")
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
        try:
            pipe.send(("scored", score_uploads(model, *value)))
        except Exception as exc:  # noqa: BLE001 - one bad batch must not end the challenger
            pipe.send(("error", f"{exc.__class__.__name__}: {exc}"))
