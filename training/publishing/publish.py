"""The publish stage: register the run's model and move the alias to it if it passes the quality gate.

The gate compares the candidate with the champion on the candidate's test split, both scored here by the
server's code path (:mod:`training.evaluation.rescore`); both scores are recorded on the candidate's run
(``gate.candidate_score``, ``gate.champion_score``, tag ``gate.metric``), with each class's F1.

Config keys: ``tracking.uri``, ``tracking.model_name``, ``tracking.alias``, ``tracking.gate_margin``,
``tracking.gate_floor``, ``tracking.gate_class_tolerance``, ``project.data_dir``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.schema import Config
from training.evaluation.rescore import score_model, test_rows_of_run
from training.publishing.gate import GATE_METRIC, GateDecision, Scores, decide

log = logging.getLogger(__name__)


def _record(client: MlflowClient, run_id: str, prefix: str, scores: Scores) -> None:
    client.log_metric(run_id, f"gate.{prefix}_score", scores.macro_f1)
    for name, f1 in scores.class_f1.items():
        client.log_metric(run_id, f"gate.{prefix}_{name}_f1", f1)


@dataclass(frozen=True)
class Judgement:
    """The gate's decision with the scores it was made on (``champion`` is ``None`` when there was none, or
    it could not be scored)."""

    decision: GateDecision
    candidate: Scores
    champion: Scores | None = None
    champion_version: str | None = None


def judge(config: Config, model_uri: str, run_id: str) -> Judgement:
    """Score the candidate and the current champion on the candidate's test photos and decide; both scores
    are recorded on the candidate's run. A champion that cannot be scored blocks promotion."""
    cfg, client = config.tracking, MlflowClient(tracking_uri=config.tracking.uri)
    client.set_tag(run_id, "gate.metric", GATE_METRIC)
    try:
        current = client.get_model_version_by_alias(cfg.model_name, cfg.alias)
    except MlflowException:
        current = None
    if current is None:  # nothing to compare with: the run's own test score (the server's path, tested)
        candidate = Scores(client.get_run(run_id).data.metrics[GATE_METRIC])
        client.log_metric(run_id, "gate.candidate_score", candidate.macro_f1)
        return Judgement(decide(candidate, None, cfg.gate_margin, cfg.gate_floor), candidate)
    rows = test_rows_of_run(run_id)
    candidate = score_model(model_uri, rows, config.project.data_dir)
    _record(client, run_id, "candidate", candidate)
    try:
        champion = score_model(f"models:/{cfg.model_name}/{current.version}", rows, config.project.data_dir)
    except Exception as exc:  # noqa: BLE001 - whatever broke, the gate must say so, not promote silently
        reason = f"champion version {current.version} could not be scored on this test split: {exc}"
        log.error("%s", reason)
        return Judgement(GateDecision(False, reason), candidate)
    _record(client, run_id, "champion", champion)
    client.set_tag(run_id, "gate.champion_version", str(current.version))
    decision = decide(candidate, champion, cfg.gate_margin, cfg.gate_floor, cfg.gate_class_tolerance)
    return Judgement(decision, candidate, champion, str(current.version))


def publish(config: Config, model_uri: str, run_id: str) -> dict[str, Any]:
    """Register the run's model and move ``tracking.alias`` to it if it passes the quality gate.

    Returns:
        ``version``, ``promoted``, the gate's ``reason``, ``metric``, both scores (``champion_score`` and
        ``champion_version`` are ``None`` without a champion); a rejected version is tagged ``rejected``.
    """
    cfg = config.tracking
    mlflow.set_tracking_uri(cfg.uri)
    client = MlflowClient()
    judgement = judge(config, model_uri, run_id)
    decision = judgement.decision
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
    champion = judgement.champion
    return {
        "version": version,
        "promoted": decision.promote,
        "reason": decision.reason,
        "metric": GATE_METRIC,
        "candidate_score": judgement.candidate.macro_f1,
        "champion_score": champion.macro_f1 if champion else None,
        "champion_version": judgement.champion_version,
    }
