"""Watching live traffic: a window of the prediction log judged against the champion's traffic baseline.

:func:`watch` reads the champion's rows of the window (``serving.prediction_log``, streamed) and the baseline
its training logged (``core.traffic_baseline``), and runs the four checks of :mod:`serving.drift`: class mix,
confidence, "none of these" rate and embeddings. The verdict, a one-line headline and every check's figures make
a :class:`MonitorReport`; :func:`render_html` draws it as one self-contained HTML file; :func:`record_report`
keeps its summary in the server's database (table ``monitor_reports``), where every replica's ``/about`` and
``/metrics`` read the latest (:func:`latest_report`).

Cost: O(rows in the window) time, streamed: the scalars of every row (7 bytes each) and at most
``monitor.max_rows`` embeddings (a reservoir sample, seeded) in memory; the embedding check as in
:mod:`serving.drift`.

Config keys: ``monitor.*``, ``tracking.uri``, ``tracking.model_name``, ``tracking.alias``, ``serve.database_url``,
``project.seed``.
"""

from __future__ import annotations

import html
import json
import random
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from sqlalchemy import inspect, text

from configs.errors import UserError
from configs.files import atomic_write_text
from configs.schema import Config, MonitorConfig
from core.experiments import ensure_experiment
from core.ood import unit_rows
from core.traffic_baseline import BASELINE_ARTIFACT, TrafficBaseline, read_baseline
from serving import drift
from serving.database import Database
from serving.prediction_log import stream_log

_SCHEMA = """
CREATE TABLE IF NOT EXISTS monitor_reports (
    id {id},
    created_at TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    drifted INTEGER,
    headline TEXT NOT NULL,
    summary TEXT NOT NULL,
    report_path TEXT
);
CREATE INDEX IF NOT EXISTS monitor_reports_created ON monitor_reports (created_at)
"""


@dataclass
class Window:
    """The champion's rows of a window: every row's class, confidence and verdict, a sample of embeddings."""

    labels: array = field(default_factory=lambda: array("h"))  # compact: 7 bytes a row in all
    confidences: array = field(default_factory=lambda: array("f"))
    flagged: array = field(default_factory=lambda: array("b"))
    embeddings: list[np.ndarray] = field(default_factory=list)
    seen_embeddings: int = 0

    def add(self, row: dict, class_index: dict[str, int], keep: int, rng: random.Random) -> None:
        """Count one log row; its embedding joins the reservoir (Algorithm R: each of the n seen so far is
        kept with probability keep / n)."""
        if row["label"] not in class_index:
            return
        self.labels.append(class_index[row["label"]])
        self.confidences.append(float(row["confidence"]))
        self.flagged.append(row["in_distribution"] is False)
        if (vector := row["embedding"]) is not None:
            self.seen_embeddings += 1
            if len(self.embeddings) < keep:
                self.embeddings.append(vector)
            elif (slot := rng.randrange(self.seen_embeddings)) < keep:
                self.embeddings[slot] = vector


@dataclass(frozen=True)
class MonitorReport:
    """A judged window: the model, the window, how many predictions, the checks and the verdict (``None``: too
    few predictions to judge)."""

    model_name: str
    model_version: str
    since: datetime
    until: datetime
    predictions: int
    checks: list[drift.Check]
    drifted: bool | None
    ood_rate: float | None
    class_mix: dict[str, float]
    baseline_mix: dict[str, float]
    baseline_ood_rate: float

    @property
    def headline(self) -> str:
        """One line: the verdict, which checks drifted, the OOD rate and the class mix against the baseline."""
        model = f"{self.predictions} predictions of {self.model_name} version {self.model_version}"
        if self.drifted is None:
            return f"drift: not judged - {model} in the window, fewer than monitor.min_predictions"
        drifted = [check.name for check in self.checks if check.drifted]
        verdict = "yes" if self.drifted else "no"
        which = f"{len(drifted)} of {len(self.checks)} checks drifted" + (f" ({', '.join(drifted)})" if drifted else "")
        mix = " / ".join(f"{name} {100 * share:.0f} %" for name, share in self.class_mix.items())
        base = " / ".join(f"{100 * share:.0f}" for share in self.baseline_mix.values())
        ood = f"none of these {100 * (self.ood_rate or 0):.1f} % (baseline {100 * self.baseline_ood_rate:.1f} %)"
        return f"drift: {verdict} - {which}; {model}; {ood}; class mix {mix} (baseline {base} %)"

    def summary(self) -> dict:
        """The report as JSON values (the database row, the MLflow and Prefect artifacts, the webhook)."""
        return {
            "model": {"name": self.model_name, "version": self.model_version},
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "predictions": self.predictions,
            "drifted": self.drifted,
            "headline": self.headline,
            "ood_rate": self.ood_rate,
            "baseline_ood_rate": self.baseline_ood_rate,
            "class_mix": self.class_mix,
            "baseline_class_mix": self.baseline_mix,
            "checks": [check.to_json() for check in self.checks],
        }


