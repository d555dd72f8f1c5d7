"""Embedding: each image's frozen-base features are computed once and kept on disk (``training.embedding.store``).

A store is keyed by the base's identity (backbone, weights fingerprint, image size, preprocessing, runtime);
inside, vectors are keyed by the image's sha256. A changed base or size is simply another store, so a
stale vector can never be used.

Config keys: ``train.embed_batch_size``, ``train.runtime``, ``project.data_dir``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.model_input import load_images
from core.progress import Progress
from core.runtime.spec import Runtime
from core.safe_points import checkpoint
from training.embedding.store import EmbeddingStore

log = logging.getLogger(__name__)


def cache_key(backbone: str, weights_fp: str, image_size: int, preprocess: str) -> str:
    """The cache file name for one base configuration."""
    text = f"{backbone}|{weights_fp}|{image_size}|{preprocess}"
    return f"{backbone}-{image_size}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def embed_batches(
    runtime: Runtime,
    paths: Sequence[str | Path],
    shas: Sequence[str],
    store: EmbeddingStore,
    image_size: int,
    batch_size: int,
    show_progress: bool = True,
) -> None:
    """Embed every photo given, ``batch_size`` at a time, and add each batch to ``store`` (a shard is written
    every :data:`training.embedding.store.SHARD_ROWS` photos, and what is left at the end or at an interrupt).

    O(N) time; memory of two batches of pixels and at most one shard of vectors."""
    chunks = [list(range(start, min(start + batch_size, len(shas)))) for start in range(0, len(shas), batch_size)]
    with Progress(len(shas), f"embedding ({runtime.name})", "img", enabled=show_progress) as bar:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stj-decode") as loader:
            try:
                # decode the next batch while the runtime works on this one
                pending = loader.submit(load_images, [paths[i] for i in chunks[0]], image_size) if chunks else None
                for index, chunk in enumerate(chunks):
                    pixels = pending.result()
                    if index + 1 < len(chunks):
                        pending = loader.submit(load_images, [paths[i] for i in chunks[index + 1]], image_size)
                    store.add([shas[i] for i in chunk], runtime(pixels))
                    bar.update(len(chunk))
                    checkpoint()  # an interrupt waits for a batch's end (core.safe_points)
            finally:
                store.flush()  # every finished batch is kept, also when interrupted


def embed_files(
    runtime: Runtime,
    paths: Sequence[str | Path],
    shas: Sequence[str],
    store: EmbeddingStore,
    image_size: int,
    batch_size: int,
    show_progress: bool = True,
) -> tuple[np.ndarray, int]:
    """Features for each file, embedding only those missing from the store (and storing them).

    Returns:
        (features in input order, number of images actually embedded this call).
    """
    todo = store.missing(shas)
    by_sha = dict(zip(shas, paths, strict=True))
    embed_batches(runtime, [by_sha[s] for s in todo], todo, store, image_size, batch_size, show_progress)
    log.info("embeddings: %d computed, %d from the store", len(todo), len(set(shas)) - len(todo))
    return store.lookup(shas), len(todo)
