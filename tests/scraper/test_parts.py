"""Merging per-query scrape parts keeps what one scrape would keep: each photo once, conflicts flagged,
near-duplicates and photos over the class cap dropped (their files too), failed parts skipped."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd

from core.manifest import ManifestRow, manifest_path, read_manifest, write_manifest
from scraper.parts import merge_parts
from scraper.report import ScrapeReport
from tests.scraper.conftest import FAR, NEAR, OTHER, saved_row


def _part(data: Path, n: int, rows: list[ManifestRow], **counts: int) -> str:
    file = data / "scrape_parts" / f"{n:03d}.csv"
    file.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(rows, file)
    report = ScrapeReport(started_at=f"2026-11-24T00:0{n}:00+00:00", **counts)
    report.saved_per_class.update(r.label for r in rows)
    file.with_suffix(".json").write_text(json.dumps(report.to_dict()))
    return str(file)


def test_parts_merge_like_one_scrape(tmp_path: Path, make_config) -> None:
    config = make_config(f"project.data_dir={tmp_path}", "scrape.max_images_per_class=2")
    listed = saved_row("saree", "s0", "A0", OTHER, tmp_path)
    write_manifest([listed], manifest_path(tmp_path))
    parts = [
        _part(tmp_path, 0, [listed, saved_row("saree", "s1", "A1", FAR, tmp_path)], pages=2, items=10),
        _part(
            tmp_path,
            1,
            [
                saved_row("saree", "s1", "A1", FAR, tmp_path),  # the same photo from another saree query: once
                saved_row("jeans", "j1", "A9", NEAR, tmp_path),  # near the kept saree s1: a conflict, dropped
                saved_row("saree", "s2", "A2", "1" * 64, tmp_path),  # over saree's cap of 2 (s0, s1)
                saved_row("trousers", "t1", "A1", "3" * 64, tmp_path),  # the ASIN of s1 again: a duplicate
                saved_row("trousers", "t2", "A3", "7" * 64, tmp_path),
            ],
            pages=3,
            items=12,
        ),
        str(tmp_path / "scrape_parts" / "002.csv"),  # a task that failed before writing
        _part(tmp_path, 3, [dataclasses.replace(listed, conflict=True)]),  # found s0 under another class
    ]

    report = merge_parts(config, parts)

    manifest = read_manifest(manifest_path(tmp_path)).set_index("image_id")
    assert list(manifest.index) == ["s0", "s1", "t2"]
    assert manifest.loc["s1", "conflict"] and manifest.loc["s0", "conflict"] and not manifest.loc["t2", "conflict"]
    assert (tmp_path / "raw" / "saree" / "s1.jpg").exists()  # shared by both queries: kept
    for dropped in ("jeans/j1", "saree/s2", "trousers/t1"):
        assert not (tmp_path / "raw" / f"{dropped}.jpg").exists(), dropped
    assert report.saved == 2 and dict(report.per_class) == {"saree": 2, "trousers": 1}
    assert report.pages == 5 and report.items == 22 and report.duplicates == 2
    assert [c["image_id"] for c in report.conflicts] == ["s1"]
    assert report.started_at == "2026-11-24T00:00:00+00:00"
    assert not (tmp_path / "scrape_parts").exists()
    assert json.loads((tmp_path / "scrape_report.json").read_text())["saved"] == 2


def test_nothing_to_merge_leaves_the_manifest(tmp_path: Path, make_config) -> None:
    config = make_config(f"project.data_dir={tmp_path}")
    write_manifest([saved_row("saree", "s0", "A0", FAR, tmp_path)], manifest_path(tmp_path))
    merge_parts(config, [])
    assert list(pd.read_csv(manifest_path(tmp_path), dtype=str)["image_id"]) == ["s0"]


def test_the_report_lists_at_most_a_hundred_conflicts_and_errors_and_counts_them_all() -> None:
    from scraper.report import LISTED_AT_MOST, ScrapeReport

    merged = ScrapeReport()
    for start in (0, 80):  # two parts, as a per-query scrape merges them
        part = ScrapeReport()
        for i in range(start, start + 80):
            part.add_conflicts([{"image_id": f"c{i}"}], 1)
            part.add_error(f"page {i} failed")
        merged.add_conflicts(part.to_dict()["conflicts"], part.to_dict()["conflict_count"])
        merged.add_errors(part.to_dict()["errors"], part.to_dict()["error_count"])
    report = merged.to_dict()
    assert report["conflict_count"] == report["error_count"] == 160
    assert [c["image_id"] for c in report["conflicts"]] == [f"c{i}" for i in range(LISTED_AT_MOST)]
    assert len(report["errors"]) == LISTED_AT_MOST
    assert "conflicts 160" in merged.summary() and "errors 160" in merged.summary()
