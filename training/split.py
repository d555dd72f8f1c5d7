"""The prepare stage: a stratified, seeded train/val/test split written to a split file.

The test part (``split.test_size``, 20 %) is only used for final evaluation; validation for early
stopping is carved from the training part (``split.val_size`` of it).

Config keys: ``split.test_size``, ``split.val_size``, ``split.seed``, ``project.data_dir``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from configs.errors import UserError
from configs.files import atomic_write_text
from configs.schema import Config
from scraper.manifest import manifest_path, read_manifest

SPLIT_NAME = "split.csv"
SPLIT_COLUMNS = ["path", "class", "sha256", "split"]


class NotEnoughData(UserError):
    """Too few scraped images to split and train."""


def split_path(data_dir: str | Path) -> Path:
    """Where the split file lives under a data folder."""
    return Path(data_dir) / SPLIT_NAME


def stratified_split(frame: pd.DataFrame, test_size: float, val_size: float, seed: int) -> pd.DataFrame:
    """Assign each manifest row to ``train``, ``val`` or ``test``, stratified by class.

    Args:
        frame: manifest rows (needs ``path``, ``class``, ``sha256``).
        test_size: fraction held out for the final test.
        val_size: fraction of the remaining rows used for validation.
        seed: random seed; the same seed and rows give the same split.

    Returns:
        A frame with columns ``path, class, sha256, split``, sorted by path.
    """
    counts = frame["class"].value_counts()
    if len(counts) < 2 or counts.min() < 3:
        raise NotEnoughData(f"need at least 3 images in each of 2+ classes to split, have {counts.to_dict()}")
    rows = frame[["path", "class", "sha256"]].sort_values("path").reset_index(drop=True)
    rest, test = train_test_split(rows, test_size=test_size, stratify=rows["class"], random_state=seed)
    train, val = train_test_split(rest, test_size=val_size, stratify=rest["class"], random_state=seed)
    parts = [train.assign(split="train"), val.assign(split="val"), test.assign(split="test")]
    return pd.concat(parts).sort_values("path").reset_index(drop=True)[SPLIT_COLUMNS]


def read_split(path: str | Path) -> pd.DataFrame:
    """Load a split file."""
    return pd.read_csv(path, dtype={"sha256": str})[SPLIT_COLUMNS]


def prepare(config: Config) -> Path:
    """Read the manifest, split it, and write ``<data_dir>/split.csv`` atomically; returns its path."""
    data_dir = Path(config.project.data_dir)
    manifest = read_manifest(manifest_path(data_dir))
    manifest = manifest[manifest["class"].isin(config.class_names) & ~manifest["conflict"]]
    split = stratified_split(manifest, config.split.test_size, config.split.val_size, config.split.seed)
    return atomic_write_text(split_path(data_dir), split.to_csv(index=False))