def judge(
    window: Window,
    baseline: TrafficBaseline,
    settings: MonitorConfig,
    seed: int,
    about: tuple[str, str, datetime, datetime],
) -> MonitorReport:
    """The checks of ``window`` against ``baseline`` and the verdict (pure: the same inputs, the same report).
    ``about``: (model name, version, since, until)."""
    name, version, since, until = about
    classes = baseline.class_names
    labels = np.asarray(window.labels, np.int64)
    mix = np.bincount(labels, minlength=len(classes)) / max(1, len(labels))
    base_mix = np.bincount(baseline.labels, minlength=len(classes)) / max(1, len(baseline.labels))
    baseline_ood = float(np.mean(~baseline.in_distribution)) if len(baseline.labels) else 0.0
    flagged = np.asarray(window.flagged, bool)
    common = {
        "model_name": name,
        "model_version": version,
        "since": since,
        "until": until,
        "predictions": len(labels),
        "ood_rate": float(flagged.mean()) if len(flagged) else None,
        "class_mix": {c: round(float(s), 4) for c, s in zip(classes, mix, strict=True)},
        "baseline_mix": {c: round(float(s), 4) for c, s in zip(classes, base_mix, strict=True)},
        "baseline_ood_rate": round(baseline_ood, 4),
    }
    if len(labels) < settings.min_predictions:
        return MonitorReport(**common, checks=[], drifted=None)
    p, distance = settings.drift_p_value, settings.drift_distance
    checks = [
        drift.class_mix(baseline.labels, labels, classes, p, distance),
        drift.confidence(baseline.confidences, np.asarray(window.confidences, np.float32), p, distance),
        drift.ood_rate(~baseline.in_distribution, flagged, p, distance),
    ]
    if window.embeddings and len(baseline.features):
        reference = np.asarray(baseline.features, np.float32)
        if len(reference) > settings.max_rows:
            reference = reference[np.random.default_rng(seed).choice(len(reference), settings.max_rows, replace=False)]
        checks.append(drift.embeddings(reference, unit_rows(np.stack(window.embeddings)), p, seed))
    drifted = sum(check.drifted for check in checks) >= settings.drift_share * len(checks)
    return MonitorReport(**common, checks=checks, drifted=drifted)


def champion_run(config: Config) -> tuple[str, str]:
    """The served model's (version, run id) at ``tracking.alias``.

    Raises:
        UserError: there is no such alias (nothing to watch).
    """
    client = MlflowClient(tracking_uri=config.tracking.uri)
    name, alias = config.tracking.model_name, config.tracking.alias
    try:
        version = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        raise UserError(f"no {name}@{alias} in {config.tracking.uri}: nothing is served to watch") from None
    return str(version.version), version.run_id


def champion_baseline(config: Config) -> tuple[str, TrafficBaseline]:
    """The served model's version and the traffic baseline its training logged.

    Raises:
        UserError: no champion, or a champion whose run logged no traffic baseline.
    """
    version, run_id = champion_run(config)
    baseline = read_baseline(run_id, config.tracking.uri)
    if baseline is None:
        raise UserError(
            f"{config.tracking.model_name} version {version} has no traffic baseline ({BASELINE_ARTIFACT} in run "
            f"{run_id}): it was trained before STJ logged one, or it has no 'none of these' index; run the pipeline "
            "again to watch it"
        )
    return version, baseline


def watch(config: Config, since: datetime, until: datetime) -> MonitorReport:
    """Judge the champion's predictions logged from ``since`` up to ``until`` (UTC) against its baseline.

    Raises:
        UserError: no champion, or a champion whose run logged no traffic baseline.
    """
    version, baseline = champion_baseline(config)
    name = config.tracking.model_name
    window, rng = Window(), random.Random(config.project.seed)
    class_index = {label: i for i, label in enumerate(baseline.class_names)}
    database = Database(config.serve.database_url)
    for row in stream_log(database, since, until, model=(name, version)):
        window.add(row, class_index, config.monitor.max_rows, rng)
    return judge(window, baseline, config.monitor, config.project.seed, (name, version, since, until))


def record_report(database: Database, report: MonitorReport, path: str | None) -> None:
    """Keep the report's summary as the latest, for ``/about`` and ``/metrics`` on every replica."""
    database.schema(_SCHEMA)
    row = {
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "model_name": report.model_name,
        "model_version": report.model_version,
        "drifted": None if report.drifted is None else int(report.drifted),
        "headline": report.headline,
        "summary": json.dumps(report.summary()),
        "report_path": path,
    }
    columns = ", ".join(row)
    with database.write() as db:
        db.execute(text(f"INSERT INTO monitor_reports ({columns}) VALUES ({', '.join(':' + c for c in row)})"), row)


