"""The split: decided per near-duplicate group by a hash, so a photo never changes side as the manifest grows;
80/20 per class in expectation; deterministic, disjoint; too little data is a clear error."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from training.splitting.split import NotEnoughData, SplitParams, assign_split, near_duplicate_groups

PARAMS = SplitParams(test_size=0.2, val_size=0.1, seed=1)


def _manifest(counts: dict[str, int], start: int = 0, day: str = "2026-11-01") -> pd.DataFrame:
    rows = [
        {"path": f"raw/{label}/{label}{i:05d}.jpg", "class": label, "sha256": f"{label}{i:05d}", "scraped_at": day}
        for label, n in counts.items()
        for i in range(start, start + n)
    ]
    return pd.DataFrame(rows).sample(frac=1, random_state=3)  # manifest order must not matter


def test_proportions_per_class_in_expectation() -> None:
    counts = {"saree": 3000, "trousers": 2000, "jeans": 1000}
    split = assign_split(_manifest(counts), PARAMS)
    for label, n in counts.items():
        share = split[split["class"] == label]["split"].value_counts() / n
        assert share["test"] == pytest.approx(0.2, abs=0.035)
        assert share["val"] == pytest.approx(0.1 * 0.8, abs=0.03)
        assert share.sum() == pytest.approx(1.0)


def test_deterministic_and_seed_sensitive() -> None:
    frame = _manifest({"saree": 50, "trousers": 50, "jeans": 50})
    a = assign_split(frame, PARAMS)
    b = assign_split(frame.sample(frac=1, random_state=9), PARAMS)
    c = assign_split(frame, SplitParams(test_size=0.2, val_size=0.1, seed=2))
    pd.testing.assert_frame_equal(a, b)
    assert not a["split"].equals(c["split"])


def test_parts_are_disjoint_and_complete() -> None:
    frame = _manifest({"saree": 40, "trousers": 40, "jeans": 40})
    split = assign_split(frame, PARAMS)
    assert split["path"].is_unique
    assert set(split["path"]) == set(frame["path"])
    assert set(split["split"]) == {"train", "val", "test"}


def test_too_few_images_is_a_user_error() -> None:
    with pytest.raises(NotEnoughData, match="at least 3 images"):
        assign_split(_manifest({"saree": 10, "jeans": 2}), PARAMS)
    frame = _manifest({"saree": 10, "jeans": 3})
    rng = random.Random(5)
    frame["phash"] = [f"{rng.getrandbits(256):064x}" if c == "saree" else "f" * 64 for c in frame["class"]]
    with pytest.raises(NotEnoughData, match=r"class 'jeans' has no \w+/\w+ photo yet \(3 photos\): scrape more"):
        assign_split(frame, SplitParams(test_size=0.2, val_size=0.1, seed=1, max_distance=8))  # one group of 3


def test_a_small_class_gets_a_photo_on_every_side_and_keeps_it() -> None:
    first = assign_split(_manifest({"saree": 3, "jeans": 4}), PARAMS)
    assert (first.groupby("class")["split"].nunique() == 3).all()
    again = assign_split(_manifest({"saree": 3, "jeans": 4}), PARAMS)
    pd.testing.assert_frame_equal(first, again)
    grown = assign_split(_manifest({"saree": 30, "jeans": 40}), PARAMS, previous=first)
    kept = grown.merge(first, on="path", suffixes=("", "_before"))
    assert len(kept) == 7 and (kept["split"] == kept["split_before"]).all()


def _near_copies(rng: random.Random, base: int, copies: int) -> list[str]:
    return [f"{base ^ sum(1 << rng.randrange(256) for _ in range(c * 3)):064x}" for c in range(copies)]  # <= 6 bits


def test_near_duplicates_never_straddle_the_split() -> None:
    """Clusters of near-identical photos (pHash within the distance) stay on one side."""
    rng = random.Random(0)
    rows = []
    for label in ("saree", "trousers", "jeans"):
        for k in range(40):
            copies = 1 + (k % 4 == 0) * 2  # every 4th photo has two near-copies
            for c, phash in enumerate(_near_copies(rng, rng.getrandbits(256), copies)):
                rows.append(
                    {"path": f"raw/{label}/{k}_{c}.jpg", "class": label, "sha256": f"{label}{k}{c}", "phash": phash}
                )
    frame = pd.DataFrame(rows)
    for seed in range(5):
        params = SplitParams(test_size=0.2, val_size=0.1, seed=seed, max_distance=8)
        split = assign_split(frame, params).merge(frame[["path", "phash"]])
        values = [int(h, 16) for h in split["phash"]]
        parts = split["split"].tolist()
        for i in range(len(values)):
            for j in range(i + 1, len(values)):
                if (values[i] ^ values[j]).bit_count() <= 8:
                    assert parts[i] == parts[j], (split.iloc[i]["path"], split.iloc[j]["path"])
    groups = near_duplicate_groups(frame["phash"].tolist(), 8)
    assert len(set(groups)) == 120  # one group per original photo


def test_no_photo_changes_side_as_the_manifest_grows() -> None:
    """Three runs, each scraping new photos (some of them near-copies of earlier ones): every photo keeps the
    side it was first given, new near-copies join their group's side, and a test photo never reaches training."""
    rng = random.Random(1)
    params = SplitParams(test_size=0.2, val_size=0.1, seed=42, max_distance=8)
    bases: list[tuple[str, int]] = []
    manifest, previous, seen = pd.DataFrame(), None, {}
    for week in range(3):
        rows = []
        for label in ("saree", "trousers", "jeans"):
            for k in range(60):
                base = rng.getrandbits(256)
                bases.append((label, base))
                rows.append(_row(label, f"w{week}-{k}", f"{base:064x}", week))
            for k, (_, old) in enumerate(b for b in bases[:-60] if b[0] == label):
                if k % 7 == 0:  # a near-copy of an earlier week's photo, new sha256
                    rows.append(_row(label, f"w{week}-copy{k}", _near_copies(rng, old, 2)[1], week))
        manifest = pd.concat([manifest, pd.DataFrame(rows)], ignore_index=True)
        split = assign_split(manifest, params, previous)
        sides = dict(zip(split["path"], split["split"], strict=True))
        for path, side in seen.items():
            assert sides[path] == side, f"week {week}: {path} moved from {side} to {sides[path]}"
        merged = split.merge(manifest[["path", "phash"]])
        hashes, parts = [int(h, 16) for h in merged["phash"]], merged["split"].tolist()
        for i in range(len(hashes)):
            for j in range(i + 1, len(hashes)):
                if (hashes[i] ^ hashes[j]).bit_count() <= 8:
                    assert parts[i] == parts[j]
        seen, previous = sides, split
    assert len(seen) == len(manifest)  # no copy linked two sides here: nothing left out
    share = pd.Series(list(seen.values())).value_counts(normalize=True)
    assert share["test"] == pytest.approx(0.2, abs=0.06)


