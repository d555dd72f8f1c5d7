"""Data validation between runs: statistics of a scrape and split, absolute floors on a first run, changes
against the last good run's statistics, and a one-line error naming the failed check and its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from configs.schema import ValidationConfig
from core.manifest import COLUMNS, REPORT_NAME, manifest_path
from training.validation.validate import (
    BASELINE_NAME,
    STATS_NAME,
    DataAnomaly,
    accept,
    data_stats,
    find_anomalies,
    validate,
)

CLASSES = ["saree", "trousers", "jeans"]
LIMITS = ValidationConfig()
RUN_1, RUN_2 = "2026-11-01T03:00:00+00:00", "2026-11-08T03:00:00+00:00"


def _manifest(counts: dict[str, int], at: str = RUN_1, side: int = 400, start: int = 0) -> pd.DataFrame:
    rows = [
        {"class": label, "path": f"raw/{label}/{label}{i}.jpg", "sha256": f"{label}{i}", "image_id": f"{label}{i}",
         "width": side, "height": side, "scraped_at": at, "conflict": False}
        for label, n in counts.items()
        for i in range(start, start + n)
    ]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def _report(found: dict[str, int], rejected: dict[str, int] | None = None, at: str = RUN_1, **extra) -> dict:
    rejected = rejected or {}
    return {
        "started_at": at,
        "pages": 30,
        "items": sum(found.values()),
        "items_per_class": found,
        "downloaded_per_class": found,
        "rejected_per_class": rejected,
        "rejected": {"not_an_image": sum(rejected.values())},
        "robot_checks": 0,
        "errors": [],
        "duplicates": 0,
        "near_duplicates": 0,
        **extra,
    }


def _split(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest.assign(split=["test" if i % 5 == 0 else "train" for i in range(len(manifest))])


def _stats(manifest: pd.DataFrame, report: dict) -> dict:
    return data_stats(manifest, report, _split(manifest), CLASSES)


def test_statistics_count_classes_rates_new_photos_and_sides() -> None:
    old = _manifest({"saree": 10, "trousers": 10, "jeans": 10})
    new = _manifest({"saree": 5, "trousers": 5, "jeans": 2}, at=RUN_2, side=300, start=100)
    manifest = pd.concat([old, new], ignore_index=True)
    report = _report({"saree": 8, "trousers": 6, "jeans": 10}, {"jeans": 8}, at=RUN_2, robot_checks=3)
    stats = _stats(manifest, report)
    assert stats["classes"]["jeans"] == {
        "photos": 12, "new": 2, "search_results": 10, "downloaded": 10, "rejected": 8, "rejected_rate": 0.8,
    }  # fmt: skip
    assert stats["scrape"]["new_photos"] == 12 and stats["scrape"]["known_photos"] == 30
    assert stats["scrape"]["rejected_rate"] == round(8 / 24, 4)
    assert stats["scrape"]["robot_check_rate"] == 0.1
    assert stats["image_sizes"]["new"]["width"]["p50"] == 300 and stats["image_sizes"]["all"]["width"]["p50"] == 400
    assert sum(stats["split"]["test"].values()) == 9 and sum(stats["split"]["train"].values()) == 33


def test_a_first_run_is_held_to_absolute_floors() -> None:
    manifest = _manifest({"saree": 12, "trousers": 12, "jeans": 2})
    stats = _stats(manifest, _report({"saree": 12, "trousers": 12, "jeans": 20}, {"jeans": 18}))
    found = {(a.check, a.subject) for a in find_anomalies(stats, None, LIMITS)}
    assert found == {("min_photos_per_class", "jeans"), ("max_rejected_rate", "jeans")}
    small = _stats(manifest, _report({"saree": 12, "trousers": 12, "jeans": 5}, {"jeans": 4}))
    assert {a.check for a in find_anomalies(small, None, LIMITS)} == {"min_photos_per_class"}  # 5 < min_sample


def test_changes_against_the_last_good_run() -> None:
    manifest = _manifest({"saree": 40, "trousers": 40, "jeans": 40})
    baseline = _stats(manifest, _report({"saree": 40, "trousers": 40, "jeans": 40}))
    same = _stats(manifest, _report({"saree": 40, "trousers": 38, "jeans": 40}, at=RUN_2))
    assert find_anomalies(same, baseline, LIMITS) == []

    grown = pd.concat([manifest, _manifest({"jeans": 10}, at=RUN_2, side=900, start=100)], ignore_index=True)
    report = _report({"saree": 40, "trousers": 12, "jeans": 40}, at=RUN_2, robot_checks=12)
    found = {(a.check, a.subject): a.message for a in find_anomalies(_stats(grown, report), baseline, LIMITS)}
    assert set(found) == {
        ("max_class_drop", "trousers"),
        ("max_rate_increase", "robot_check_rate"),
        ("max_size_shift", "image width"),
        ("max_size_shift", "image height"),
    }
    assert found[("max_class_drop", "trousers")] == "12 search results, last good run 40 (a drop over 50%)"
    assert "median 900 px, last good run 400 px" in found[("max_size_shift", "image width")]


def test_validate_writes_stats_stops_with_one_line_and_accept_makes_the_baseline(tmp_path: Path, make_config) -> None:
    config = make_config(f"project.data_dir={tmp_path}")
    manifest = _manifest({"saree": 30, "trousers": 30, "jeans": 30})
    manifest.to_csv(manifest_path(tmp_path), index=False)
    (tmp_path / REPORT_NAME).write_text(json.dumps(_report({"saree": 30, "trousers": 30, "jeans": 30})))
    first = validate(config)
    assert first.anomalies == [] and (tmp_path / STATS_NAME).exists() and not (tmp_path / BASELINE_NAME).exists()
    accept(tmp_path)
    assert json.loads((tmp_path / BASELINE_NAME).read_text()) == first.stats

    (tmp_path / REPORT_NAME).write_text(json.dumps(_report({"saree": 30, "trousers": 30, "jeans": 3}, at=RUN_2)))
    second = validate(config)
    with pytest.raises(DataAnomaly) as failure:
        second.raise_if_failed()
    assert str(failure.value) == (
        "data check max_class_drop failed for jeans: 3 search results, last good run 30 (a drop over 50%)"
    )
    assert "max_class_drop" in (tmp_path / "data_validation.md").read_text()
    assert json.loads((tmp_path / BASELINE_NAME).read_text()) == first.stats  # a failed run is not the baseline
    off = make_config(f"project.data_dir={tmp_path}", "validation.enabled=false")
    assert validate(off).anomalies == []


def test_prepare_adopts_the_split_validate_planned(tmp_path: Path, make_config, monkeypatch) -> None:
    """The split is planned once per run: validate keeps its plan, prepare moves it into place unchanged."""
    import training.splitting.split as split_module

    config = make_config(f"project.data_dir={tmp_path}")
    _manifest({"saree": 30, "trousers": 30, "jeans": 30}).to_csv(manifest_path(tmp_path), index=False)
    outcome = validate(config)
    planned = outcome.plan.read_text()

    def planned_again(*args, **kwargs):
        raise AssertionError("the split was planned a second time")

    monkeypatch.setattr(split_module, "plan_split", planned_again)
    written = split_module.prepare(config, plan=outcome.plan)
    assert written.read_text() == planned and not outcome.plan.exists()
    assert sum(outcome.stats["classes"][c]["photos"] for c in ("saree", "trousers", "jeans")) == 90
