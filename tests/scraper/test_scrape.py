"""Scraping a real local catalog server: exact counts, a manifest that matches the files, idempotent resume."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from PIL import Image

from core.manifest import COLUMNS, manifest_path, read_manifest, write_manifest
from scraper.scrape import scrape

# tiny catalog: 12 products per class, 8 results per page of which 2 sponsored and 1 repeat -> 5 new per page
PER_CLASS, PAGES_PER_CLASS, REPEATS_PER_CLASS, ADS_PER_PAGE = 12, 3, 2, 2


def test_scrape_counts_manifest_and_files(make_config, catalog_server) -> None:
    config = make_config()
    report = scrape(config, base_url=catalog_server.base_url, show_progress=False)
    assert report.per_class == {"saree": PER_CLASS, "trousers": PER_CLASS, "jeans": PER_CLASS}
    assert report.saved == 3 * PER_CLASS
    assert report.pages == 3 * PAGES_PER_CLASS
    assert report.duplicates == 3 * REPEATS_PER_CLASS
    assert report.skipped == {"sponsored": 3 * PAGES_PER_CLASS * ADS_PER_PAGE}
    assert not report.rejected and not report.errors

    data_dir = Path(config.project.data_dir)
    manifest = read_manifest(manifest_path(data_dir))
    assert list(manifest.columns) == COLUMNS
    assert len(manifest) == 3 * PER_CLASS
    assert manifest["asin"].is_unique and manifest["image_id"].is_unique
    for row in manifest.itertuples():
        file = data_dir / row.path
        assert file.parent.name == row._1  # data/raw/<class>/<image_id>.jpg
        assert hashlib.sha256(file.read_bytes()).hexdigest() == row.sha256
        assert Image.open(file).size == (row.width, row.height) == (160, 160)  # full size, not the thumbnail
        assert "._AC_" not in row.image_url
    assert (data_dir / "scrape_report.json").exists()


def test_rerun_downloads_nothing(make_config, catalog_server) -> None:
    config = make_config()
    scrape(config, base_url=catalog_server.base_url, show_progress=False)
    before = catalog_server.hits["image"]
    again = scrape(config, base_url=catalog_server.base_url, show_progress=False)
    assert again.saved == 0
    assert catalog_server.hits["image"] == before
    assert len(read_manifest(manifest_path(config.project.data_dir))) == 3 * PER_CLASS


def test_files_without_manifest_rows_are_adopted_not_refetched(make_config, catalog_server) -> None:
    """As after a kill between saving photos and rewriting the manifest."""
    config = make_config()
    scrape(config, base_url=catalog_server.base_url, show_progress=False)
    mpath = manifest_path(config.project.data_dir)
    full = read_manifest(mpath)
    write_manifest(full.iloc[:10], mpath)
    before = catalog_server.hits["image"]
    report = scrape(config, base_url=catalog_server.base_url, show_progress=False)
    assert catalog_server.hits["image"] == before
    assert report.saved == len(full) - 10
    resumed = read_manifest(mpath)
    pd.testing.assert_frame_equal(
        resumed.drop(columns="scraped_at").sort_values("asin").reset_index(drop=True),
        full.drop(columns="scraped_at").sort_values("asin").reset_index(drop=True),
        check_dtype=False,
    )
