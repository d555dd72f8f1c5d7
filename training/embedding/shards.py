"""Embedding in shards that run anywhere (``orchestration.task_runner: dask``).

The plan is made once: the runtime is chosen where the plan is made (measured, as in a local run), and
the photos still missing from the store are cut into shards. Each shard embeds its photos with that
runtime on whichever worker runs it and appends them to the store (``training.embedding.store``: disjoint tasks write
disjoint files, and a task reads none of the store); the train stage then finds every photo stored. Workers need the installed package and the data folder at the
same path (shared storage).

Shards are whole batches, in the order a local run embeds: every batch holds the photos it would hold
locally, so a deterministic runtime gives the same features, bit for bit.

Config keys: ``train.*``, ``project.data_dir``, ``orchestration.embed_shard_size`` (passed in).
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from configs.schema import Config
from core.runtime.spec import RuntimeSpec
from training.embedding.embed import embed_batches
from training.embedding.features import FrozenBase, build_base, prepare_runtimes, read_class_split

_prepared: dict[str, tuple[FrozenBase, pd.DataFrame]] = {}  # one base per worker process, built once
_lock = threading.Lock()


@dataclass(frozen=True)
class EmbeddingPlan:
    """What to embed where: the runtime, and the photos (sha256) of each shard."""

    runtime: str
    shards: list[list[str]]


def _base(config: Config, split_file: Path) -> tuple[FrozenBase, pd.DataFrame]:
    key = f"{config.model_dump_json(include={'project', 'train', 'scrape'})}|{Path(split_file).resolve()}"
    with _lock:
        if key not in _prepared:
            _prepared.clear()  # a new config or split: the old base is of no more use
            split = read_class_split(config, split_file)
            _prepared[key] = (prepare_runtimes(build_base(config), split, config), split)
        return _prepared[key]


def cut_shards(todo: list[str], shard_size: int, batch_size: int) -> list[list[str]]:
    """``todo`` in order, cut into shards of whole batches: ``shard_size`` rounded up to a batch multiple."""
    per_shard = -(-shard_size // batch_size) * batch_size
    return [todo[i : i + per_shard] for i in range(0, len(todo), per_shard)]


def plan_embedding(config: Config, split_file: Path, shard_size: int) -> EmbeddingPlan:
    """Cut the photos missing from the cache into shards of at least ``shard_size`` (whole batches)."""
    base, split = _base(config, split_file)
    todo = base.store().missing(list(split["sha256"]))
    return EmbeddingPlan(base.primary.name, cut_shards(todo, shard_size, config.train.embed_batch_size))


def embed_shard(config: Config, split_file: Path, runtime: str, shas: list[str]) -> int:
    """Embed one shard's photos with ``runtime`` and append them to the store (reading none of it); how many."""
    base, split = _base(config, split_file)
    spec = RuntimeSpec.parse(runtime)
    base = dataclasses.replace(base, primary=spec)
    path_of = dict(zip(split["sha256"], split["path"], strict=True))
    data_dir = Path(config.project.data_dir)
    embed_batches(
        runtime=base.runtime(spec),
        paths=[data_dir / path_of[s] for s in shas],
        shas=shas,
        store=base.store(spec),
        image_size=base.image_size,
        batch_size=config.train.embed_batch_size,
        show_progress=False,
    )
    return len(shas)
