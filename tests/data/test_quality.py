"""Data quality of a scraped data set (manifest + split): schema, labels, uniqueness, files, leakage, balance.

Runs on the tiny catalog scrape by default, or on any data folder (see ``tests/data/conftest.py``).
"""

from __future__ import annotations

import hashlib

import pytest

from core.manifest import COLUMNS
from core.phash import near_pairs
from training.splitting.split import SPLIT_COLUMNS

HEX64 = r"^[0-9a-f]{64}$"
MIN_BALANCE = 0.5  # the smallest class has at least half as many photos as the largest


def test_schema(dataset) -> None:
    assert list(dataset.manifest.columns) == COLUMNS
    assert list(dataset.split.columns) == SPLIT_COLUMNS
    assert dataset.manifest["sha256"].str.fullmatch(HEX64).all()
    hashed = dataset.manifest["phash"].dropna()
    assert len(hashed) == len(dataset.manifest) and hashed.str.fullmatch(HEX64).all()
    assert (dataset.manifest[["width", "height"]] >= dataset.config.scrape.min_side).all().all()
    assert set(dataset.split["split"]) == {"train", "val", "test"}


def test_labels_are_the_configured_classes(dataset) -> None:
    classes = set(dataset.config.class_names)
    assert set(dataset.manifest["class"]) == classes
    assert set(dataset.split["class"]) == classes
    for row in dataset.manifest.itertuples():  # a photo is filed under its class
        assert row.path.startswith(f"raw/{row._1}/")


def test_photos_are_unique(dataset) -> None:
    for column in ("sha256", "asin", "image_id", "path"):
        assert dataset.manifest[column].is_unique, column
    assert dataset.split["path"].is_unique and dataset.split["sha256"].is_unique


def test_every_row_has_its_file(dataset) -> None:
    for row in dataset.manifest.itertuples():
        file = dataset.data_dir / row.path
        assert file.is_file(), row.path
        assert hashlib.sha256(file.read_bytes()).hexdigest() == row.sha256, row.path


def test_the_split_covers_the_clean_manifest(dataset) -> None:
    manifest = dataset.manifest
    clean = manifest[~manifest["conflict"] & manifest["class"].isin(dataset.config.class_names)]
    assert set(dataset.split["path"]) == set(clean["path"])
    merged = dataset.split.merge(manifest, on="path", suffixes=("", "_manifest"))
    assert (merged["class"] == merged["class_manifest"]).all() and (merged["sha256"] == merged["sha256_manifest"]).all()


def test_no_near_duplicate_straddles_the_split(dataset) -> None:
    distance = dataset.config.scrape.near_duplicate_distance
    if distance < 0:
        pytest.skip("near-duplicate detection is off in this config")
    rows = dataset.split.merge(dataset.manifest[["path", "phash"]], on="path")
    sides = rows["split"].tolist()
    crossing = [(i, j) for i, j in near_pairs(rows["phash"].tolist(), distance) if sides[i] != sides[j]]
    assert not crossing, rows.iloc[[k for pair in crossing[:3] for k in pair]][["path", "split"]]


def test_classes_are_balanced(dataset) -> None:
    counts = dataset.split["class"].value_counts()
    assert counts.min() >= MIN_BALANCE * counts.max(), counts.to_dict()
    test_share = (dataset.split["split"] == "test").mean()
    assert test_share == pytest.approx(dataset.config.split.test_size, abs=0.1)
