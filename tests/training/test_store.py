"""The embedding store: shards only added, written as each fills, read by key (only the rows asked for)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from training.embedding import store as store_module
from training.embedding.store import SHARD_ROWS, EmbeddingStore


def _shas(start: int, stop: int) -> list[str]:
    return [f"{i:064x}" for i in range(start, stop)]


def _vectors(shas: list[str]) -> np.ndarray:
    return np.array([[int(s, 16), -int(s, 16), 0.5] for s in shas], np.float32)


def _committed(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "k.store").glob("*.keys.npy"))


def test_appends_from_several_writers_read_as_one_store_in_any_order(tmp_path: Path) -> None:
    for part in (_shas(0, 3), _shas(3, 5)):  # two tasks, each with a store object of its own
        writer = EmbeddingStore(tmp_path, "k")
        writer.add(part, _vectors(part))
        writer.flush()
    reader = EmbeddingStore(tmp_path, "k")
    wanted = [_shas(4, 5)[0], _shas(0, 1)[0], _shas(2, 3)[0]]
    np.testing.assert_array_equal(reader.lookup(wanted), _vectors(wanted))
    assert reader.missing([*_shas(0, 6), _shas(1, 2)[0]]) == _shas(5, 6)
    assert reader.keys() == _shas(0, 5) and len(_committed(tmp_path)) == 2
    with pytest.raises(KeyError, match=_shas(9, 10)[0]):
        reader.lookup([_shas(1, 2)[0], _shas(9, 10)[0]])


def test_a_shard_is_written_as_soon_as_it_fills_so_a_killed_run_keeps_it(tmp_path: Path) -> None:
    shas = _shas(0, SHARD_ROWS + 5)
    writer = EmbeddingStore(tmp_path, "k")
    writer.add(shas, _vectors(shas))  # no flush: the run dies here
    assert EmbeddingStore(tmp_path, "k").missing(shas) == shas[SHARD_ROWS:]
    writer.flush()
    assert EmbeddingStore(tmp_path, "k").missing(shas) == [] and len(_committed(tmp_path)) == 2


def test_vectors_without_their_keys_file_do_not_count(tmp_path: Path) -> None:
    """A kill between a shard's two writes leaves its vectors only: ignored, and written again by the next run."""
    shas = _shas(0, 2)
    writer = EmbeddingStore(tmp_path, "k")
    writer.add(shas, _vectors(shas))
    writer.flush()
    _committed(tmp_path)[0].unlink()
    assert EmbeddingStore(tmp_path, "k").missing(shas) == shas


def test_a_writer_reads_none_of_the_store(tmp_path: Path) -> None:
    (tmp_path / "k.store").mkdir()
    (tmp_path / "k.store" / "broken.keys.npy").write_bytes(b"not numpy")  # reading it would fail
    writer = EmbeddingStore(tmp_path, "k")
    writer.add(_shas(0, 2), _vectors(_shas(0, 2)))
    writer.flush()
    assert len(_committed(tmp_path)) == 2


def test_lookup_reads_only_the_rows_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shas = _shas(0, 3 * SHARD_ROWS)
    writer = EmbeddingStore(tmp_path, "k")
    writer.add(shas, _vectors(shas))
    opened: list[str | None] = []
    real_load = np.load

    def spying_load(file, *args, **kwargs):
        opened.append(kwargs.get("mmap_mode"))
        return real_load(file, *args, **kwargs)

    reader = EmbeddingStore(tmp_path, "k")
    reader.missing([])  # the index: keys only
    monkeypatch.setattr(store_module.np, "load", spying_load)
    wanted = [shas[5], shas[2 * SHARD_ROWS + 1]]
    np.testing.assert_array_equal(reader.lookup(wanted), _vectors(wanted))
    assert opened and set(opened) == {"r"}  # memory-mapped: the rows are read, not the shards


def test_a_photo_stored_twice_reads_as_one(tmp_path: Path) -> None:
    for _ in range(2):
        writer = EmbeddingStore(tmp_path, "k")
        writer.add(_shas(0, 2), _vectors(_shas(0, 2)))
        writer.add(_shas(5, 6), _vectors(_shas(5, 6)))  # a different shard name the second time round
        writer.flush()
    reader = EmbeddingStore(tmp_path, "k")
    assert reader.keys() == [*_shas(0, 2), *_shas(5, 6)]
    np.testing.assert_array_equal(reader.lookup(_shas(0, 2)), _vectors(_shas(0, 2)))


def test_an_earlier_versions_cache_file_and_shards_move_into_the_store(tmp_path: Path) -> None:
    np.savez(tmp_path / "k.npz", sha256=np.array(_shas(0, 2)), vectors=_vectors(_shas(0, 2)))
    (tmp_path / "k.shards").mkdir()
    np.savez(tmp_path / "k.shards" / "x.npz", sha256=np.array(_shas(2, 3)), vectors=_vectors(_shas(2, 3)))
    store = EmbeddingStore(tmp_path, "k")
    assert store.missing(_shas(0, 4)) == _shas(3, 4)
    np.testing.assert_array_equal(store.lookup(_shas(0, 3)), _vectors(_shas(0, 3)))
    assert not (tmp_path / "k.npz").exists() and not (tmp_path / "k.shards").exists()


def test_a_reference_is_small_and_reads_the_same_vectors(tmp_path: Path) -> None:
    shas = _shas(0, 200)
    store = EmbeddingStore(tmp_path, "k")
    store.add(shas, np.random.default_rng(0).normal(size=(200, 512)).astype(np.float32))
    reference = store.reference(shas[::-1])
    assert len(pickle.dumps(reference)) < 200 * 100  # the keys, not 200 x 512 floats
    np.testing.assert_array_equal(reference.load(), store.lookup(shas[::-1]))


def test_embedding_interrupted_keeps_every_finished_batch_and_the_next_run_embeds_the_rest(tmp_path: Path) -> None:
    from PIL import Image

    from training.embedding.embed import embed_files

    paths = []
    for i in range(10):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (8, 8), (i, 0, 0)).save(paths[-1])
    shas = _shas(0, 10)

    class Runtime:
        name, calls = "fake", 0

        def __call__(self, batch: np.ndarray) -> np.ndarray:
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt  # Ctrl-C during the third batch
            return batch.mean(axis=(1, 2))

    store = EmbeddingStore(tmp_path, "k")
    with pytest.raises(KeyboardInterrupt):
        embed_files(Runtime(), paths, shas, store, image_size=4, batch_size=3, show_progress=False)
    assert EmbeddingStore(tmp_path, "k").missing(shas) == shas[6:]
    again = Runtime()
    again.calls = -10
    vectors, embedded = embed_files(again, paths, shas, EmbeddingStore(tmp_path, "k"), 4, 3, show_progress=False)
    assert embedded == 4 and again.calls == -8 and vectors.shape == (10, 3)
