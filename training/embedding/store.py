"""The embedding store: each photo's frozen-base features on disk, in shards that are only ever added.

One folder per base configuration (``<key>.store/``, the key from :func:`training.embedding.embed.cache_key`):

- ``<name>.npy``: one shard's vectors, float32, ``[rows, D]``, at most :data:`SHARD_ROWS` rows;
- ``<name>.keys.npy``: the sha256 of those photos, in row order, written after the vectors: a shard counts once
  its keys are there, so a kill leaves at worst a vectors file without keys, which is ignored and replaced.

A shard is named by the digest of its keys, so processes appending disjoint photos at once (Dask shard tasks)
never write the same file, and the same photos written twice give the same file. Nothing is rewritten: a run
appends what it embedded, a shard at a time, so a killed run keeps every finished shard.

Why plain ``.npy`` files: reads memory-map just the rows asked for, a shard is one atomic rename, and nothing
new is installed; zarr's chunked arrays add nothing for fixed-width rows appended in blocks, and lmdb is one
writer at a time, which the Dask workers would queue on.

Costs: on disk ``D × 4 + 64`` bytes per photo (ResNet50: 8.06 KiB, EfficientNet-Lite0: 5.06 KiB at any image
size; the same for every runtime precision, since bf16 and int8 features are kept as float32), plus two files
per :data:`SHARD_ROWS` photos (fewer when a run adds less). Opening reads the keys only (``64 × N`` bytes) and
sorts them once, O(N log N); :meth:`EmbeddingStore.lookup` of k photos costs O(k log N) plus reading k rows.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs.files import atomic_write_bytes

SHARD_ROWS = 1024  # 8 MiB of ResNet50 features: a kill loses at most this many photos' embedding
KEY_DTYPE = "S64"  # a sha256 in hex
LEGACY_SUFFIX = ".npz"  # the one-file cache of earlier versions, and its ``<key>.shards/`` folder


class EmbeddingStore:
    """sha256 -> feature vector for one base configuration, stored under ``<folder>/<key>.store/``.

    The index of keys is read on first use, so a process that only appends (a Dask shard task) reads nothing.
    """

    def __init__(self, folder: str | Path, key: str) -> None:
        self.parent, self.key = str(folder), key
        self.folder = Path(folder) / f"{key}.store"
        self._legacy = (Path(folder) / f"{key}{LEGACY_SUFFIX}", Path(folder) / f"{key}.shards")
        self._pending_keys: list[str] = []
        self._pending: list[np.ndarray] = []
        self._shards: list[Path] = []  # shards read into the index, by position
        self._keys = np.zeros(0, KEY_DTYPE)  # sorted, unique
        self._shard = np.zeros(0, np.int32)
        self._row = np.zeros(0, np.int32)
        self._indexed = False

    def missing(self, shas: Sequence[str]) -> list[str]:
        """The hashes not stored yet (order kept, duplicates removed)."""
        self._refresh()
        unique = list(dict.fromkeys(shas))
        known = self._find(unique)[0] | np.isin(np.array(unique, KEY_DTYPE), np.array(self._pending_keys, KEY_DTYPE))
        return [s for s, k in zip(unique, known, strict=True) if not k]

    def add(self, shas: Sequence[str], vectors: np.ndarray) -> None:
        """Queue ``vectors`` (one row per sha) for storing; every :data:`SHARD_ROWS` of them become a shard."""
        if any(len(s) > 64 for s in shas):
            raise ValueError("store keys are sha256 hex digests (at most 64 characters)")
        self._pending_keys.extend(shas)
        self._pending.extend(np.asarray(vectors, np.float32))
        while len(self._pending_keys) >= SHARD_ROWS:
            self._write(SHARD_ROWS)

    def flush(self) -> None:
        """Store what is queued as one last (shorter) shard."""
        if self._pending_keys:
            self._write(len(self._pending_keys))

    def lookup(self, shas: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``shas``, in order (after storing what is queued); KeyError names one missing."""
        self.flush()
        self._refresh()
        found, shard, row = self._find(shas)
        if not found.all():
            raise KeyError(f"not in the embedding store: {shas[int(np.argmin(found))]}")
        if not len(shas):
            return np.zeros((0, 0), np.float32)
        first = np.load(self._shards[shard[0]], mmap_mode="r")
        out = np.empty((len(shas), first.shape[1]), np.float32)
        for index in np.unique(shard):
            rows = shard == index
            out[rows] = np.load(self._shards[index], mmap_mode="r")[row[rows]]  # reads only these rows
        return out

    def reference(self, shas: Sequence[str]) -> StoredVectors:
        """What a task elsewhere needs to read these photos' vectors itself (shared storage), instead of
        receiving them pickled."""
        self.flush()
        return StoredVectors(self.parent, self.key, list(shas))

    def keys(self) -> list[str]:
        """Every stored sha256, sorted."""
        self.flush()
        self._refresh()
        return [k.decode() for k in self._keys]

    def _find(self, shas: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        wanted = np.array(list(shas), KEY_DTYPE)
        if not len(self._keys):
            return np.zeros(len(wanted), bool), np.zeros(len(wanted), np.int32), np.zeros(len(wanted), np.int32)
        at = np.minimum(np.searchsorted(self._keys, wanted), len(self._keys) - 1)
        return self._keys[at] == wanted, self._shard[at], self._row[at]

    def _write(self, rows: int) -> None:
        shas, vectors = self._pending_keys[:rows], np.stack(self._pending[:rows])
        name = hashlib.sha256("\n".join(shas).encode()).hexdigest()[:24]
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / f"{name}.npy", _npy(vectors))
        atomic_write_bytes(self.folder / f"{name}.keys.npy", _npy(np.array(shas, KEY_DTYPE)))  # commits the shard
        del self._pending_keys[:rows], self._pending[:rows]

    def _refresh(self) -> None:
        """Read the keys of shards not indexed yet (any process's), after importing a legacy cache once."""
        if not self._indexed:
            self._import_legacy()
            self._indexed = True
        known = set(self._shards)
        new = [k.with_name(k.name.removesuffix(".keys.npy") + ".npy") for k in sorted(self.folder.glob("*.keys.npy"))]
        new = [s for s in new if s not in known]
        if not new:
            return
        keys, shard, row = [self._keys], [self._shard], [self._row]
        for file in new:
            stored = np.load(file.with_name(file.stem + ".keys.npy"))
            keys.append(stored.astype(KEY_DTYPE))
            shard.append(np.full(len(stored), len(self._shards), np.int32))
            row.append(np.arange(len(stored), dtype=np.int32))
            self._shards.append(file)
        all_keys = np.concatenate(keys)
        self._keys, first = np.unique(all_keys, return_index=True)  # a photo stored twice: its first copy
        self._shard, self._row = np.concatenate(shard)[first], np.concatenate(row)[first]

    def _import_legacy(self) -> None:
        """Move an earlier version's one-file cache (and its shards) into the store, then remove them."""
        single, shard_dir = self._legacy
        files = [f for f in [single, *sorted(shard_dir.glob("*.npz"))] if f.exists()]
        for file in files:
            with np.load(file) as data:
                if len(data["sha256"]):
                    self.add(data["sha256"].tolist(), data["vectors"])
        self.flush()
        for file in files:
            file.unlink(missing_ok=True)
        if shard_dir.is_dir() and not any(shard_dir.iterdir()):
            shard_dir.rmdir()


@dataclass(frozen=True)
class StoredVectors:
    """Some photos' vectors by reference: the store (folder and key) and their sha256, in row order."""

    folder: str
    key: str
    shas: list[str]

    def load(self) -> np.ndarray:
        """The vectors, read from the store (only these rows)."""
        return EmbeddingStore(self.folder, self.key).lookup(self.shas)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()
