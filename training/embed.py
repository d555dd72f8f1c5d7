"""Embedding cache: each image's frozen-base features are computed once and kept on disk.

A cache file is keyed by the base's identity (backbone, weights fingerprint, image size, preprocessing);
inside, vectors are keyed by the image's sha256. A changed base or size is simply another file, so a
stale vector can never be used.

Config keys: ``train.embed_batch_size``, ``train.runtime``, ``project.data_dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from configs.files import atomic_write_bytes
from core.model_input import load_images
from core.progress import Progress
from core.runtime.spec import Runtime
from core.safe_points import checkpoint

log = logging.getLogger(__name__)


def cache_key(backbone: str, weights_fp: str, image_size: int, preprocess: str) -> str:
    """The cache file name for one base configuration."""
    text = f"{backbone}|{weights_fp}|{image_size}|{preprocess}"
    return f"{backbone}-{image_size}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class EmbeddingCache:
    """sha256 -> feature vector, stored as one ``.npz`` per base configuration, plus the shards that
    embedding tasks elsewhere wrote beside it (``<key>.shards/``, merged into the file by the next
    :meth:`save`)."""

    def __init__(self, folder: str | Path, key: str) -> None:
        self.path = Path(folder) / f"{key}.npz"
        self.shard_dir = Path(folder) / f"{key}.shards"
        self.vectors: dict[str, np.ndarray] = {}
        self._merged: list[Path] = []
        for file in [self.path, *sorted(self.shard_dir.glob("*.npz"))]:
            try:
                with np.load(file) as data:
                    self.vectors.update(zip(data["sha256"].tolist(), data["vectors"], strict=True))
            except FileNotFoundError:  # none yet, or a shard another process merged meanwhile
                continue
            if file != self.path:
                self._merged.append(file)

    def missing(self, shas: Sequence[str]) -> list[str]:
        """The hashes not yet cached (order kept, duplicates removed)."""
        return [s for s in dict.fromkeys(shas) if s not in self.vectors]

    def save(self) -> None:
        """Write the cache atomically (the shards read at start are in it now, and removed)."""
        atomic_write_bytes(self.path, _npz(self.vectors, list(self.vectors)))
        for shard in self._merged:
            shard.unlink(missing_ok=True)
        if self._merged:
            with contextlib.suppress(OSError):  # not empty (a shard written meanwhile) or already gone
                self.shard_dir.rmdir()
        self._merged = []

    def compact(self) -> None:
        """Merge shards written since into the one file (nothing when there are none)."""
        if self._merged:
            self.save()

    def save_shard(self, shas: Sequence[str]) -> Path:
        """Write the vectors of ``shas`` as a shard of their own (atomically; named by its content), so that
        tasks embedding disjoint photos at once never write the same file."""
        name = hashlib.sha256("\n".join(shas).encode()).hexdigest()[:24]
        shard = self.shard_dir / f"{name}.npz"
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(shard, _npz(self.vectors, shas))
        return shard

    def lookup(self, shas: Sequence[str]) -> np.ndarray:
        """Vectors for the given hashes, in order."""
        return np.stack([self.vectors[s] for s in shas])


def _npz(vectors: dict[str, np.ndarray], shas: Sequence[str]) -> bytes:
    buf = io.BytesIO()
    stacked = np.stack([vectors[s] for s in shas]) if shas else np.zeros((0, 0), np.float32)
    np.savez(buf, sha256=np.array(list(shas)), vectors=stacked)
    return buf.getvalue()


def embed_files(
    runtime: Runtime,
    paths: Sequence[str | Path],
    shas: Sequence[str],
    cache: EmbeddingCache,
    image_size: int,
    batch_size: int,
    show_progress: bool = True,
    save: bool = True,
) -> tuple[np.ndarray, int]:
    """Features for each file, computing only those missing from the cache (saved, unless ``save`` is off).

    Returns:
        (features in input order, number of images actually embedded this call).
    """
    todo = cache.missing(shas)
    by_sha = dict(zip(shas, paths, strict=True))
    chunks = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
    with Progress(len(todo), f"embedding ({runtime.name})", "img", enabled=show_progress) as bar:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stj-decode") as loader:
            # decode the next batch while the runtime works on this one
            pending = loader.submit(load_images, [by_sha[s] for s in chunks[0]], image_size) if chunks else None
            for index, chunk in enumerate(chunks):
                pixels = pending.result()
                if index + 1 < len(chunks):
                    pending = loader.submit(load_images, [by_sha[s] for s in chunks[index + 1]], image_size)
                for sha, vec in zip(chunk, runtime(pixels), strict=True):
                    cache.vectors[sha] = vec.astype(np.float32)
                bar.update(len(chunk))
                checkpoint()  # an interrupt waits for a batch's end (core.safe_points)
    if todo and save:
        cache.save()
    log.info("embeddings: %d computed, %d from cache", len(todo), len(set(shas)) - len(todo))
    return cache.lookup(shas), len(todo)
