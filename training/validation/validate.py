"""Data validation between runs (as TFX's ExampleValidator does): statistics of this run's scrape and split,
checked against absolute floors and against the last successful run's statistics, before anything trains.

``<data_dir>/data_stats.json`` holds this run's statistics; ``data_stats.baseline.json`` the last successful
run's (written by :func:`accept` once a run has finished); ``data_validation.md`` the report of the checks.
Deleting the baseline accepts the data as it is now (only the absolute floors are checked then).

Config keys: ``validation.*``, ``project.data_dir``, ``class_names``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from configs.errors import UserError
from configs.files import atomic_write_text
from configs.schema import Config, ValidationConfig
from core.label_overrides import reviewed_manifest
from core.manifest import REPORT_NAME
from training.splitting.split import NotEnoughData, plan_split, write_plan

log = logging.getLogger(__name__)
STATS_NAME = "data_stats.json"
BASELINE_NAME = "data_stats.baseline.json"
REPORT_MD_NAME = "data_validation.md"
RATES = ("rejected_rate", "robot_check_rate", "error_rate", "duplicate_rate")


class DataAnomaly(UserError):
    """This run's data failed a validation check; the message names the check and the numbers."""


@dataclass(frozen=True)
class Anomaly:
    """One failed check: its name, what it looked at, and the numbers."""

    check: str
    subject: str
    message: str


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _quantiles(values: pd.Series) -> dict[str, float] | None:
    if values.empty:
        return None
    return {f"p{int(q * 100):02d}": float(values.quantile(q)) for q in (0.05, 0.5, 0.95)}


def data_stats(manifest: pd.DataFrame, report: dict[str, Any], split: pd.DataFrame, classes: list[str]) -> dict:
    """The statistics of one run: per class, scrape rates, image sizes and the split.

    Args:
        manifest: the whole manifest (every photo kept so far).
        report: this run's scrape report (``scrape_report.json``).
        split: the split file.
        classes: the configured class names.
    """
    usable = manifest[~manifest["conflict"].astype(bool)]
    new = manifest[manifest["scraped_at"].astype(str) >= report.get("started_at", "~")]
    per_class = {}
    for name in classes:
        downloaded = report.get("downloaded_per_class", {}).get(name, 0)
        rejected = report.get("rejected_per_class", {}).get(name, 0)
        per_class[name] = {
            "photos": int((usable["class"] == name).sum()),
            "new": int((new["class"] == name).sum()),
            "search_results": report.get("items_per_class", {}).get(name, 0),
            "downloaded": downloaded,
            "rejected": rejected,
            "rejected_rate": _rate(rejected, downloaded),
        }
    pages, items = report.get("pages", 0), report.get("items", 0)
    downloaded = sum(c["downloaded"] for c in per_class.values())
    sides = split.groupby(["split", "class"]).size()
    return {
        "classes": per_class,
        "scrape": {
            "pages": pages,
            "search_results": items,
            "downloaded": downloaded,
            "new_photos": len(new),
            "known_photos": len(manifest) - len(new),
            "rejected_by_reason": report.get("rejected", {}),
            "rejected_rate": _rate(sum(c["rejected"] for c in per_class.values()), downloaded),
            "robot_check_rate": _rate(report.get("robot_checks", 0), pages),
            # error_count counts them all; the list holds the first hundred (a report from before the count: all)
            "error_rate": _rate(report.get("error_count", len(report.get("errors", []))), pages),
            "duplicate_rate": _rate(report.get("duplicates", 0) + report.get("near_duplicates", 0), items),
            "conflict_rate": _rate(int(manifest["conflict"].astype(bool).sum()), len(manifest)),
        },
        "image_sizes": {
            "all": {"width": _quantiles(manifest["width"]), "height": _quantiles(manifest["height"])},
            "new": {"width": _quantiles(new["width"]), "height": _quantiles(new["height"])},
        },
        "split": {
            side: {name: int(sides.get((side, name), 0)) for name in classes} for side in ("train", "val", "test")
        },
    }


def _floor_checks(stats: dict, limits: ValidationConfig) -> list[Anomaly]:
    found = []
    for name, c in stats["classes"].items():
        if c["downloaded"] >= limits.min_sample and c["rejected_rate"] > limits.max_rejected_rate:
            found.append(
                Anomaly(
                    "max_rejected_rate",
                    name,
                    f"{c['rejected']} of {c['downloaded']} photos rejected ({c['rejected_rate']:.0%}), "
                    f"limit {limits.max_rejected_rate:.0%}",
                )
            )
        if c["photos"] < limits.min_photos_per_class:
            found.append(
                Anomaly("min_photos_per_class", name, f"{c['photos']} photos, floor {limits.min_photos_per_class}")
            )
    scrape = stats["scrape"]
    for key, limit in (("robot_check_rate", limits.max_robot_check_rate), ("error_rate", limits.max_error_rate)):
        if scrape["pages"] >= limits.min_sample and scrape[key] is not None and scrape[key] > limit:
            found.append(
                Anomaly(f"max_{key}", "scrape", f"{scrape[key]:.0%} of {scrape['pages']} pages, limit {limit:.0%}")
            )
    return found


