"""Alerts: a JSON POST to ``notify.webhook_url`` when a pipeline stage fails (a Prefect flow state hook) or
the gate rejects the model. Delivery failures are logged, never raised: an alert must not fail a run.

Payload: ``{"event": "stage_failed" | "model_rejected", "flow": ..., "flow_run": {"id", "name"}, "stage": ...,
"message": ..., "mlflow_run_id": ... | null}``.

Config keys: ``notify.webhook_url``, ``notify.timeout_s``.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

log = logging.getLogger(__name__)
STAGE_NOTE = "stj stage: "  # added to an exception's notes by the stage that raised it


def post_alert(url: str | None, payload: dict[str, Any], timeout_s: float) -> bool:
    """POST ``payload`` as JSON to ``url`` (nothing when ``url`` is ``None``); whether it was accepted."""
    if not url:
        return False
    try:
        response = requests.post(url, json=payload, timeout=timeout_s)
        response.raise_for_status()
        return True
    except requests.RequestException as exc:
        log.warning("alert to the webhook not delivered (%s): %s", type(exc).__name__, exc)
        return False


def stage_of(exc: BaseException | None) -> str | None:
    """The pipeline stage an exception came from (recorded in its notes), if known."""
    for note in getattr(exc, "__notes__", []):
        if note.startswith(STAGE_NOTE):
            return note.removeprefix(STAGE_NOTE)
    return None


def alert_on_failure(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect ``on_failure`` hook of the pipeline flows: alert with the failed stage and its message."""
    config = flow_run.parameters.get("config")
    notify = config.notify.model_dump() if hasattr(config, "notify") else (config or {}).get("notify") or {}
    if not notify.get("webhook_url"):
        return
    exc = state.result(raise_on_failure=False)
    error = exc if isinstance(exc, BaseException) else None
    payload = {
        "event": "stage_failed",
        "flow": flow.name,
        "flow_run": {"id": str(flow_run.id), "name": flow_run.name},
        "stage": stage_of(error),
        "message": str(error) if error else (state.message or "failed"),
        "mlflow_run_id": None,
    }
    post_alert(notify["webhook_url"], payload, float(notify.get("timeout_s", 5.0)))
