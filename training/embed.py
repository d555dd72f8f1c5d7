"""Embedding cache: each image's frozen-base features are computed once and kept on disk.

A cache file is keyed by the base's identity (backbone, weights fingerprint, image size, preprocessing);
inside, vectors are keyed by the image's sha256. A changed base or size is simply another file, so a
stale vector can never be used.

Config keys: ``train.embed_batch_size``, ``train.runtime``, ``project.data_dir``.
"""

from __future__ import annotations

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

log = logging.getLogger(__name__)


def cache_key(backbone: str, weights_fp: str, image_size: int, preprocess: str) -> str:
    """The cache file name for one base configuration."""
    text = f"{backbone}|{weights_fp}|{image_size}|{preprocess}"
    return f"{backbone}-{image_size}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class EmbeddingCache:
    """sha256 -> feature vector, stored as one ``.npz`` per base configuration."""

    def __init__(self, folder: str | Path, key: str) -> None:
        self.path = Path(folder) / f"{key}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as data:
                self.vectors = dict(zip(data["sha256"].tolist(), data["vectors"], strict=True))

    def missing(self, shas: Sequence[str]) -> list[str]:
        """The hashes not yet cached (order kept, duplicates removed)."""
        return [s for s in dict.fromkeys(shas) if s not in self.vectors]

    def save(self) -> None:
        """Write the cache atomically."""
        buf = io.BytesIO()
        shas = list(self.vectors)
        vectors = np.stack([self.vectors[s] for s in shas]) if shas else np.zeros((0, 0), np.float32)
        np.savez(buf, sha256=np.array(shas), vectors=vectors)
        atomic_write_bytes(self.path, buf.getvalue())

    def lookup(self, shas: Sequence[str]) -> np.ndarray:
        """Vectors for the given hashes, in order."""
        return np.stack([self.vectors[s] for s in shas])


def embed_files(
    runtime: Runtime,
    paths: Sequence[str | Path],
    shas: Sequence[str],
    cache: EmbeddingCache,
    image_size: int,
    batch_size: int,
    show_progress: bool = True,
) -> tuple[np.ndarray, int]:
    """Features for each file, computing only those missing from the cache.

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
    if todo:
        cache.save()
    log.info("embeddings: %d computed, %d from cache", len(todo), len(set(shas)) - len(todo))
    return cache.lookup(shas), len(todo)
