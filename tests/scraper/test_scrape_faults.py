"""Scraping a catalog that behaves like the real site: faults, robot checks, robots.txt, duplicates, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from catalog import running_catalog
from catalog.server import has_fault
from catalog.settings import CatalogConfig
from core.manifest import manifest_path, read_manifest
from scraper.scrape import scrape
from training.splitting.split import prepare, read_split

SMALL = {
    "products_per_class": 12,
    "results_per_page": 8,
    "sponsored_per_page": 2,
    "repeats_per_page": 1,
    "image_side": 160,
    "port": 0,
}


def _catalog(**faults) -> CatalogConfig:
    extra = {k: faults.pop(k) for k in list(faults) if k in CatalogConfig.model_fields}
    return CatalogConfig(**{**SMALL, **extra, "faults": faults})


def test_faulty_catalog_exact_counts(make_config) -> None:
    config = make_config()
    catalog = _catalog(error_rate=0.3, truncated_rate=0.15, fake_image_rate=0.1)
    with running_catalog(catalog) as server:
        report = scrape(config, base_url=server.base_url, show_progress=False)
        served_503 = server.hits["503"]
    fake = truncated = 0
    for items in server.catalog.products.values():
        for product in items:
            if has_fault(product.image_id, 0.1, "fake"):
                fake += 1
            elif has_fault(product.image_id, 0.15, "truncated"):
                truncated += 1
    assert fake and truncated and served_503, "the chosen rates must hit something"
    assert dict(report.rejected) == {k: v for k, v in {"not_an_image": fake, "corrupt": truncated}.items() if v}
    assert report.saved == 36 - fake - truncated
    assert report.retries == served_503  # every 503 was retried once and then succeeded
    assert report.pages == 9 and not report.errors


@pytest.mark.browser
def test_robot_check_switches_query_to_browser(make_config) -> None:
    config = make_config("scrape.fetcher=auto", "scrape.robot_backoff_s=0")
    with running_catalog(_catalog(robot_check_first=True, lazy_images=True)) as server:
        report = scrape(config, base_url=server.base_url, show_progress=False)
        assert server.hits["captcha"] == 3
    assert report.robot_checks == 3
    assert report.browser_pages == 9  # every page of every query came through Chromium
    assert report.saved == 36 and report.per_class == {"saree": 12, "trousers": 12, "jeans": 12}
    rows = read_manifest(manifest_path(config.project.data_dir))
    assert not rows["image_url"].str.startswith("data:").any()  # lazy placeholders were resolved


def test_robot_check_without_browser_is_reported(make_config) -> None:
    config = make_config("scrape.fetcher=requests")
    with running_catalog(_catalog(robot_check_first=True)) as server:
        report = scrape(config, base_url=server.base_url, show_progress=False)
    assert report.robot_checks == 3 and report.saved == 0
    assert len(report.errors) == 3 and all("robot check" in e for e in report.errors)


def test_robots_txt_is_obeyed_unless_overridden(make_config) -> None:
    with running_catalog(_catalog(robots_disallow=["/s?k=men+jeans"])) as server:
        obeyed = scrape(make_config(), base_url=server.base_url, show_progress=False)
        assert obeyed.per_class == {"saree": 12, "trousers": 12}
        assert any("robots.txt disallows" in e for e in obeyed.errors)
        ignored = scrape(
            make_config(
                "scrape.obey_robots=false",
                "project.data_dir=" + str(Path(make_config().project.data_dir).parent / "ignored"),
            ),
            base_url=server.base_url,
            show_progress=False,
        )
        assert ignored.per_class["jeans"] == 12


def test_near_duplicates_and_cross_class_conflicts(make_config) -> None:
    config = make_config()
    catalog = _catalog(near_duplicates_per_class=2, cross_class_duplicates=1)
    with running_catalog(catalog) as server:
        report = scrape(config, base_url=server.base_url, show_progress=False)
    assert report.near_duplicates == 6
    assert len(report.conflicts) == 3
    assert report.saved == 36  # of each pair one copy is kept, flagged
    rows = read_manifest(manifest_path(config.project.data_dir))
    flagged = set(rows.loc[rows["conflict"], "image_id"])
    assert flagged == {c["image_id"] for c in report.conflicts}
    split = read_split(prepare(config))
    assert len(split) == 33 and not set(split["path"]) & set(rows.loc[rows["conflict"], "path"])


def test_kill_9_then_resume_keeps_every_image_once(make_config, overrides_for, tmp_path: Path) -> None:
    config = make_config("scrape.concurrency=2")
    catalog = _catalog(latency_ms=60)
    data_dir = Path(config.project.data_dir)
    with running_catalog(catalog) as server:
        overrides = [*overrides_for(tmp_path), "scrape.concurrency=2"]
        script = (
            "import json, sys; from flows.settings import load_run_config; from scraper.scrape import scrape; "
            "cfg = load_run_config('configs/demo.yaml', json.loads(sys.argv[1])); "
            f"scrape(cfg, base_url={server.base_url!r}, show_progress=False)"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(overrides)], env={**os.environ, "PYTHONPATH": os.getcwd()}
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((data_dir / "raw").rglob("*.jpg"))) < 14:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert len(list((data_dir / "raw").rglob("*.jpg"))) < 36, "killed before it finished"
        first_run_images = server.hits["image"]
        report = scrape(config, base_url=server.base_url, show_progress=False)
        total_images = server.hits["image"]
    rows = read_manifest(manifest_path(data_dir))
    assert len(rows) == 36 and rows["image_id"].is_unique and rows["asin"].is_unique
    on_disk = {p.relative_to(data_dir).as_posix() for p in (data_dir / "raw").rglob("*") if p.is_file()}
    assert on_disk == set(rows["path"])  # no orphans, no temp files, nothing missing
    assert report.per_class == {"saree": 12, "trousers": 12, "jeans": 12}
    # only photos in flight at the kill (at most `concurrency`) can have been fetched twice
    assert total_images - 36 <= 2, (first_run_images, total_images)
