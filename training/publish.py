"""The publish stage: register the run's model and move the alias to it if it passes the quality gate.

Config keys: ``tracking.uri``, ``tracking.model_name``, ``tracking.alias``, ``tracking.gate_margin``,
``tracking.gate_floor``.
"""

from __future__ import annotations

import logging

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.schema import TrackingConfig
from training.gate import GATE_METRIC, decide

log = logging.getLogger(__name__)


def publish(cfg: TrackingConfig, model_uri: str, run_id: str) -> dict[str, str | bool]:
    """Register the run's model and move ``tracking.alias`` to it if it passes the quality gate.

    Returns:
        ``version``, ``promoted`` and the gate's ``reason``; a rejected version is tagged ``rejected``.
    """
    mlflow.set_tracking_uri(cfg.uri)
    client = MlflowClient()
    candidate = client.get_run(run_id).data.metrics[GATE_METRIC]
    try:
        current = client.get_model_version_by_alias(cfg.model_name, cfg.alias)
        champion = client.get_run(current.run_id).data.metrics.get(GATE_METRIC)
    except MlflowException:
        champion = None
    decision = decide(candidate=candidate, champion=champion, margin=cfg.gate_margin, floor=cfg.gate_floor)
    version = str(mlflow.register_model(model_uri, cfg.model_name, tags={"run_id": run_id}).version)
    if decision.promote:
        client.set_registered_model_alias(cfg.model_name, cfg.alias, version)
        client.set_model_version_tag(cfg.model_name, version, "gate", "promoted")
        log.info("%s version %s is now @%s: %s", cfg.model_name, version, cfg.alias, decision.reason)
    else:
        client.set_model_version_tag(cfg.model_name, version, "rejected", decision.reason)
        log.warning("%s version %s NOT promoted: %s", cfg.model_name, version, decision.reason)
    client.set_tag(run_id, "gate.decision", "promoted" if decision.promote else "rejected")
    client.set_tag(run_id, "gate.reason", decision.reason)
    return {"version": version, "promoted": decision.promote, "reason": decision.reason}
