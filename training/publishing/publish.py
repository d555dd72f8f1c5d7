"""The publish stage: register the run's model, judge it with the quality gate, and move the alias to it if it
passes the gate and (between the two steps, run by the flow) the infra check of :mod:`serving.infra_check`.

The gate compares the candidate with the champion on the candidate's test split, both scored here by the
server's code path (:mod:`training.evaluation.rescore`); both scores are recorded on the candidate's run
(``gate.candidate_score``, ``gate.champion_score``, tag ``gate.metric``), with each class's F1.

Config keys: ``tracking.uri``, ``tracking.model_name``, ``tracking.alias``, ``tracking.gate_margin``,
``tracking.gate_floor``, ``tracking.gate_class_tolerance``, ``project.data_dir``, ``release.canary_size``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.schema import Config
from core.aliases import move_alias
from core.split_log import read_logged_split
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
    rows = test_rows_of_run(run_id, client)
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


def canary_photos(run_id: str, tracking_uri: str, data_dir: str | Path, size: int) -> list[str]:
    """Up to ``size`` photos of the run's logged split for the infra check: its test photos first (the ones the
    gate scored), then validation, then training photos when the test split is smaller; absolute paths."""
    split = read_logged_split(run_id, MlflowClient(tracking_uri=tracking_uri))
    if split is None:
        return []
    order = split["split"].map({"test": 0, "val": 1, "train": 2}).fillna(3)
    chosen = split.assign(order=order).sort_values(["order", "path"], kind="stable").head(size)
    return [str(Path(data_dir) / path) for path in chosen["path"]]


def register_and_judge(config: Config, model_uri: str, run_id: str) -> dict[str, Any]:
    """Register the run's model and let the quality gate judge it (no alias moves here: :func:`settle`).

    Returns:
        ``version``, ``passed_gate``, the gate's ``reason``, ``metric``, both scores (``champion_score`` and
        ``champion_version`` are ``None`` without a champion), ``run_id``, and ``canary``: the photos the
        infra check sends (:func:`canary_photos`, ``release.canary_size`` of them).
    """
    cfg = config.tracking
    mlflow.set_tracking_uri(cfg.uri)
    judgement = judge(config, model_uri, run_id)
    version = str(mlflow.register_model(model_uri, cfg.model_name, tags={"run_id": run_id}).version)
    champion = judgement.champion
    return {
        "version": version,
        "run_id": run_id,
        "passed_gate": judgement.decision.promote,
        "reason": judgement.decision.reason,
        "metric": GATE_METRIC,
        "candidate_score": judgement.candidate.macro_f1,
        "champion_score": champion.macro_f1 if champion else None,
        "champion_version": judgement.champion_version,
        "canary": canary_photos(run_id, cfg.uri, config.project.data_dir, config.release.canary_size),
    }


def settle(config: Config, judged: dict[str, Any], infra_check: dict[str, Any] | None) -> dict[str, Any]:
    """Move ``tracking.alias`` to the judged version if it passed the gate and the infra check (``None``: not
    run, ``release.infra_check`` is off); the move is recorded in the alias history (:mod:`core.aliases`).
    A version not promoted is tagged ``rejected`` with the reason.

    Returns:
        ``judged`` less ``canary``, with ``promoted``, the final ``reason`` and ``infra_check``.
    """
    cfg, client = config.tracking, MlflowClient(tracking_uri=config.tracking.uri)
    version, run_id, reason = judged["version"], judged["run_id"], judged["reason"]
    promote = judged["passed_gate"]
    if promote and infra_check is not None and not infra_check["passed"]:
        promote, reason = False, f"infra check failed: {infra_check['reason']}"
    if promote:
        move_alias(client, cfg.model_name, cfg.alias, version, kind="gate", by=f"run {run_id}", why=reason)
        client.set_model_version_tag(cfg.model_name, version, "gate", "promoted")
        log.info("%s version %s is now @%s: %s", cfg.model_name, version, cfg.alias, reason)
    else:
        client.set_model_version_tag(cfg.model_name, version, "rejected", reason)
        log.warning("%s version %s NOT promoted: %s", cfg.model_name, version, reason)
    client.set_tag(run_id, "gate.decision", "promoted" if promote else "rejected")
    client.set_tag(run_id, "gate.reason", reason)
    kept = {key: value for key, value in judged.items() if key != "canary"}
    return {**kept, "promoted": promote, "reason": reason, "infra_check": infra_check}


def publish(config: Config, model_uri: str, run_id: str) -> dict[str, Any]:
    """:func:`register_and_judge` then :func:`settle` with no infra check (what ``release.infra_check: false``
    runs; the pipeline puts the check between them)."""
    return settle(config, register_and_judge(config, model_uri, run_id), None)
