"""Embedding shards: cut in whole batches, written beside the cache by disjoint tasks, merged into its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.embed import EmbeddingCache
from training.shards import cut_shards


@pytest.mark.parametrize(("size", "batch", "expected"), [(8, 8, [8, 8, 4]), (5, 8, [8, 8, 4]), (9, 4, [12, 8])])
def test_shards_are_whole_batches_in_order(size: int, batch: int, expected: list[int]) -> None:
    todo = [f"sha{i}" for i in range(20)]
    shards = cut_shards(todo, size, batch)
    assert [len(s) for s in shards] == expected
    assert [sha for shard in shards for sha in shard] == todo  # the order a local run embeds in


def test_cut_nothing() -> None:
    assert cut_shards([], 8, 8) == []


def _vectors(shas: list[str]) -> dict[str, np.ndarray]:
    return {s: np.full(3, i, np.float32) for i, s in enumerate(shas)}


def test_shards_written_apart_are_read_as_one_cache_then_merged(tmp_path: Path) -> None:
    main = EmbeddingCache(tmp_path, "k")
    main.vectors.update(_vectors(["a"]))
    main.save()
    for part in (["b", "c"], ["d"]):  # two tasks, each with a cache object of its own
        worker = EmbeddingCache(tmp_path, "k")
        worker.vectors.update({s: np.full(3, ord(s), np.float32) for s in part})
        worker.save_shard(part)
    assert len(list((tmp_path / "k.shards").glob("*.npz"))) == 2

    reader = EmbeddingCache(tmp_path, "k")
    assert reader.missing(["a", "b", "c", "d", "e"]) == ["e"]
    assert reader.lookup(["d"])[0].tolist() == [ord("d")] * 3
    reader.compact()
    assert not (tmp_path / "k.shards").exists()  # merged into k.npz, shards removed
    assert EmbeddingCache(tmp_path, "k").missing(["a", "b", "c", "d"]) == []


def test_a_shard_written_after_the_read_is_not_removed_by_the_merge(tmp_path: Path) -> None:
    reader = EmbeddingCache(tmp_path, "k")
    late = EmbeddingCache(tmp_path, "k")
    late.vectors.update(_vectors(["z"]))
    late.save_shard(["z"])
    reader.vectors.update(_vectors(["a"]))
    reader.save()
    assert EmbeddingCache(tmp_path, "k").missing(["a", "z"]) == []
