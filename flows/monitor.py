"""The monitor flow (``stj-monitor``): judge a window of the prediction log, publish the report, alert.

``stj monitor`` runs it once; ``stj schedule --monitor-cron`` and ``stj deploy --monitor-cron`` run it on a
cron of its own. Each run writes the HTML report to ``monitor.report_dir`` (atomically), logs it with its
figures as an MLflow run in experiment ``monitor.experiment``, publishes the headline and the checks as the
Prefect artifact ``stj-monitor``, keeps the summary in the server's database (``/about`` and ``/metrics`` of
every replica show the latest), and, when the window drifted, POSTs to ``notify.webhook_url`` and starts the
Prefect deployment ``monitor.on_drift_deployment`` if one is set.

Webhook payload: ``{"event": "drift", "flow_run": {"id", "name"}, "message": headline, "report": path,
"mlflow_run_id": ..., "summary": {...}}``.
"""

# No ``from __future__ import annotations``: a served deployment pickles this flow by value (as flows.pipeline)

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import deployment, flow_run

from configs.errors import UserError
from flows.logs import adopt_command_settings
from flows.notify import alert_on_failure, post_alert
from flows.settings import RunConfig
from serving.database import Database
from serving.monitor import MonitorReport, log_report_run, record_report, render_html, watch, write_report


def window(config: RunConfig, since: str | None, until: str | None) -> tuple[datetime, datetime]:
    """The window to judge: ``until`` (default now) back to ``since`` (default ``monitor.window_hours``
    earlier), both ISO 8601 (UTC when no zone is given).

    Raises:
        UserError: a time that is not ISO 8601, or a window that ends before it starts.
    """
    end = _moment(until, "--until") if until else datetime.now(UTC)
    start = _moment(since, "--since") if since else end - timedelta(hours=config.monitor.window_hours)
    if start >= end:
        raise UserError(f"the window starts ({start.isoformat()}) at or after its end ({end.isoformat()})")
    return start, end


def _moment(value: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option} {value!r}: not an ISO 8601 time, e.g. 2026-12-04T09:00") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


@task(name="judge-window", cache_policy=NO_CACHE)
def judge_window_task(config: RunConfig, since: datetime, until: datetime) -> MonitorReport:
    """:func:`serving.monitor.watch`."""
    return watch(config, since, until)


@task(name="publish-report", cache_policy=NO_CACHE)  # side effects: never from a cache
def publish_report_task(config: RunConfig, report: MonitorReport) -> dict[str, Any]:
    """Write the HTML report, log the MLflow run, keep the summary in the server's database, publish the Prefect
    artifact; alert and start the configured deployment on drift. What was done, with the summary."""
    page = render_html(report)
    path = write_report(config.monitor.report_dir, report, page)
    run_id = log_report_run(config, report, page)
    record_report(Database(config.serve.database_url), report, str(path))
    checks = "\n".join(
        f"| {c.name} | {c.method} | {c.statistic:.4g} | {c.threshold:g} | {'**drift**' if c.drifted else 'no'} |"
        for c in report.checks
    )
    create_markdown_artifact(
        key="stj-monitor",
        markdown=f"# {report.headline}\n\nReport: `{path}`; MLflow run `{run_id}`.\n\n"
        f"| check | method | figure | threshold | drift |\n|---|---|---|---|---|\n{checks}\n",
        description="STJ monitor: live traffic against the champion's baseline",
    )
    out = {**report.summary(), "report_path": str(path), "mlflow_run_id": run_id, "alerted": False, "started": None}
    if report.drifted:
        payload = {
            "event": "drift",
            "flow_run": {"id": str(flow_run.id), "name": flow_run.name},
            "message": report.headline,
            "report": str(path),
            "mlflow_run_id": run_id,
            "summary": report.summary(),
        }
        out["alerted"] = post_alert(config.notify.webhook_url, payload, config.notify.timeout_s)
        if name := config.monitor.on_drift_deployment:
            out["started"] = _start_deployment(name)
    return out


def _start_deployment(name: str) -> dict[str, Any] | None:
    """Start deployment ``name`` (it runs on its own); None, logged, when the Prefect API has no such one."""
    from prefect.deployments import run_deployment

    try:
        started = run_deployment(name, timeout=0)
    except Exception as exc:  # noqa: BLE001 - the report and the alert are out already; say why nothing started
        get_run_logger().warning("drift: deployment %s not started: %s: %s", name, type(exc).__name__, exc)
        return None
    get_run_logger().info("drift: started deployment %s (flow run %s)", name, started.name)
    return {"deployment": name, "flow_run": started.name}


@flow(name="stj-monitor", on_failure=[alert_on_failure])
def monitor_flow(config: RunConfig, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Judge the champion's live traffic in a window of the prediction log against its training baseline;
    publish the report (file, MLflow, Prefect, the server's database) and alert on drift."""
    if deployment.id is not None:  # a scheduled run: its process was started by Prefect, not by `stj`
        adopt_command_settings()
    start, end = window(config, since, until)
    report = judge_window_task(config, start, end)
    result = publish_report_task(config, report)
    get_run_logger().info("%s (report %s)", report.headline, result["report_path"])
    return result