def latest_report(database: Database) -> dict | None:
    """The last recorded report's summary with ``created_at`` and ``report_path``; None before the first
    (a read only: the table is made by the first report, not by a ``/metrics`` scrape)."""
    if not inspect(database.engine).has_table("monitor_reports"):
        return None
    with database.read() as db:
        row = (
            db.execute(text("SELECT created_at, summary, report_path FROM monitor_reports ORDER BY id DESC LIMIT 1"))
            .mappings()
            .first()
        )
    if row is None:
        return None
    return {**json.loads(row["summary"]), "created_at": row["created_at"], "report_path": row["report_path"]}


def write_report(folder: Path, report: MonitorReport, page: str) -> Path:
    """Write ``page`` as ``<folder>/<until>-<model>-v<version>.html`` atomically; its path."""
    name = f"{report.until:%Y%m%dT%H%M%SZ}-{report.model_name}-v{report.model_version}.html"
    return atomic_write_text(folder / name, page)


def log_report_run(config: Config, report: MonitorReport, page: str) -> str:
    """One MLflow run per judged window in experiment ``monitor.experiment``: the verdict and each check's
    figure as metrics (charted over time in the MLflow UI), the model version as tags, ``report.html`` and
    ``summary.json`` as artifacts. Its run id. (The client, not MLflow's global state: a caller's own runs and
    experiment stay as they were.)"""
    client = MlflowClient(tracking_uri=config.tracking.uri)
    tracking = config.tracking
    experiment_id = ensure_experiment(client, tracking.uri, config.monitor.experiment, tracking.artifact_dir, {})
    tags = {"stj.kind": "monitor", "model_name": report.model_name, "model_version": report.model_version}
    title = f"monitor {report.model_name} v{report.model_version} {report.until:%Y-%m-%d %H:%M}"
    run_id = client.create_run(experiment_id, tags=tags, run_name=title).info.run_id
    metrics: dict[str, float] = {"predictions": report.predictions}
    if report.drifted is not None:
        metrics.update(drifted=int(report.drifted), ood_rate=report.ood_rate or 0.0)
        for check in report.checks:
            key = check.name.replace(" ", "_")
            metrics.update({f"{key}_statistic": check.statistic, f"{key}_drifted": int(check.drifted)})
    stamp = int(report.until.timestamp() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(key, float(value), stamp, 0) for key, value in metrics.items()],
        params=[Param("since", report.since.isoformat()), Param("until", report.until.isoformat())],
    )
    client.log_text(run_id, page, "report.html")
    client.log_dict(run_id, report.summary(), "summary.json")
    client.set_terminated(run_id)
    return run_id


def render_html(report: MonitorReport) -> str:
    """The report as one self-contained HTML page: the headline, a table of the checks, the class mix and the
    confidence histograms side by side (no script, no outside file)."""
    esc = html.escape
    rows = "".join(
        f"<tr class={'drift' if c.drifted else 'ok'}><td>{esc(c.name)}</td><td>{esc(c.method)}</td>"
        f"<td>{c.statistic:.4g}</td><td>{c.threshold:g}</td><td>{'drift' if c.drifted else 'no drift'}</td></tr>"
        for c in report.checks
    )
    mix = "".join(
        f"<tr><td>{esc(name)}</td><td>{_bar(report.baseline_mix[name])}</td><td>{_bar(share)}</td></tr>"
        for name, share in report.class_mix.items()
    )
    histograms = ""
    if confidence := next((c for c in report.checks if c.name == "confidence"), None):
        base, now = confidence.detail["baseline_histogram"], confidence.detail["window_histogram"]
        base_total, now_total = max(1, sum(base)), max(1, sum(now))
        histograms = "".join(
            f"<tr><td>{i / 10:.1f}-{(i + 1) / 10:.1f}</td><td>{_bar(b / base_total)}</td><td>{_bar(n / now_total)}</td></tr>"
            for i, (b, n) in enumerate(zip(base, now, strict=True))
        )
    title = f"STJ monitor: {report.model_name} version {report.model_version}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}tr.drift td{{color:#a40000;font-weight:600}}
.bar{{display:inline-block;height:.8em;background:#4a7ab8}}</style></head><body>
<h1>{esc(title)}</h1>
<p><strong>{esc(report.headline)}</strong></p>
<p>Window: {esc(report.since.isoformat())} to {esc(report.until.isoformat())} (UTC), {report.predictions}
predictions. Baseline: the model's test photos as its training scored them.</p>
<h2>Checks</h2>
<table><tr><th>check</th><th>method</th><th>figure</th><th>threshold</th><th>verdict</th></tr>{rows}</table>
<h2>Class mix</h2>
<table><tr><th>class</th><th>baseline</th><th>window</th></tr>{mix}</table>
<h2>Confidence</h2>
<table><tr><th>top-1 probability</th><th>baseline</th><th>window</th></tr>{histograms}</table>
</body></html>
"""


def _bar(share: float) -> str:
    return f'<span class="bar" style="width:{200 * share:.0f}px"></span> {100 * share:.1f} %'
