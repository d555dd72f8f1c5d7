"""The scrape as one task per query (``orchestration.task_runner: dask``), merged into the one manifest.

Each task scrapes one (class, query) with the manifest as it was when the stage began: it skips what is
already listed, saves its photos under ``raw/`` as a whole scrape does, and writes what it kept to a part
file of its own (``scrape_parts/<n>.csv`` and its report, ``<n>.json``), never the manifest. The merge then
adopts the parts' photos in query order, exactly as one scrape keeps photos as they arrive: the same photo
found by two queries of a class is listed once, a photo under two classes is a conflict, a near-duplicate of
a photo kept earlier is dropped, each class stops at ``scrape.max_images_per_class``; the files of photos not
kept are removed. Killed midway, nothing is lost: photos on disk are adopted by the next run's download.

Config keys: ``project.data_dir``, everything under ``scrape``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from configs.files import atomic_write_text
from configs.schema import Config
from core.manifest import REPORT_NAME, manifest_path, read_manifest, rows_from_frame
from scraper.collection import Collection
from scraper.politeness import HostState
from scraper.report import ScrapeReport
from scraper.scrape import query_jobs, remove_partial_downloads, scrape

PARTS_DIR = "scrape_parts"
_SUMMED = ("pages", "items", "already_in_manifest", "duplicates", "near_duplicates", "retries", "robot_checks",
           "browser_pages")  # fmt: skip
_COUNTED = ("rejected", "skipped", "items_per_class", "downloaded_per_class", "rejected_per_class")


def plan_parts(config: Config) -> list[tuple[str, str, str]]:
    """Start a per-query scrape: clear what a killed one left; (class, query, part file) per task."""
    data_dir = Path(config.project.data_dir)
    shutil.rmtree(data_dir / PARTS_DIR, ignore_errors=True)
    (data_dir / PARTS_DIR).mkdir(parents=True)
    remove_partial_downloads(data_dir)
    return [
        (label, query, str(data_dir / PARTS_DIR / f"{n:03d}.csv"))
        for n, (label, query) in enumerate(query_jobs(config))
    ]


def scrape_part(
    config: Config, base_url: str | None, label: str, query: str, part: str, hosts: HostState | None = None
) -> dict:
    """One query's scrape into its part file; its report. ``hosts``: the politeness state the scrape's tasks
    share (``scraper.politeness``)."""
    return scrape(config, base_url, show_progress=False, jobs=[(label, query)], part=Path(part), hosts=hosts).to_dict()


def _add_part_report(merged: ScrapeReport, part: dict) -> None:
    merged.add(**{name: part[name] for name in _SUMMED})
    for name in _COUNTED:
        getattr(merged, name).update(Counter(part[name]))
    merged.add_conflicts(part["conflicts"], part["conflict_count"])
    merged.add_errors(part["errors"], part["error_count"])
    merged.seconds = max(merged.seconds, part["seconds"])


def merge_parts(config: Config, parts: list[str]) -> ScrapeReport:
    """Adopt the parts' photos into the manifest, in order; the whole stage's report (also written to
    ``<data_dir>/scrape_report.json``). A part a failed task never wrote is skipped."""
    data_dir = Path(config.project.data_dir)
    listed = rows_from_frame(read_manifest(manifest_path(data_dir)))
    merged = ScrapeReport()
    kept = Collection(listed, config.scrape.near_duplicate_distance, data_dir, merged)
    already = {row.image_id for row in listed}
    for part in map(Path, parts):
        if not part.exists():
            continue
        report = json.loads(part.with_suffix(".json").read_text())
        merged.started_at = min(filter(None, [merged.started_at, report["started_at"]]))
        _add_part_report(merged, report)
        for row in rows_from_frame(read_manifest(part)):
            if row.image_id not in already:
                kept.adopt(row, config.scrape.max_images_per_class)
            elif row.conflict:  # the task found a listed photo under another class
                kept.flag_conflict(row.image_id)
    kept.write()
    atomic_write_text(data_dir / REPORT_NAME, json.dumps(merged.to_dict(), indent=2))
    shutil.rmtree(data_dir / PARTS_DIR, ignore_errors=True)
    return merged
