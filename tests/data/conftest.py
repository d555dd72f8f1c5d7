"""The data set under test: any scraped manifest + split.

By default a tiny data set is scraped from the local catalog (with known near-duplicates and a cross-class
duplicate) and split, once per session. To check a real data set instead, point the suite at it:

    STJ_DATA_DIR=data/demo STJ_CONFIG=configs/demo.yaml .venv/bin/pytest tests/data
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from catalog import running_catalog
from catalog.settings import CatalogConfig
from configs.schema import Config
from core.manifest import manifest_path, read_manifest
from flows.settings import load_run_config
from scraper.scrape import scrape
from training.splitting.split import prepare, read_split, split_path


@dataclass(frozen=True)
class DataSet:
    """A scraped data set and the config it was made with."""

    config: Config
    data_dir: Path
    manifest: pd.DataFrame
    split: pd.DataFrame


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, overrides_for) -> DataSet:
    given = os.environ.get("STJ_DATA_DIR")
    if given:
        config = load_run_config(os.environ.get("STJ_CONFIG", "configs/demo.yaml"), [f"project.data_dir={given}"])
    else:
        config = load_run_config("configs/demo.yaml", overrides_for(tmp_path_factory.mktemp("dataset")))
        catalog = CatalogConfig(
            products_per_class=16,
            results_per_page=8,
            image_side=160,
            near_duplicates_per_class=2,
            cross_class_duplicates=1,
            port=0,
        )
        with running_catalog(catalog) as server:
            scrape(config, base_url=server.base_url, show_progress=False)
        prepare(config)
    data_dir = Path(config.project.data_dir)
    return DataSet(config, data_dir, read_manifest(manifest_path(data_dir)), read_split(split_path(data_dir)))
