"""Per-photo costs (`make bench-costs`): what each photo costs in the stages that grow with the data, and what
the Dask runner adds. The real pipeline at 10x and the algorithmic parts at 600 000: `make bench-scale`.

On the demo data (`make run` first), in one process:

- verify: read a scraped JPEG, its perceptual hash, decode and resize (ms per photo);
- near-duplicate lookups: one scrape-time lookup (``scraper.dedup.HashIndex``, through ``core.near_index``)
  against N kept photos, and the split's grouping (``core.phash.near_pairs``) over N photos, at growing N
  (random 256-bit hashes beyond the demo's own);
- embed: the train stage's chosen runtime over every photo in this process, vs the same photos as shard
  tasks on a local Dask cluster of two single-threaded workers (the Prefect flow the pipeline runs), cold
  (workers start TensorFlow and build the base) and warm; the features are compared too;
- train the head: seconds per epoch on the cached features.

Ends with a Markdown table of per-photo costs. Speeds are only comparable as ratios within one run.

Usage: .venv/bin/python benchmarks/scale.py [--config configs/demo.yaml] [--backbone efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from configs.sweep import override_config  # noqa: E402
from core.model_input import load_images  # noqa: E402
from core.phash import near_pairs, perceptual_hash  # noqa: E402
from flows.settings import load_run_config  # noqa: E402
from scraper.dedup import HashIndex  # noqa: E402
from training.embedding.embed import embed_files  # noqa: E402
from training.embedding.features import build_base, prepare_runtimes, read_class_split  # noqa: E402
from training.fitting.fit import fit_head  # noqa: E402


def per_photo_verify(paths: list[Path], image_size: int) -> tuple[float, list[str]]:
    """ms per photo to read, hash, decode and resize; the hashes."""
    started = time.perf_counter()
    hashes = [perceptual_hash(p.read_bytes()) for p in paths]
    load_images(paths, image_size, workers=1)
    return 1000 * (time.perf_counter() - started) / len(paths), hashes


def dedup_costs(real: list[str], sizes: list[int]) -> list[tuple[int, float, float | None]]:
    """(N, µs per scrape-time lookup against N, seconds for the split's all-pairs pass over N or None)."""
    rng = random.Random(0)
    out = []
    for n in sizes:
        hashes = real[:n] + [f"{rng.getrandbits(256):064x}" for _ in range(max(0, n - len(real)))]
        index = HashIndex(max_distance=22)
        for i, h in enumerate(hashes):
            index.add(h, str(i), "x")
        probes = hashes[:50]
        started = time.perf_counter()
        for h in probes:
            index.nearest(h)
        lookup_us = 1e6 * (time.perf_counter() - started) / len(probes)
        pairs_s = None
        if n <= 6000:  # quadratic: larger N is extrapolated in the table, not run
            started = time.perf_counter()
            sum(1 for _ in near_pairs(hashes, 22))
            pairs_s = time.perf_counter() - started
        out.append((n, lookup_us, pairs_s))
    return out


def _workdir(config, demo_dir: Path) -> tuple[object, Path]:
    """A data folder sharing the demo's photos and split, with an empty embedding cache."""
    work = Path(tempfile.mkdtemp(prefix="stj-bench-scale-"))
    for name in ("manifest.csv", "split.csv", "split.json"):
        if (demo_dir / name).exists():
            shutil.copy(demo_dir / name, work / name)
    (work / "raw").symlink_to((demo_dir / "raw").resolve())
    return override_config(config, [f"project.data_dir={work}"]), work


def embed_local(config, split_file: Path) -> tuple[float, dict]:
    """Seconds to embed every photo in this process (base built and runtime prepared before the clock)."""
    split = read_class_split(config, split_file)
    base = prepare_runtimes(build_base(config), split, config)
    data_dir, shas = Path(config.project.data_dir), list(split["sha256"])
    started = time.perf_counter()
    vectors, _ = embed_files(
        base.runtime(),
        [data_dir / p for p in split["path"]],
        shas,
        base.store(),
        base.image_size,
        config.train.embed_batch_size,
        show_progress=False,
    )
    return time.perf_counter() - started, dict(zip(shas, vectors, strict=True))


def embed_on_dask(config, split_file: Path, address: str) -> tuple[float, dict]:
    """Seconds for the pipeline's shard fan-out (plan + shard tasks on the cluster at ``address``)."""
    from prefect import flow

    from flows.fanout import embed_in_shards, task_runner

    config = override_config(config, ["orchestration.task_runner=dask", f"orchestration.dask_address={address}"])

    @flow(name="bench-embed-shards")
    def shards() -> dict:
        return embed_in_shards(config, split_file)

    folder = Path(config.project.data_dir) / "embeddings"
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    shards.with_options(task_runner=task_runner(config.orchestration))()
    seconds = time.perf_counter() - started
    base = prepare_runtimes(build_base(config), read_class_split(config, split_file), config)  # measured: cached
    store = base.store()
    return seconds, dict(zip(store.keys(), store.lookup(store.keys()), strict=True))


def head_seconds_per_epoch(config, vectors: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """Seconds per epoch of the head on cached features (a fixed 10-epoch budget, no early stop)."""
    budget = override_config(config, ["train.epochs=10", "train.patience=10"]).train
    started = time.perf_counter()
    _, history, _ = fit_head((vectors, labels), (vectors[:64], labels[:64]), n_classes, budget, None, 0)
    return (time.perf_counter() - started) / len(history["loss"])


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    args = parser.parse_args()
    config = load_run_config(args.config, [f"train.backbone={args.backbone}", "train.compare_backbones=[]"])
    demo_dir = Path(config.project.data_dir)
    if not (demo_dir / "split.csv").exists():
        sys.exit(f"no split in {demo_dir}: run `make run` first")
    split = read_class_split(config, demo_dir / "split.csv")
    paths = [demo_dir / p for p in split["path"]]
    n = len(paths)
    print(f"{n} photos, backbone {args.backbone}, {os.cpu_count()} CPUs")

    verify_ms, hashes = per_photo_verify(paths, config.train.image_size)
    print(f"verify (read + pHash + decode/resize): {verify_ms:.2f} ms/photo")
    dedup = dedup_costs(hashes, [n, 6000, 60000, 600000])
    for size, lookup_us, pairs_s in dedup:
        pairs = f", split all-pairs {pairs_s:.2f} s" if pairs_s is not None else ""
        print(f"near-duplicates at N={size}: one lookup {lookup_us:.0f} µs{pairs}")

    from distributed import LocalCluster

    from flows.prefect_server import prefect_api

    local_cfg, local_dir = _workdir(config, demo_dir)
    dask_cfg, dask_dir = _workdir(config, demo_dir)
    try:
        local_s, local_vectors = embed_local(local_cfg, local_dir / "split.csv")
        print(f"embed in-process: {local_s:.1f} s, {1000 * local_s / n:.1f} ms/photo")
        with (
            prefect_api(),
            LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        ):
            cold_s, _ = embed_on_dask(dask_cfg, dask_dir / "split.csv", cluster.scheduler_address)
            warm_s, dask_vectors = embed_on_dask(dask_cfg, dask_dir / "split.csv", cluster.scheduler_address)
        assert local_vectors.keys() == dask_vectors.keys()
        diff = max(float(np.abs(local_vectors[k] - dask_vectors[k]).max()) for k in local_vectors)
        scale = max(float(np.abs(v).max()) for v in local_vectors.values())
        print(
            f"embed as Dask shard tasks (2 workers): cold {cold_s:.1f} s, warm {warm_s:.1f} s; "
            f"warm/in-process {warm_s / local_s:.2f}x; features: largest difference {diff:.3g} "
            f"(largest value {scale:.3g}; 0 is bit for bit)"
        )
        labels = split["class"].map({c: i for i, c in enumerate(config.class_names)}).to_numpy()
        vectors = np.stack([local_vectors[s] for s in split["sha256"]])
        epoch_s = head_seconds_per_epoch(config, vectors, labels, len(config.class_names))
        print(f"head: {epoch_s:.2f} s/epoch, {1000 * epoch_s / n:.2f} ms per photo-epoch")
    finally:
        shutil.rmtree(local_dir, ignore_errors=True)
        shutil.rmtree(dask_dir, ignore_errors=True)

    print("\n| per photo | cost |\n|---|---|")
    print(f"| verify (read, pHash, decode, resize) | {verify_ms:.2f} ms |")
    print(f"| embed ({args.backbone}, in-process) | {1000 * local_s / n:.1f} ms |")
    print(f"| embed as Dask shard tasks, warm | {1000 * warm_s / n:.1f} ms |")
    print(f"| head, per epoch | {1000 * epoch_s / n:.2f} ms |")
    print("\n| N photos | scrape-time lookup | split all-pairs |\n|---|---|---|")
    base_n, _, base_s = dedup[1]
    for size, lookup_us, pairs_s in dedup:
        pairs = f"{pairs_s:.1f} s" if pairs_s is not None else f"~{base_s * (size / base_n) ** 2:.0f} s (extrapolated)"
        print(f"| {size} | {lookup_us:.0f} µs | {pairs} |")


if __name__ == "__main__":
    main()
