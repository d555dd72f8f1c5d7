"""The prepare stage: a train/val/test split that never moves, written to a split file.

Each near-duplicate group's side is decided by a hash of the group (its earliest-scraped photo's sha256 and
``split.seed``), as TFX and most production pipelines do: a photo keeps its side as the manifest grows, so
this week's test photos are never next week's training photos, and scores of successive runs are measured on
a test set that only grows. Proportions are ``split.test_size`` (20 %) for test and ``split.val_size`` of the
rest for validation, per class in expectation. Photos within ``scrape.near_duplicate_distance`` bits of each
other (perceptual hash) form a group that stays on one side, so a near-copy of a test photo never sits in
training; a new photo joins its group's side. The previous split file is authoritative for the photos it
holds (``split.json`` records the parameters it was made with; changing them reassigns every photo), so even a
new photo that links two groups on different sides moves nothing: it is left out. Conflicting photos (listed
under two classes) are left out. Reviewers' label overrides (``core.label_overrides``) are applied to the
manifest first: a relabelled photo keeps its side under its new class, an added upload gets its side by the
same hash rule, an excluded photo is left out.

Config keys: ``split.test_size``, ``split.val_size``, ``split.seed``, ``scrape.near_duplicate_distance``,
``project.data_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from configs.errors import UserError
from configs.files import atomic_write_text
from configs.schema import Config
from core.label_overrides import reviewed_manifest
from core.near_index import NearIndex

log = logging.getLogger(__name__)

SPLIT_NAME, SPLIT_PARAMS_NAME, PLAN_NAME = "split.csv", "split.json", "split.plan.csv"
SPLIT_METHOD = "group-hash-v1"  # names the rule: a split made by another rule is not carried over
SPLIT_COLUMNS = ["path", "class", "sha256", "split"]


class NotEnoughData(UserError):
    """Too few scraped images to split and train."""


def split_path(data_dir: str | Path) -> Path:
    """Where the split file lives under a data folder."""
    return Path(data_dir) / SPLIT_NAME


def near_duplicate_groups(
    phashes: list[str | float | None], max_distance: int, searched: np.ndarray | None = None
) -> np.ndarray:
    """Group ids such that photos within ``max_distance`` bits (transitively) share a group.

    Args:
        phashes: hex perceptual hashes (missing values get their own group).
        max_distance: Hamming distance in bits; negative turns grouping off.
        searched: which photos are looked up (default: all); the others are only indexed, so pairs of two
            unsearched photos are not looked for (the previous split already placed them).

    Cost: O(N) index insertions and O(searched) look-ups (``core.near_index``): a weekly run searches its new
    photos only.
    """
    parent = list(range(len(phashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if max_distance >= 0:
        searched = np.ones(len(phashes), bool) if searched is None else searched
        hashes = [(i, int(h, 16)) for i, h in enumerate(phashes) if isinstance(h, str) and h]
        index = NearIndex(max_distance)
        for i, value in hashes:
            if not searched[i]:
                index.add(i, value)
        for i, value in hashes:
            if searched[i]:
                for j, _ in index.within(value):
                    a, b = find(i), find(j)
                    parent[max(a, b)] = min(a, b)
                index.add(i, value)
    return np.array([find(i) for i in range(len(phashes))])


def position_of(key: str, seed: int) -> float:
    """A group's place in [0, 1): a uniform number from sha256(seed, key)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _ranges(test_size: float, val_size: float) -> dict[str, tuple[float, float]]:
    cut = test_size + (1 - test_size) * val_size
    return {"test": (0.0, test_size), "val": (test_size, cut), "train": (cut, 1.0)}


def side_at(position: float, test_size: float, val_size: float) -> str:
    """The side a group at this :func:`position_of` belongs on, given the fractions."""
    return next(side for side, (low, high) in _ranges(test_size, val_size).items() if low <= position < high)


