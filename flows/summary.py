"""What a pipeline run did, as the Prefect UI shows it: a markdown summary (artifact ``stj-summary``) and a
table of per-class test metrics (artifact ``stj-class-metrics``). Pure functions of the pipeline's result."""

from __future__ import annotations

from typing import Any


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _infra(check: dict[str, Any] | None) -> str:
    if check is None:
        return "not run (the gate rejected the model, or release.infra_check is off)"
    return f"{'passed' if check['passed'] else '**failed**'}: {check['reason']} ({check['metrics']['seconds']:.1f} s)"


def summary_markdown(result: dict[str, Any], link: str) -> str:
    """The run in a few lines: data, the candidate's metrics, the gate's decision with both scores, a link."""
    train, publish, data = result["train"], result["publish"], result.get("data") or {}
    metrics = train["metrics"]
    verdict = "promoted" if publish["promoted"] else "**rejected**"
    champion = f"version {publish['champion_version']}" if publish.get("champion_version") else "none"
    lines = [
        f"# STJ run: model version {publish['version']} {verdict}",
        "",
        f"- Gate ({publish['metric']} on the candidate's test photos): candidate "
        f"{_score(publish['candidate_score'])}, champion ({champion}) {_score(publish['champion_score'])}",
        f"- Reason: {publish['reason']}",
        f"- Infra check: {_infra(publish.get('infra_check'))}",
        f"- Candidate: `{train['backbone']}` (weights {train['weights_used']}, {train['runtime']}), test accuracy "
        f"{metrics['test_accuracy']:.3f}, macro F1 {metrics['test_macro_f1']:.3f}, validation loss "
        f"{train['val_loss']:.4f}",
        f"- MLflow run: [{train['run_id']}]({link})",
    ]
    if seconds := result.get("stage_seconds"):
        lines.append("- Stage times: " + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    if labels := train.get("labels"):
        cv = labels["crossval"]
        lines.append(
            f"- Label issues: {labels['issues']} photo(s) flagged (`label_issues.csv` on the MLflow run); k-fold "
            f"accuracy: head {cv['cv_head_accuracy_mean']:.3f} ± {cv['cv_head_accuracy_std']:.3f}, kNN "
            f"{cv['cv_knn_accuracy_mean']:.3f}, decision tree {cv['cv_decision_tree_accuracy_mean']:.3f}"
        )
    for sibling in train.get("siblings", []):
        if sibling["run_id"] != train["run_id"]:
            lines.append(
                f"- Sibling `{sibling['backbone']}`: test accuracy {sibling['metrics']['test_accuracy']:.3f}, "
                f"validation loss {sibling['val_loss']:.4f}"
            )
    if data:
        scrape = data["scrape"]
        lines += [
            "",
            f"Data: {scrape['new_photos']} new and {scrape['known_photos']} known photos; rejected rate "
            f"{scrape['rejected_rate']}, robot-check rate {scrape['robot_check_rate']}, duplicate rate "
            f"{scrape['duplicate_rate']}.",
            "",
            "| class | photos | new | train | val | test |",
            "|---|---|---|---|---|---|",
        ]
        split = data["split"]
        for name, c in data["classes"].items():
            sides = " | ".join(str(split[side].get(name, 0)) for side in ("train", "val", "test"))
            lines.append(f"| {name} | {c['photos']} | {c['new']} | {sides} |")
    return "\n".join(lines) + "\n"


def class_metrics_table(metrics: dict[str, float], class_names: list[str]) -> list[dict[str, Any]]:
    """One row per class: test precision, recall and F1 (rounded for reading)."""
    return [
        {
            "class": name,
            **{m: round(metrics[f"test_{name}_{m}"], 4) for m in ("precision", "recall", "f1")},
        }
        for name in class_names
    ]
