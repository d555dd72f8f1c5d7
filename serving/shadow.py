"""The challenger in shadow: a share of live predictions is also scored by ``@challenger``, off the client's
path, and its top-1 compared with the champion's.

The request thread only offers the photo's bytes and the champion's answer to a bounded queue
(``serve.shadow_queue`` photos) with ``put_nowait``: when the queue is full the photo is dropped and counted,
so a champion's answer never waits for the challenger. One daemon thread per worker takes what is queued and
runs the challenger only while the champion's inference queue is idle (a few photos at a time), so the
challenger yields the cores to live requests: under sustained load it sees less traffic. The server runs
the challenger in a child process at the CPU's idle priority (:mod:`serving.shadow_process`), which decodes
each photo for the challenger (its own input size) and scores it, so even a batch already started takes no
cycles the champion wants; and the worker lets that process compute only once it has had no request for
``serve.shadow_idle_ms``, pausing it at once when one comes (:meth:`Shadow.request_started`,
:meth:`Shadow._release_when_idle`). The thread counts agreement by the champion's class — Prometheus counters for
``/metrics``, and a tally written every ``serve.shadow_report_s`` on the challenger's version
(:mod:`core.shadow_tally`) for ``stj status``, ``/about`` and ``stj promote challenger``. The challenger is
followed like the champion (its alias checked every ``serve.reload_interval_s``); when the alias is removed,
mirroring stops. With no challenger a request pays one attribute read.

Cost: memory at most ``serve.shadow_queue`` uploads plus the challenger's model; CPU one challenger decode and
inference per mirrored photo, in the champion's idle time.

Config keys: ``serve.shadow_share``, ``serve.shadow_queue``, ``serve.shadow_report_s``, ``serve.shadow_idle_ms``,
``serve.reload_interval_s``, ``serve.runtime``, ``serve.min_side``, ``release.challenger_alias``,
``tracking.uri``.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from mlflow import MlflowClient

from configs.schema import Config
from core.aliases import current_version
from core.shadow_tally import ShadowTally, report_tally

if TYPE_CHECKING:
    from serving.metrics import ServerMetrics
    from serving.predictor import Predictor
    from serving.shadow_process import IdleChallenger, InProcessChallenger

log = logging.getLogger(__name__)

SHADOW_BATCH = 4  # photos per challenger call: short, so a live request arriving meanwhile waits little
IDLE_POLL_S = 0.005
QUIET_WAIT_S = 0.1  # at most this long between looks at the alias and the report while the worker is busy
LATENCIES_KEPT = 512


class Shadow:
    """One worker's mirror to the challenger: :meth:`offer` on the request path, the rest in its own thread.

    Args:
        config: the server's config.
        champion: the champion's current predictor (the holder's ``current``).
        champion_idle: whether the champion's inference queue is empty right now.
        metrics: the worker's Prometheus metrics.
        load: loads a model URI as a challenger (:class:`serving.shadow_process.IdleChallenger` in the server).
    """

    def __init__(
        self,
        config: Config,
        champion: Callable[[], Predictor],
        champion_idle: Callable[[], bool],
        metrics: ServerMetrics,
        load: Callable[[str], IdleChallenger | InProcessChallenger],
    ) -> None:
        self.config, self.metrics = config, metrics
        self._champion, self._champion_idle, self._load = champion, champion_idle, load
        self.challenger: IdleChallenger | InProcessChallenger | None = None
        self.last_error: str | None = None
        self._failed: str | None = None  # the version that did not load
        self._queue: queue.Queue[tuple[bytes, str, str]] = queue.Queue(maxsize=config.serve.shadow_queue)
        self._lock = threading.Lock()  # the tally: counted by the shadow thread, drops by request threads
        self._tally, self._tally_of = ShadowTally(), ("", "")  # (challenger, champion) versions it counts
        self._finished: list[tuple[tuple[str, str], ShadowTally]] = []  # earlier pairs' tallies, to report
        self._latencies: deque[float] = deque(maxlen=LATENCIES_KEPT)
        self._dirty = False
        self._worker = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns() % 10**9}"
        self._stop = threading.Event()
        # The worker's pace, under one condition: requests in flight, busy spells begun, and whether the
        # challenger may compute now (no request for serve.shadow_idle_ms; its process resumed).
        self._pace = threading.Condition()
        self._busy = self._spells = 0
        self._runnable = False
        threading.Thread(target=self._run, name="stj-shadow", daemon=True).start()
        threading.Thread(target=self._release_when_idle, name="stj-shadow-pace", daemon=True).start()

    def request_started(self) -> None:
        """A request came in: the first of a busy spell pauses the challenger (its process, at once)."""
        with self._pace:
            self._busy += 1
            if self._busy == 1:
                self._spells += 1
                if self._runnable:
                    self._runnable = False
                    if (challenger := self.challenger) is not None:
                        challenger.pause()

    def request_finished(self) -> None:
        """A request ended: after the last of a busy spell the pacing thread starts counting the idle time."""
        with self._pace:
            self._busy -= 1
            if self._busy == 0 and self.challenger is not None:
                self._pace.notify_all()

    def _release_when_idle(self) -> None:
        """Let the challenger compute once the worker has had no request for ``serve.shadow_idle_ms``.

        Resuming it in every gap between requests cost the champion's p99 at one client back to back: the
        challenger ran in the ~1 ms gaps and the next request found the caches full of its model
        (``make bench-serve``). Waiting for a real pause in traffic keeps it out of busy spells altogether:
        under sustained load it scores nothing and its queue drops."""
        hold = self.config.serve.shadow_idle_ms / 1000
        with self._pace:
            while not self._stop.is_set():
                if self._busy or self._runnable or self.challenger is None:
                    self._pace.wait(1.0)  # woken by the end of a busy spell (or a challenger arriving)
                    continue
                spell, deadline = self._spells, time.monotonic() + hold
                while not self._busy and spell == self._spells and (left := deadline - time.monotonic()) > 0:
                    self._pace.wait(left)
                if self._busy or spell != self._spells or self._stop.is_set():
                    continue
                self._runnable = True
                if (challenger := self.challenger) is not None:
                    challenger.resume()
                self._pace.notify_all()  # the shadow thread may score

    def offer(self, data: bytes, champion: Predictor, label: str) -> None:
        """Mirror one photo the champion answered with ``label`` (a share of them); never blocks."""
        challenger = self.challenger
        if challenger is None or challenger.ref.version == champion.ref.version:
            return
        if random.random() >= self.config.serve.shadow_share:
            return
        try:
            self._queue.put_nowait((data, str(champion.ref.version), label))
        except queue.Full:
            with self._lock:
                self._switch_to(str(challenger.ref.version), str(champion.ref.version))
                self._tally.dropped += 1
                self._dirty = True
            self.metrics.shadow_dropped.labels(str(challenger.ref.version)).inc()

    def close(self) -> None:
        """Stop the threads and the challenger (a test's app going away)."""
        self._stop.set()
        self._replace(None)

    def _replace(self, challenger) -> None:
        """Make ``challenger`` (or none) the one scored, and stop the one it replaces (a child process). One
        installed while the worker is not idle enough starts paused, as the one before it was."""
        with self._pace:
            old, self.challenger = self.challenger, challenger
            if challenger is not None and not self._runnable:
                challenger.pause()
            self._pace.notify_all()
        if old is not None and old is not challenger and hasattr(old, "close"):
            old.close()

    @property
    def queued(self) -> int:
        """Photos waiting for the challenger now."""
        return self._queue.qsize()

    def _run(self) -> None:
        """Follow the alias and report the tally when due; score what is queued whenever the champion idles."""
        interval = self.config.serve.reload_interval_s
        next_check = next_report = time.monotonic()
        held: list[tuple[bytes, str, str]] = []  # taken from the queue, waiting for the champion to idle
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_check:
                self._follow()
                next_check = now + interval if interval > 0 else float("inf")
            if now >= next_report:
                self._report()
                next_report = now + self.config.serve.shadow_report_s
            if not held:
                try:
                    held.append(self._queue.get(timeout=max(0.0, min(next_check, next_report, now + 1.0) - now)))
                except queue.Empty:
                    continue
            with self._pace:
                if not self._pace.wait_for(lambda: self._runnable or self._stop.is_set(), QUIET_WAIT_S):
                    continue
            if not self._champion_idle():
                time.sleep(IDLE_POLL_S)
                continue
            while len(held) < SHADOW_BATCH:
                try:
                    held.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._score(held)
            except Exception:  # noqa: BLE001 - a challenger failing must not stop the mirror, nor the server
                log.exception("shadow: the challenger failed to score %d photos", len(held))
            held = []

    def _score(self, batch: list[tuple[bytes, str, str]]) -> None:
        challenger = self.challenger
        if challenger is None:
            return
        started = time.perf_counter()
        probs, kept = challenger.score([data for data, _, _ in batch], self.config.serve.min_side)
        if not kept:
            return
        seconds = time.perf_counter() - started
        self.metrics.shadow_latency.observe(seconds)
        version = str(challenger.ref.version)
        with self._lock:
            self._latencies.append(seconds * 1000)
            for index, row in zip(kept, probs, strict=True):
                _, champion_version, label = batch[index]
                self._switch_to(version, champion_version)
                agreed = challenger.class_names[int(np.argmax(row))] == label
                self._tally.count(label, agreed)
                self.metrics.shadow_photos.labels(version, label, "agree" if agreed else "disagree").inc()
            self._dirty = True

    def _switch_to(self, challenger: str, champion: str) -> None:
        """Count for this pair of versions from now on (under the lock; the previous pair's tally is kept for
        the next report: no registry write here, which may run on a request's thread)."""
        if self._tally_of != (challenger, champion):
            if self._tally.scored or self._tally.dropped:
                self._tally.p95_ms = self._p95()
                self._finished.append((self._tally_of, self._tally))
            self._tally, self._tally_of = ShadowTally(), (challenger, champion)
            self._latencies.clear()

    def _p95(self) -> float:
        return round(float(np.percentile(self._latencies, 95)), 2) if self._latencies else 0.0

    def _report(self) -> None:
        """Write the running tally on the challenger's version, when it changed since the last report."""
        with self._lock:
            reports, self._finished = self._finished, []
            if self._dirty and self._tally_of[0]:
                self._tally.p95_ms = self._p95()
                reports.append((self._tally_of, ShadowTally(**vars(self._tally))))
            self._dirty = False
        for of, tally in reports:
            self._write(of, tally)

    def _write(self, of: tuple[str, str], tally: ShadowTally) -> None:
        challenger, champion = of
        try:
            client = MlflowClient(tracking_uri=self.config.tracking.uri)
            report_tally(client, self._champion().ref.name, challenger, champion, self._worker, tally)
        except Exception as exc:  # noqa: BLE001 - the registry being away must not stop the mirror
            log.warning("shadow: could not record the challenger's tally: %s", exc)

    def _follow(self) -> None:
        """Load the version ``@challenger`` points at when it moved; drop the challenger when it is gone."""
        name, alias = self._champion().ref.name, self.config.release.challenger_alias
        try:
            version = current_version(MlflowClient(tracking_uri=self.config.tracking.uri), name, alias)
        except Exception as exc:  # noqa: BLE001 - registry unreachable: keep what is loaded
            self.last_error = f"challenger check failed: {exc}"
            return
        loaded = self.challenger
        if version == (str(loaded.ref.version) if loaded else None):
            return
        if version is not None and version == self._failed:
            return  # the version that did not load: tried once
        if version is None:
            self._replace(None)
            log.info("shadow: no @%s any more; mirroring stopped", alias)
            return
        try:
            self._replace(self._load(f"models:/{name}/{version}"))
            if self._stop.is_set():  # closed while it loaded
                self._replace(None)
                return
            self.last_error = None
            share = 100 * self.config.serve.shadow_share
            log.info("shadow: mirroring %.0f %% of predictions to %s version %s", share, name, version)
        except Exception as exc:  # noqa: BLE001 - a challenger that does not load must not affect serving
            self._replace(None)
            self._failed = version
            self.last_error = f"loading challenger version {version} failed: {exc.__class__.__name__}: {exc}"
            log.error("shadow: %s", self.last_error)
