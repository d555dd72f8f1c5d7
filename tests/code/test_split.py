"""The 80/20 split: stratified, seeded, deterministic, disjoint; too little data is a clear error."""

from __future__ import annotations

import pandas as pd
import pytest

from training.split import NotEnoughData, stratified_split


def _manifest(counts: dict[str, int]) -> pd.DataFrame:
    rows = [
        {"path": f"raw/{label}/{label}{i:03d}.jpg", "class": label, "sha256": f"{label}{i:03d}"}
        for label, n in counts.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows).sample(frac=1, random_state=3)  # manifest order must not matter


def test_proportions_per_class() -> None:
    counts = {"saree": 200, "trousers": 150, "jeans": 100}
    split = stratified_split(_manifest(counts), test_size=0.2, val_size=0.1, seed=1)
    for label, n in counts.items():
        part = split[split["class"] == label]["split"].value_counts()
        assert part["test"] == pytest.approx(0.2 * n, abs=1)
        assert part["val"] == pytest.approx(0.1 * 0.8 * n, abs=1)
        assert part.sum() == n


def test_deterministic_and_seed_sensitive() -> None:
    frame = _manifest({"saree": 50, "trousers": 50, "jeans": 50})
    a = stratified_split(frame, 0.2, 0.1, seed=7)
    b = stratified_split(frame.sample(frac=1, random_state=9), 0.2, 0.1, seed=7)
    c = stratified_split(frame, 0.2, 0.1, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["split"].equals(c["split"])


def test_parts_are_disjoint_and_complete() -> None:
    frame = _manifest({"saree": 40, "trousers": 40, "jeans": 40})
    split = stratified_split(frame, 0.2, 0.1, seed=0)
    assert split["path"].is_unique
    assert set(split["path"]) == set(frame["path"])
    assert set(split["split"]) == {"train", "val", "test"}


def test_too_few_images_is_a_user_error() -> None:
    with pytest.raises(NotEnoughData, match="at least 3 images"):
        stratified_split(_manifest({"saree": 10, "jeans": 2}), 0.2, 0.1, seed=0)


def test_near_duplicates_never_straddle_the_split() -> None:
    """Clusters of near-identical photos (pHash within the distance) stay on one side."""
    import random

    from training.split import near_duplicate_groups

    rng = random.Random(0)
    rows = []
    for label in ("saree", "trousers", "jeans"):
        for k in range(40):
            base = rng.getrandbits(256)
            copies = 1 + (k % 4 == 0) * 2  # every 4th photo has two near-copies
            for c in range(copies):
                flipped = base ^ sum(1 << rng.randrange(256) for _ in range(c * 3))  # <= 6 bits away
                rows.append(
                    {
                        "path": f"raw/{label}/{k}_{c}.jpg",
                        "class": label,
                        "sha256": f"{label}{k}{c}",
                        "phash": f"{flipped:064x}",
                    }
                )
    frame = pd.DataFrame(rows)
    for seed in range(5):
        split = stratified_split(frame, 0.2, 0.1, seed=seed, max_distance=8).merge(frame[["path", "phash"]])
        values = [int(h, 16) for h in split["phash"]]
        parts = split["split"].tolist()
        for i in range(len(values)):
            for j in range(i + 1, len(values)):
                if (values[i] ^ values[j]).bit_count() <= 8:
                    assert parts[i] == parts[j], (split.iloc[i]["path"], split.iloc[j]["path"])
    groups = near_duplicate_groups(frame["phash"].tolist(), 8)
    assert len(set(groups)) == 120  # one group per original photo