def _settled_sides(old: pd.DataFrame, sides: pd.Series) -> list[dict]:
    """One placeholder group per (class, side) of the old photos that no new photo joined: they count as
    present on that side when empty sides are filled, and never move."""
    pairs = pd.DataFrame({"class": old["class"], "side": sides[old.index]}).dropna().drop_duplicates()
    empty = pd.Index([], dtype="int64")
    return [
        {"rows": empty, "class": c, "position": float("nan"), "side": side, "new": False}
        for c, side in pairs.itertuples(index=False)
    ]


def _fill_empty_sides(groups: pd.DataFrame, params: SplitParams) -> pd.DataFrame:
    """A class with no group on a side (small data) gets the new group whose position lies nearest that side's
    range, taken from a side that keeps at least one; deterministic, and sides already recorded never move."""
    ranges = _ranges(params.test_size, params.val_size)
    groups = groups.copy()
    for label in sorted(groups["class"].unique()):
        for side in ("test", "val", "train"):
            mine = groups[groups["class"] == label]
            counts = mine["side"].value_counts()
            if counts.get(side, 0):
                continue
            low, high = ranges[side]
            movable = mine[mine["new"] & (mine["side"].map(counts) > 1)]
            if movable.empty:
                continue
            distance = (low - movable["position"]).clip(lower=0) + (movable["position"] - high).clip(lower=0)
            groups.loc[distance.idxmin(), "side"] = side
    return groups


@dataclass(frozen=True)
class SplitParams:
    """What a split is a function of; a previous split made with other parameters is not carried over."""

    test_size: float
    val_size: float
    seed: int
    max_distance: int = -1
    method: str = SPLIT_METHOD


