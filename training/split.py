"""The prepare stage: a stratified, seeded train/val/test split written to a split file.

The test part (``split.test_size``, 20 %) is only used for final evaluation; validation for early
stopping is carved from the training part (``split.val_size`` of it). Photos within
``scrape.near_duplicate_distance`` bits of each other (perceptual hash) form a group that stays on one side,
so a near-copy of a test photo never sits in training. Conflicting photos (listed under two classes) are
left out.

Config keys: ``split.test_size``, ``split.val_size``, ``split.seed``, ``scrape.near_duplicate_distance``,
``project.data_dir``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from configs.errors import UserError
from configs.files import atomic_write_text
from configs.schema import Config
from core.manifest import manifest_path, read_manifest
from core.phash import near_pairs

SPLIT_NAME = "split.csv"
SPLIT_COLUMNS = ["path", "class", "sha256", "split"]


class NotEnoughData(UserError):
    """Too few scraped images to split and train."""


def split_path(data_dir: str | Path) -> Path:
    """Where the split file lives under a data folder."""
    return Path(data_dir) / SPLIT_NAME


def near_duplicate_groups(phashes: list[str | float], max_distance: int) -> np.ndarray:
    """Group ids such that photos within ``max_distance`` bits (transitively) share a group.

    Args:
        phashes: hex perceptual hashes (missing values get their own group).
        max_distance: Hamming distance in bits; negative turns grouping off.
    """
    parent = list(range(len(phashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if max_distance >= 0:
        for i, j in near_pairs(phashes, max_distance):
            a, b = find(i), find(j)
            parent[max(a, b)] = min(a, b)
    return np.array([find(i) for i in range(len(phashes))])


def _group_fold(rows: pd.DataFrame, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (rest, held out) with about ``fraction`` held out, stratified by class, groups kept whole."""
    n_splits = max(2, round(1 / fraction))
    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    rest, held = next(folds.split(rows, rows["class"], groups))
    return rest, held


def stratified_split(
    frame: pd.DataFrame, test_size: float, val_size: float, seed: int, max_distance: int = -1
) -> pd.DataFrame:
    """Assign each manifest row to ``train``, ``val`` or ``test``, stratified by class.

    Args:
        frame: manifest rows (needs ``path``, ``class``, ``sha256``; ``phash`` for near-duplicate groups).
        test_size: fraction held out for the final test.
        val_size: fraction of the remaining rows used for validation.
        seed: random seed; the same seed and rows give the same split.
        max_distance: near-duplicate distance in pHash bits; groups never straddle parts (-1: no grouping).

    Returns:
        A frame with columns ``path, class, sha256, split``, sorted by path.
    """
    counts = frame["class"].value_counts()
    if len(counts) < 2 or counts.min() < 3:
        raise NotEnoughData(f"need at least 3 images in each of 2+ classes to split, have {counts.to_dict()}")
    columns = ["path", "class", "sha256"] + (["phash"] if "phash" in frame else [])
    rows = frame[columns].sort_values("path").reset_index(drop=True)
    phashes = rows["phash"].tolist() if "phash" in rows else [None] * len(rows)
    groups = near_duplicate_groups(phashes, max_distance)
    rest, test = _group_fold(rows=rows, groups=groups, fraction=test_size, seed=seed)
    rest_rows = rows.iloc[rest].reset_index(drop=True)
    train, val = _group_fold(rows=rest_rows, groups=groups[rest], fraction=val_size, seed=seed)
    split = pd.Series("test", index=rows.index)
    split.iloc[rest[train]] = "train"
    split.iloc[rest[val]] = "val"
    return rows.assign(split=split)[SPLIT_COLUMNS]


def read_split(path: str | Path) -> pd.DataFrame:
    """Load a split file."""
    return pd.read_csv(path, dtype={"sha256": str})[SPLIT_COLUMNS]


def prepare(config: Config) -> Path:
    """Read the manifest, split it, and write ``<data_dir>/split.csv`` atomically; returns its path."""
    data_dir = Path(config.project.data_dir)
    manifest = read_manifest(manifest_path(data_dir))
    manifest = manifest[manifest["class"].isin(config.class_names) & ~manifest["conflict"]]
    split = stratified_split(
        frame=manifest,
        test_size=config.split.test_size,
        val_size=config.split.val_size,
        seed=config.split.seed,
        max_distance=config.scrape.near_duplicate_distance,
    )
    return atomic_write_text(split_path(data_dir), split.to_csv(index=False))