def _row(label: str, name: str, phash: str, week: int) -> dict:
    return {
        "path": f"raw/{label}/{name}.jpg",
        "class": label,
        "sha256": f"{label}-{name}",
        "phash": phash,
        "scraped_at": f"2026-11-{week + 1:02d}",
    }


def test_a_new_photo_linking_two_sides_is_left_out() -> None:
    """A new photo close to a test photo and to a training photo moves neither; it is left out."""
    frame = _manifest({"saree": 30, "trousers": 30, "jeans": 30})
    first = assign_split(frame, PARAMS)
    test_photo = first[first["split"] == "test"].iloc[0]
    train_photo = first[(first["split"] == "train") & (first["class"] == test_photo["class"])].iloc[0]
    a, b = 0, (1 << 12) - 1  # 12 bits apart: separate groups at distance 8
    bridge = (1 << 6) - 1  # 6 bits from each
    phash = {test_photo["path"]: a, train_photo["path"]: b}
    frame = frame.assign(phash=[f"{phash.get(p, 2**200 + i * 2**100):064x}" for i, p in enumerate(frame["path"])])
    new = {"path": "raw/x/bridge.jpg", "class": test_photo["class"], "sha256": "bridge", "phash": f"{bridge:064x}"}
    grown = pd.concat([frame, pd.DataFrame([{**new, "scraped_at": "2026-11-09"}])], ignore_index=True)
    params = SplitParams(test_size=0.2, val_size=0.1, seed=1, max_distance=8)
    split = assign_split(grown, params, previous=first)
    assert "raw/x/bridge.jpg" not in set(split["path"])
    sides = dict(zip(split["path"], split["split"], strict=True))
    assert sides[test_photo["path"]] == "test" and sides[train_photo["path"]] == "train"


def test_a_weekly_split_looks_up_only_its_new_photos(monkeypatch) -> None:
    """The previous split placed its photos: only this week's are searched (against old and new), and a new
    near-copy of an old photo takes that photo's side."""
    from core.near_index import NearIndex

    rng = random.Random(2)
    old = pd.DataFrame(
        [_row(label, f"old{k}", f"{rng.getrandbits(256):064x}", 0) for label in ("saree", "jeans") for k in range(50)]
    )
    params = SplitParams(test_size=0.2, val_size=0.1, seed=3, max_distance=8)
    first = assign_split(old, params)
    copied = old.iloc[7]
    new = [_row("saree", "copy", _near_copies(rng, int(copied["phash"], 16), 2)[1], 1)]
    new += [_row("jeans", f"new{k}", f"{rng.getrandbits(256):064x}", 1) for k in range(4)]
    lookups = []
    real_within = NearIndex.within

    def counted(self, value):
        lookups.append(value)
        return real_within(self, value)

    monkeypatch.setattr(NearIndex, "within", counted)
    grown = assign_split(pd.concat([old, pd.DataFrame(new)], ignore_index=True), params, previous=first)
    assert len(lookups) == 5  # the new photos only, not the 100 old ones
    sides = dict(zip(grown["path"], grown["split"], strict=True))
    assert sides["raw/saree/copy.jpg"] == sides[copied["path"]]
    assert {p: sides[p] for p in first["path"]} == dict(zip(first["path"], first["split"], strict=True))
