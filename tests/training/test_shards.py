"""Embedding shards: cut in whole batches, in the order a local run embeds."""

from __future__ import annotations

import pytest

from training.embedding.shards import cut_shards


@pytest.mark.parametrize(("size", "batch", "expected"), [(8, 8, [8, 8, 4]), (5, 8, [8, 8, 4]), (9, 4, [12, 8])])
def test_shards_are_whole_batches_in_order(size: int, batch: int, expected: list[int]) -> None:
    todo = [f"sha{i}" for i in range(20)]
    shards = cut_shards(todo, size, batch)
    assert [len(s) for s in shards] == expected
    assert [sha for shard in shards for sha in shard] == todo  # the order a local run embeds in


def test_cut_nothing() -> None:
    assert cut_shards([], 8, 8) == []
