"""Prometheus metrics of the server, correct with one gunicorn worker or several.

With several workers each process counts on its own; when ``PROMETHEUS_MULTIPROC_DIR`` is set (``stj
serve`` sets it for ``serve.workers`` > 1), every worker writes its values there and ``GET /metrics``,
whichever worker answers it, reports the sum over all of them
(https://prometheus.github.io/client_python/multiprocess/).
"""

from __future__ import annotations

import os

# prometheus_client is imported inside the functions: it picks its value store (in memory, or files for
# multiprocess mode) when first imported, so the gunicorn master must not import it before ``stj serve``
# has set the folder (measured: imported at the top here, every worker counted in memory and /metrics was
# empty).

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ServerMetrics:
    """Requests by endpoint and status, latency, micro-batch sizes, the model version being served, and the
    challenger's shadow scoring."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

        self.registry = CollectorRegistry()
        shared = bool(os.environ.get(MULTIPROC_ENV))
        if shared:
            multiprocess.MultiProcessCollector(self.registry)
        # In multiprocess mode the values live in files read by the collector, so the metrics themselves must
        # not be registered as well (they would be reported twice).
        own = None if shared else self.registry
        self.requests = Counter("stj_requests", "HTTP requests", ["endpoint", "status"], registry=own)
        self.latency = Histogram(
            "stj_request_seconds",
            "request latency",
            ["endpoint"],
            registry=own,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.batch = Histogram(
            "stj_batch_size", "images per model call", registry=own, buckets=(1, 2, 4, 8, 16, 32, 64)
        )
        # max over workers: a version is reported as served while any worker still serves it
        self.model = Gauge(
            "stj_model_version",
            "model version served (1) or no longer (0)",
            ["name", "version"],
            registry=own,
            multiprocess_mode="max",
        )
        # the challenger in shadow (serving.shadow): photos it scored, by the champion's class and whether the
        # two top-1s agreed; photos dropped because the shadow queue was full; its latency per call
        self.shadow_photos = Counter(
            "stj_shadow_photos",
            "photos scored by the challenger in shadow",
            ["challenger_version", "champion_class", "outcome"],
            registry=own,
        )
        self.shadow_dropped = Counter(
            "stj_shadow_dropped", "photos not mirrored: the shadow queue was full", ["challenger_version"], registry=own
        )
        self.shadow_latency = Histogram(
            "stj_shadow_seconds",
            "challenger call latency: a few photos decoded and scored in its process, the pipe both ways",
            registry=own,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # the prediction log (serving.prediction_log): rows written, and dropped (queue full, or a failed write)
        self.log_written = Counter("stj_prediction_log_written", "predictions written to the log", registry=own)
        self.log_dropped = Counter(
            "stj_prediction_log_dropped", "predictions not logged: the queue was full or a write failed", registry=own
        )

        # the last `stj monitor` report (serving.monitor, read from the database): the same on every worker
        def latest(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            return Gauge(name, doc, list(labels), registry=own, multiprocess_mode="mostrecent")

        self.drift = latest(
            "stj_drift_detected", "the last monitor report found drift (1), none (0), or could not judge (-1)"
        )
        self.drift_checks = latest(
            "stj_drift_check", "each check of the last monitor report: drifted (1), not (0), not made (-1)", ("check",)
        )
        self.drift_ood_rate = latest("stj_drift_ood_rate", 'share of the last monitored window flagged "none of these"')
        self.drift_predictions = latest("stj_drift_window_predictions", "predictions in the last monitored window")
        self._shown: tuple[str, str] | None = None
        self._checks_shown: set[str] = set()

    def serving(self, name: str, version: str) -> None:
        """Record the model version this worker serves (the previous one drops to 0)."""
        if self._shown is not None and self._shown != (name, version):
            self.model.labels(*self._shown).set(0)
        self.model.labels(name, version).set(1)
        self._shown = (name, version)

    def monitor_report(self, summary: dict | None) -> None:
        """Show the last monitor report's verdict (nothing before the first)."""
        if summary is None:
            return
        self.drift.set(-1 if summary["drifted"] is None else int(summary["drifted"]))
        judged = {check["name"]: int(check["drifted"]) for check in summary["checks"]}
        self._checks_shown |= set(judged)
        for name in self._checks_shown:  # a check the last report did not make: -1, not an old verdict
            self.drift_checks.labels(name).set(judged.get(name, -1))
        self.drift_ood_rate.set(summary["ood_rate"] or 0.0)
        self.drift_predictions.set(summary["predictions"])

    def exposition(self) -> bytes:
        """The text format of every metric (of every worker in multiprocess mode)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


def mark_worker_dead(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: drop a dead worker's live gauges (multiprocess mode only)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
