"""Where a project stands (``stj status``): the champion and its metrics, the challenger's shadow tally, the
last run and what the quality gate decided, the alias history, and the photos per class in the manifest and the
split. Read-only.

Config keys: ``tracking.*``, ``release.challenger_alias``, ``project.data_dir``.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from configs.schema import Config
from core.aliases import alias_history, current_version
from core.label_overrides import reviewed_manifest
from core.shadow_tally import shadow_totals
from training.splitting.split import read_split, split_path

HEADLINE = ("test_macro_f1", "test_accuracy", "best_val_loss")
HISTORY_SHOWN = 10


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else "-"


def _champion(client: MlflowClient, config: Config) -> dict[str, Any] | None:
    try:
        version = client.get_model_version_by_alias(config.tracking.model_name, config.tracking.alias)
    except MlflowException:
        return None
    metrics = client.get_run(version.run_id).data.metrics
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "registered": _when(version.creation_timestamp),
        "metrics": {k: round(metrics[k], 4) for k in HEADLINE if k in metrics},
    }


def _challenger(client: MlflowClient, config: Config, champion: str | None) -> dict[str, Any] | None:
    """The challenger's version and what every replica counted in shadow against the champion."""
    name = config.tracking.model_name
    version = current_version(client, name, config.release.challenger_alias)
    if version is None:
        return None
    tally = shadow_totals(client, name, version, champion) if champion else None
    return {
        "version": version,
        "champion_version": champion,
        "scored": tally.scored if tally else 0,
        "agreement": tally.agreement if tally else None,
        "dropped": tally.dropped if tally else 0,
        "p95_ms": tally.p95_ms if tally else None,
        "classes": {label: {"scored": n, "agreed": agreed} for label, (n, agreed) in sorted(tally.classes.items())}
        if tally
        else {},
    }


def _last_run(client: MlflowClient, config: Config) -> dict[str, Any] | None:
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    if experiment is None:
        return None
    recent = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=50)
    # the train stage's runs: they have a validation loss and no parent (baselines and sweep points do)
    runs = [r for r in recent if "best_val_loss" in r.data.metrics and "mlflow.parentRunId" not in r.data.tags]
    if not runs:
        return None
    # of sibling runs (one per backbone), the one the gate judged; else the newest (not published yet)
    run = next((r for r in runs if "gate.decision" in r.data.tags), runs[0])
    return {
        "run_id": run.info.run_id,
        "name": run.info.run_name,
        "status": run.info.status,
        "started": _when(run.info.start_time),
        "gate": run.data.tags.get("gate.decision", "not published"),
        "reason": run.data.tags.get("gate.reason", ""),
        "metrics": {k: round(run.data.metrics[k], 4) for k in HEADLINE if k in run.data.metrics},
    }


def _data(data_dir: Path) -> dict[str, Any]:
    manifest = reviewed_manifest(data_dir)  # as the next split sees it: reviewers' decisions applied
    manifest = manifest[~manifest["conflict"].astype(bool)]  # listed under two classes: kept out of training
    classes = {str(k): int(v) for k, v in manifest["class"].value_counts().sort_index().items()}
    split: dict[str, dict[str, int]] = {}
    if split_path(data_dir).exists():
        frame = read_split(split_path(data_dir))
        for side, part in frame.groupby("split"):
            split[str(side)] = {str(k): int(v) for k, v in part["class"].value_counts().sort_index().items()}
    return {"photos": classes, "split": split}


def project_status(config: Config) -> dict[str, Any]:
    """The champion, the challenger, the last train-stage run, the two aliases' recorded moves (newest first, at
    most :data:`HISTORY_SHOWN`) and the data, as a JSON-ready dict (``None`` where absent)."""
    client = MlflowClient(tracking_uri=config.tracking.uri)
    aliases = (config.tracking.alias, config.release.challenger_alias)
    moves = [m for m in alias_history(client, config.tracking.model_name) if m.alias in aliases][:HISTORY_SHOWN]
    champion = _champion(client, config)
    return {
        "model": f"{config.tracking.model_name}@{config.tracking.alias}",
        "tracking_uri": config.tracking.uri,
        "champion": champion,
        "challenger": _challenger(client, config, champion["version"] if champion else None),
        "last_run": _last_run(client, config),
        "alias_history": [asdict(move) for move in moves],
        "data": _data(Path(config.project.data_dir)),
    }


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v}" for k, v in metrics.items()) or "no metrics"


def _challenger_lines(challenger: dict[str, Any] | None) -> list[str]:
    if challenger is None:
        return ["challenger none (name one with `stj promote N --as challenger`)"]
    head = f"challenger version {challenger['version']} in shadow"
    if not challenger["scored"]:
        return [f"{head}: no photos scored yet (dropped {challenger['dropped']})"]
    classes = ", ".join(
        f"{label} {c['agreed'] / c['scored']:.0%} of {c['scored']}" for label, c in challenger["classes"].items()
    )
    return [
        f"{head} against version {challenger['champion_version']}: agreement {challenger['agreement']:.1%} of "
        f"{challenger['scored']} photos, dropped {challenger['dropped']}, p95 {challenger['p95_ms']} ms",
        f"          by the champion's class: {classes}",
    ]


def format_status(status: dict[str, Any]) -> str:
    """The status as a few lines for a terminal."""
    champion, last, data = status["champion"], status["last_run"], status["data"]
    lines = [f"model     {status['model']} in {status['tracking_uri']}"]
    if champion:
        lines.append(
            f"champion  version {champion['version']} (registered {champion['registered']}): "
            f"{_metrics(champion['metrics'])}"
        )
    else:
        lines.append("champion  none yet (run `stj run`)")
    lines.extend(_challenger_lines(status.get("challenger")))
    if last:
        reason = f": {last['reason']}" if last["reason"] else ""
        lines.append(f"last run  {last['name']} [{last['status']}] started {last['started']}")
        lines.append(f"          gate {last['gate']}{reason}; {_metrics(last['metrics'])}")
    else:
        lines.append("last run  none")
    lines.append("alias history" + ("" if status["alias_history"] else "  none recorded"))
    champion_alias = status["model"].rsplit("@", 1)[1]
    for move in status["alias_history"]:
        lines.append(
            f"  {move['at']}  {'' if move['alias'] == champion_alias else '@' + move['alias'] + ' '}"
            f"{move['from_version'] or 'none'} -> {move['to_version'] or 'none'}  {move['kind']} by {move['by']}: "
            f"{move['why']}"
        )
    photos = data["photos"]
    lines.append(
        "data      " + (", ".join(f"{k} {v}" for k, v in photos.items()) + f" (total {sum(photos.values())})")
        if photos
        else "data      no photos scraped yet"
    )
    for side, counts in data["split"].items():
        lines.append(f"  {side:<7} " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return "\n".join(lines)