def assign_split(frame: pd.DataFrame, params: SplitParams, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Assign each manifest row to ``train``, ``val`` or ``test``.

    Args:
        frame: manifest rows (needs ``path``, ``class``, ``sha256``; ``phash`` for near-duplicate groups,
            ``scraped_at`` to find a group's first photo).
        params: fractions, seed and near-duplicate distance (-1: no grouping).
        previous: the last split (``path``, ``split``) made with the same parameters: its photos keep their side.

    Returns:
        A frame with columns ``path, class, sha256, split``, sorted by path; rows left out (a new photo close to
        photos on two sides) are absent.

    Raises:
        NotEnoughData: fewer than 3 photos in a class, fewer than 2 classes, or a class with no photo on a side.
    """
    counts = frame["class"].value_counts()
    if len(counts) < 2 or counts.min() < 3:
        raise NotEnoughData(f"need at least 3 images in each of 2+ classes to split, have {counts.to_dict()}")
    rows = frame.sort_values("path").reset_index(drop=True)
    phashes = rows["phash"].tolist() if "phash" in rows else [None] * len(rows)
    before = dict(zip(previous["path"], previous["split"], strict=True)) if previous is not None else {}
    new_rows = ~rows["path"].isin(list(before)).to_numpy()
    groups = near_duplicate_groups(phashes, params.max_distance, searched=new_rows)
    order = rows.assign(group=groups, first=rows["scraped_at"] if "scraped_at" in rows else "")
    sides = rows["path"].map(before).astype("object")  # the previous split's photos keep their side
    joined = order["group"].isin(set(groups[new_rows]))
    decided = _settled_sides(order[~joined], sides)  # one row per group whose side is decided as a whole
    # only groups with a new photo are decided one by one: O(new photos) of them, however many are old
    touched = order[joined]
    for _, members in touched.sort_values(["first", "sha256"]).groupby("group", sort=False):
        kept = {before[p] for p in members["path"] if p in before}
        if len(kept) > 1:  # a new photo links groups on two sides: old photos stay, new ones are left out
            sides[members.index] = [before.get(p, pd.NA) for p in members["path"]]
            continue
        new = not kept
        position = position_of(members["sha256"].iloc[0], params.seed)
        side = kept.pop() if kept else side_at(position, params.test_size, params.val_size)
        decided.append(
            {"rows": members.index, "class": members["class"].iloc[0], "position": position, "side": side, "new": new}
        )
    if decided:
        for group in _fill_empty_sides(pd.DataFrame(decided), params).itertuples():
            sides[group.rows] = group.side
    split = rows.assign(split=sides).dropna(subset=["split"])[SPLIT_COLUMNS].reset_index(drop=True)
    present = split.groupby("class")["split"].agg(set)
    for label, parts in present.items():
        if missing := sorted({"train", "val", "test"} - parts):
            raise NotEnoughData(
                f"class {label!r} has no {'/'.join(missing)} photo yet ({counts[label]} photos): scrape more"
            )
    return split


def split_params_path(data_dir: str | Path) -> Path:
    """Where the parameters of the split file are recorded."""
    return Path(data_dir) / SPLIT_PARAMS_NAME


def previous_split(data_dir: Path, params: SplitParams) -> pd.DataFrame | None:
    """The split file already in ``data_dir`` if it was made with ``params`` (else ``None``, said in the log)."""
    split_file, params_file = split_path(data_dir), split_params_path(data_dir)
    if not split_file.exists():
        return None
    recorded = json.loads(params_file.read_text()) if params_file.exists() else None
    if recorded != asdict(params):
        log.warning("split parameters changed (%s -> %s): every photo is assigned again", recorded, asdict(params))
        return None
    return read_split(split_file)


def read_split(path: str | Path) -> pd.DataFrame:
    """Load a split file."""
    return pd.read_csv(path, dtype={"sha256": str})[SPLIT_COLUMNS]


def plan_split(config: Config, excluded: Iterable[str] = ()) -> pd.DataFrame:
    """The split the manifest gets now (the previous split's photos keep their side), without writing it.

    Args:
        config: the STJ config.
        excluded: photo paths left out (the last run's label issues, when ``split.exclude_label_issues``:
            the flow reads them and hands them in).

    Raises:
        NotEnoughData: a class has too few photos, or none on a side.
    """
    data_dir = Path(config.project.data_dir)
    manifest = reviewed_manifest(data_dir)  # reviewers' decisions first: a relabelled photo is grouped as its class
    manifest = manifest[manifest["class"].isin(config.class_names) & ~manifest["conflict"]]
    flagged = manifest["path"].isin(set(excluded))
    if flagged.any():
        log.info("%d photo(s) left out: listed in the last run's label issues", int(flagged.sum()))
        manifest = manifest[~flagged]
    params = _params(config)
    split = assign_split(manifest, params, previous_split(data_dir, params))
    if left_out := len(manifest) - len(split):
        log.warning("%d new photo(s) left out of the split: each is a near-duplicate of photos on two sides", left_out)
    return split


def _params(config: Config) -> SplitParams:
    return SplitParams(
        test_size=config.split.test_size,
        val_size=config.split.val_size,
        seed=config.split.seed,
        max_distance=config.scrape.near_duplicate_distance,
    )


def plan_path(data_dir: str | Path) -> Path:
    """Where the validate stage leaves the split it planned, for the prepare stage of the same run."""
    return Path(data_dir) / PLAN_NAME


def write_plan(config: Config, split: pd.DataFrame) -> Path:
    """Keep a planned split (:func:`plan_split`) for :func:`prepare` to adopt; the file's path."""
    return atomic_write_text(plan_path(config.project.data_dir), split.to_csv(index=False))


def prepare(config: Config, excluded: Iterable[str] = (), plan: Path | None = None) -> Path:
    """Write ``<data_dir>/split.csv`` and its parameters ``split.json`` atomically; returns the split file's path.

    Args:
        excluded: photo paths left out (as :func:`plan_split` takes them).
        plan: the split this run's validate stage planned (:func:`write_plan`), adopted as it is (moved into
            place): the split is planned once per run. Without it, :func:`plan_split` plans it here.
    """
    data_dir = Path(config.project.data_dir)
    if plan is not None and Path(plan).exists():
        read_split(plan)  # a plan that is not a split fails here, before it replaces anything
        written = Path(plan).replace(split_path(data_dir))
    else:
        written = atomic_write_text(split_path(data_dir), plan_split(config, excluded).to_csv(index=False))
    atomic_write_text(split_params_path(data_dir), json.dumps(asdict(_params(config))))
    return written
