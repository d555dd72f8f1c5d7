"""The near-duplicate index finds exactly what comparing every pair finds, whatever the radius."""

from __future__ import annotations

import random

import pytest

from core.near_index import NearIndex
from core.phash import near_pairs
from scraper.dedup import HashIndex


def _hashes(n: int, seed: int, radius: int) -> list[int]:
    """Random 256-bit hashes, a third of them near copies of an earlier one (up to ``radius + 2`` bits off)."""
    rng = random.Random(seed)
    out: list[int] = []
    for _ in range(n):
        if out and rng.random() < 0.33:
            value = rng.choice(out)
            for bit in rng.sample(range(256), rng.randint(0, radius + 2)):
                value ^= 1 << bit
        else:
            value = rng.getrandbits(256)
        out.append(value)
    return out


def _brute_pairs(values: list[int], radius: int) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i in range(len(values))
        for j in range(i + 1, len(values))
        if (values[i] ^ values[j]).bit_count() <= radius
    }


@pytest.mark.parametrize("radius", [0, 1, 5, 22, 40, 200, -1])
def test_near_pairs_are_every_pair_within_the_radius(radius: int) -> None:
    values = _hashes(400, seed=radius + 7, radius=max(radius, 0))
    hexes = [f"{v:064x}" for v in values]
    expected = _brute_pairs(values, radius) if radius >= 0 else set()
    assert set(near_pairs(hexes, radius)) == expected
    assert radius < 0 or radius >= 200 or len(expected) > 20  # the check sees near copies, not only strangers


def test_missing_hashes_never_pair() -> None:
    assert list(near_pairs([None, "", f"{0:064x}", float("nan"), f"{1:064x}"], 22)) == [(2, 4)]


def test_the_nearest_kept_photo_is_the_closest_and_the_first_among_equals() -> None:
    values = _hashes(300, seed=3, radius=22)
    index = HashIndex(22)
    for n, value in enumerate(values):
        within = [(k, (value ^ values[k]).bit_count()) for k in range(n) if (value ^ values[k]).bit_count() <= 22]
        found = index.nearest(f"{value:064x}")
        if within:
            best = min(within, key=lambda kd: kd[1])  # min keeps the first of equals
            assert (found.image_id, found.distance) == (str(best[0]), best[1])
        else:
            assert found is None
        index.add(f"{value:064x}", str(n), "saree")
    assert HashIndex(-1).nearest(f"{0:064x}") is None


def test_a_query_looks_at_few_entries_whatever_the_number_indexed() -> None:
    rng = random.Random(5)
    index = NearIndex(22)
    for n in range(20000):
        index.add(n, rng.getrandbits(256))
    probe = rng.getrandbits(256)
    assert len(index._candidates(probe)) < 50  # against 20 000 for a scan