def _change_checks(stats: dict, baseline: dict, limits: ValidationConfig) -> list[Anomaly]:
    found = []
    for name, c in stats["classes"].items():
        before = baseline.get("classes", {}).get(name, {}).get("search_results", 0)
        if before >= limits.min_sample and c["search_results"] < (1 - limits.max_class_drop) * before:
            found.append(
                Anomaly(
                    "max_class_drop",
                    name,
                    f"{c['search_results']} search results, last good run {before} "
                    f"(a drop over {limits.max_class_drop:.0%})",
                )
            )
    for key in RATES:
        now, then = stats["scrape"].get(key), baseline.get("scrape", {}).get(key)
        if now is not None and then is not None and now - then > limits.max_rate_increase:
            found.append(
                Anomaly(
                    "max_rate_increase",
                    key,
                    f"{now:.0%}, last good run {then:.0%} (a rise over {limits.max_rate_increase:.0%} points)",
                )
            )
    for side in ("width", "height"):
        now = (stats["image_sizes"]["new"][side] or {}).get("p50")
        then = ((baseline.get("image_sizes", {}).get("all") or {}).get(side) or {}).get("p50")
        if now and then and abs(now - then) / then > limits.max_size_shift:
            found.append(
                Anomaly(
                    "max_size_shift",
                    f"image {side}",
                    f"new photos' median {now:.0f} px, last good run {then:.0f} px "
                    f"(a change over {limits.max_size_shift:.0%})",
                )
            )
    return found


def find_anomalies(stats: dict, baseline: dict | None, limits: ValidationConfig) -> list[Anomaly]:
    """The checks this run's statistics fail: absolute floors always, changes when a baseline exists."""
    return _floor_checks(stats, limits) + (_change_checks(stats, baseline, limits) if baseline else [])


def report_markdown(stats: dict, anomalies: list[Anomaly], baseline: dict | None) -> str:
    """A readable report of the statistics and the checks (also the Prefect artifact)."""
    verdict = "**passed**" if not anomalies else f"**{len(anomalies)} check(s) failed**"
    lines = [f"# Data validation: {verdict}", ""]
    lines += [f"- `{a.check}` ({a.subject}): {a.message}" for a in anomalies]
    lines += ["", f"Compared with: {'the last good run' if baseline else 'absolute floors only (no earlier run)'}"]
    lines += ["", "| class | photos | new | search results | downloaded | rejected |", "|---|---|---|---|---|---|"]
    for name, c in stats["classes"].items():
        lines.append(
            f"| {name} | {c['photos']} | {c['new']} | {c['search_results']} | {c['downloaded']} | {c['rejected']} |"
        )
    scrape = stats["scrape"]
    lines += [
        "",
        "| rate | this run |" + (" last good run |" if baseline else ""),
        "|---|---|" + ("---|" if baseline else ""),
    ]
    for key in (*RATES, "conflict_rate"):
        then = f" {baseline.get('scrape', {}).get(key)} |" if baseline else ""
        lines.append(f"| {key} | {scrape[key]} |{then}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Validation:
    """The outcome of :func:`validate`: this run's statistics, the failed checks, the report, and the split
    it planned (``training.splitting.split.write_plan``; ``None`` when none could be made), for the prepare stage."""

    stats: dict
    anomalies: list[Anomaly]
    report: str
    plan: Path | None = None

    def raise_if_failed(self) -> None:
        """Raise :class:`DataAnomaly` naming the first failed check (and how many more failed)."""
        if self.anomalies:
            first = self.anomalies[0]
            more = f" (and {len(self.anomalies) - 1} more, see {REPORT_MD_NAME})" if len(self.anomalies) > 1 else ""
            raise DataAnomaly(f"data check {first.check} failed for {first.subject}: {first.message}{more}")


def validate(config: Config, excluded: Iterable[str] = ()) -> Validation:
    """Compute this run's data statistics (the split as :func:`training.splitting.split.plan_split` will make it), check
    them and write ``data_stats.json`` and ``data_validation.md`` (``validation.enabled: false`` writes them and
    checks nothing; a split that cannot be made is still reported, as the prepare stage would fail on it).
    ``excluded``: photo paths the split leaves out, as :func:`training.splitting.split.plan_split` takes them."""
    data_dir = Path(config.project.data_dir)
    report_file = data_dir / REPORT_NAME
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    try:
        split, unsplittable = plan_split(config, excluded), []
        plan = write_plan(config, split)  # the prepare stage adopts it: the split is planned once per run
    except NotEnoughData as exc:
        split, unsplittable = pd.DataFrame(columns=["path", "class", "split"]), [Anomaly("split", "classes", str(exc))]
        plan = None
    stats = data_stats(reviewed_manifest(data_dir), report, split, config.class_names)
    baseline_file = data_dir / BASELINE_NAME
    baseline = json.loads(baseline_file.read_text()) if baseline_file.exists() else None
    anomalies = find_anomalies(stats, baseline, config.validation) if config.validation.enabled else []
    anomalies += [] if anomalies else unsplittable  # the checks above say why a class is too small
    markdown = report_markdown(stats, anomalies, baseline)
    atomic_write_text(data_dir / STATS_NAME, json.dumps(stats, indent=2))
    atomic_write_text(data_dir / REPORT_MD_NAME, markdown)
    for anomaly in anomalies:
        log.warning("data check %s failed for %s: %s", anomaly.check, anomaly.subject, anomaly.message)
    return Validation(stats, anomalies, markdown, plan)


def accept(data_dir: str | Path) -> None:
    """Make this run's statistics the baseline the next run is compared with (call after a successful run)."""
    stats = Path(data_dir) / STATS_NAME
    if stats.exists():
        atomic_write_text(Path(data_dir) / BASELINE_NAME, stats.read_text())
