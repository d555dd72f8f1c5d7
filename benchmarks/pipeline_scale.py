"""Scale benchmark: the real pipeline at 10x (and 100x) the demo, then a weekly run, then the algorithmic parts
at 600 000 photos.

1. **The pipeline** (`stj run`'s code path, in a child process with its temporary Prefect server), on the local
   catalog grown to ``--photos`` photos (``catalog.products_per_class``; the catalog's drawings cached as files
   under ``--work``, drawn once before the clock so the scrape is not timed drawing), one backbone
   (EfficientNet-Lite0), the demo config otherwise (100 epochs, label check, gate). Printed per stage: wall
   time, photos/s; for the run: peak RSS of the whole process tree (sampled every 0.2 s) and of the pipeline's
   own process, and the share of the time after the scrape spent embedding (the compute-bound floor). Each run's
   log: ``<work>/n<photos>/<first|weekly>.log``.
2. **A weekly run**: the catalog grows by ``--weekly`` (10 %: products 1..N stay as they were, the catalog
   appends), the same command again on the same data folder; time per stage, and its ratio to the first run.
   With ``--team``, both runs go to the team setup (``make team-up``'s services, started here in a folder of
   their own on free ports and stopped at the end: PostgreSQL, Prefect and MLflow servers, a Dask scheduler and
   two single-threaded workers): the flow runs in the child, its tasks (scrape queries, embedding shards, folds)
   on the workers. Printed besides: each worker's peak RSS (its nanny and its process) and how many workers the
   scheduler lost (a worker killed for memory is removed, and its nanny restarts it).
3. **The algorithmic parts**, synthetic, at 6 000 and ``--algorithms`` photos: the split's near-duplicate
   grouping (first run, and a weekly run of +10 %), the scrape's dedup look-ups (``core.near_index``), loading
   1 % of the keys from an embedding store of that many 1 280-float vectors; per-photo cost and its ratio.

Speeds are only comparable as ratios within one run. Head training's memory against epochs: ``make bench-head``.

Usage: .venv/bin/python benchmarks/pipeline_scale.py [--photos 6000] [--weekly 0.1 (0: none)]
       [--algorithms 600000 (0: none)] [--demo-backbones] [--team] [--work .bench-scale]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STAGES = ("scrape", "validate", "prepare", "train", "publish")
RESULTS_PER_PAGE = 60  # a page lists 57 new products: 60 000 photos stay within scrape.max_pages' 400


ONE_BACKBONE = ["tracking.imagenet_model=", "train.backbone=efficientnet_lite0", "train.compare_backbones=[]"]


def overrides(work: Path, photos: int, port: int, demo_backbones: bool = False, team: bool = False) -> list[str]:
    """The demo config at ``photos`` photos, everything under ``work``; one backbone (Lite0) unless
    ``demo_backbones`` (the demo's own: ResNet50 and Lite0 compared, the ImageNet model registered); with
    ``team``, tracking and orchestration are left to the team's environment (its MLflow server, Dask)."""
    per_class = math.ceil(photos / 3)
    return [
        f"project.data_dir={work / 'data'}",
        *([] if team else [f"tracking.uri=sqlite:///{work / 'mlflow.db'}"]),
        *([] if demo_backbones else ONE_BACKBONE),
        f"catalog.products_per_class={per_class}",
        f"catalog.results_per_page={RESULTS_PER_PAGE}",
        f"catalog.photo_cache_dir={work.parent / 'photos'}",
        "catalog.port=0",
        f"scrape.base_url=http://127.0.0.1:{port}",
        f"scrape.max_pages={min(400, math.ceil(per_class / (RESULTS_PER_PAGE - 3)) + 1)}",
    ]


def run_pipeline(settings: list[str], result_file: str) -> None:
    """Child mode: the pipeline once, as `stj run` runs it (its environment, config values from ``STJ_*``
    variables); its stage times and run metrics to ``result_file``."""
    from flows.cli import quiet_environment

    quiet_environment()
    from mlflow import MlflowClient

    from flows.pipeline import pipeline
    from flows.prefect_server import prefect_api
    from flows.settings import load_run_config

    config = load_run_config(ROOT / "configs/demo.yaml", settings, environ=os.environ)
    with prefect_api():
        summary = pipeline(config, config_source="configs/demo.yaml")
    metrics = MlflowClient(config.tracking.uri).get_run(summary["train"]["run_id"]).data.metrics
    sharded = summary["train"]["embedded_in_shards"] or {"seconds": 0.0, "embedded": 0}  # on the Dask runner
    out = {
        "stage_seconds": summary["stage_seconds"],
        "saved": summary["scrape"]["saved"],
        "photos": int(metrics["n_train"] + metrics["n_val"] + metrics["n_test"]),
        "embed_seconds": metrics.get("embed_seconds", 0.0) + sharded["seconds"],
        "embed_images": metrics.get("embed_images", 0.0) + sharded["embedded"],
    }
    Path(result_file).write_text(json.dumps(out))


def _tree_rss(root) -> tuple[int, int]:
    """(RSS of ``root`` and all its descendants, RSS of ``root``) in bytes."""
    import psutil

    try:
        own = root.memory_info().rss
        return own + sum(_safe_rss(c) for c in root.children(recursive=True)), own
    except psutil.NoSuchProcess:
        return 0, 0


def _safe_rss(process) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def measured_run(settings: list[str], log_file: Path, team=None) -> dict:
    """The pipeline in a child process, its process tree's RSS sampled, its log (stderr) to ``log_file``; its
    result with ``peak_tree_mib`` and ``peak_own_mib``. With ``team`` (a running :class:`team.settings.Team`),
    the child reports to the team's servers and runs its tasks on its Dask workers; the result adds
    ``peak_worker_mib`` (each worker's nanny and process) and ``workers_lost`` (removed by the scheduler during
    the run)."""
    import psutil

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = handle.name
    # as `stj` sets it: the child's temporary Prefect server would otherwise try (and, offline, fail) to send
    # usage telemetry, an ERROR line in the run's log
    # a shell's own STJ_* settings or Prefect server (a sourced .team/env) must not turn a plain run into another
    inherited = {k: v for k, v in os.environ.items() if team or not (k.startswith("STJ_") or k == "PREFECT_API_URL")}
    env = {
        **inherited,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(ROOT),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **(team.settings() if team else {}),
    }
    workers = _team_workers(team) if team else {}
    removed_before = _workers_removed(team) if team else 0
    command = [sys.executable, __file__, "--child", result_file, "--", *settings]
    started = time.monotonic()
    log = log_file.open("w")
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    peaks = [0, 0]
    worker_peaks = dict.fromkeys(workers, 0)
    stop = threading.Event()

    def sample() -> None:
        process = psutil.Process(child.pid)
        while not stop.wait(0.2):
            tree, own = _tree_rss(process)
            peaks[0], peaks[1] = max(peaks[0], tree), max(peaks[1], own)
            for name, nanny in workers.items():
                worker_peaks[name] = max(worker_peaks[name], _tree_rss(nanny)[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        child.wait()
    finally:
        stop.set()
        sampler.join()
        log.close()
        if child.poll() is None:
            child.kill()
    if child.returncode != 0:
        raise SystemExit(f"the pipeline failed ({child.returncode}):\n{log_file.read_text()[-3000:]}")
    result = json.loads(Path(result_file).read_text())
    Path(result_file).unlink()
    team_figures = {
        "peak_worker_mib": {name: peak / 2**20 for name, peak in worker_peaks.items()},
        "workers_lost": _workers_removed(team) - removed_before,
    }
    return {
        **result,
        **(team_figures if team else {}),
        "wall": time.monotonic() - started,
        "peak_tree_mib": peaks[0] / 2**20,
        "peak_own_mib": peaks[1] / 2**20,
    }


def _team_workers(team) -> dict:
    """The team's Dask workers: name -> the nanny's process (the worker process is its child)."""
    import psutil

    from team.processes import Services

    return {e["name"]: psutil.Process(e["pid"]) for e in Services(team).alive() if e["name"].startswith("dask-worker")}


def _workers_removed(team) -> int:
    """How many times the scheduler has removed a worker (a killed worker is removed, then its nanny's new
    process registers again)."""
    return (team.root / "logs" / "dask-scheduler.log").read_text().count("Remove worker")


@contextlib.contextmanager
def team_services(work: Path):
    """The team's services (as `make team-up` starts them) in a fresh folder of their own, on free ports;
    stopped when the block ends, however it ends."""
    from core.processes import free_port
    from team.cluster import down, up
    from team.settings import Team

    # not under the work folder's parents' permissions: PostgreSQL runs as its own user and needs to enter it
    root = Path(tempfile.mkdtemp(prefix="stj-bench-team-"))
    root.chmod(0o755)
    team = Team(root, free_port(), free_port(), free_port(), free_port())
    try:
        up(team)
        yield team
    finally:
        down(team, quiet=True)
        if (root / "logs").exists():  # up() may have failed before creating it: its own error is the one shown
            shutil.copytree(root / "logs", work / "team-logs", dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)


def _draw(job: tuple) -> None:
    from catalog.server import encoded_photo

    encoded_photo(*job)


def draw_catalog(settings: list[str]) -> float:
    """Draw every photo of the catalog into its photo cache (not timed as scraping), one process per core, the
    photos already cached skipped; seconds."""
    from concurrent.futures import ProcessPoolExecutor

    from catalog import Catalog
    from flows.settings import load_run_config

    config = load_run_config(ROOT / "configs/demo.yaml", settings)
    started = time.monotonic()
    jobs = [(config.catalog, product.drawing, None) for product in Catalog(config.catalog).by_image_id.values()]
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(_draw, jobs, chunksize=64))
    return time.monotonic() - started


def pipeline_section(photos: int, weekly: float, work: Path, demo_backbones: bool = False, team=None) -> list[dict]:
    """The first run at ``photos``, then (``weekly`` > 0) the weekly run at ``photos`` x (1 + ``weekly``); on
    ``team``'s services when given."""
    from core.processes import free_port

    folder = work / f"n{photos}{'-demo' if demo_backbones else ''}{'-team' if team else ''}"
    shutil.rmtree(folder, ignore_errors=True)  # a first run starts from nothing (the drawn photos are kept)
    folder.mkdir(parents=True)
    runs = []
    sizes = [("first", photos)] + ([("weekly", round(photos * (1 + weekly)))] if weekly > 0 else [])
    for label, size in sizes:
        settings = overrides(folder, size, free_port(), demo_backbones, team is not None)
        drawn = draw_catalog(settings)
        print(f"  {label} run at {size} photos: catalog drawn into its cache in {drawn:.0f} s", flush=True)
        runs.append({"label": label, "size": size, **measured_run(settings, folder / f"{label}.log", team)})
        print(f"  {json.dumps(runs[-1])}", flush=True)
    return runs


def print_pipeline(runs: list[dict]) -> None:
    """The per-stage table of a first and a weekly run."""
    first = runs[0]
    print(f"| run | photos | {' | '.join(STAGES)} | wall | peak RSS tree / own (MiB) | embedding share |")
    print("|---|---|" + "---|" * (len(STAGES) + 3))
    for run in runs:
        seconds = run["stage_seconds"]
        after_scrape = sum(seconds[s] for s in STAGES if s != "scrape")
        share = run["embed_seconds"] / after_scrape if after_scrape else 0.0
        cells = " | ".join(f"{seconds[s]:.1f} s" for s in STAGES)
        print(
            f"| {run['label']} | {run['photos']} | {cells} | {run['wall']:.0f} s | "
            f"{run['peak_tree_mib']:.0f} / {run['peak_own_mib']:.0f} | {share:.0%} |"
        )
    scrape_rate = first["saved"] / first["stage_seconds"]["scrape"]
    print(
        f"scrape: {scrape_rate:.1f} photos/s; embedding: {first['embed_images'] / max(first['embed_seconds'], 1e-9):.1f} photos/s"
    )
    for run in runs:
        if "workers_lost" in run:
            peaks = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in run["peak_worker_mib"].items())
            print(f"{run['label']} run, team: peak RSS per Dask worker {peaks}; workers lost {run['workers_lost']}")
    if len(runs) > 1:
        weekly = runs[1]["stage_seconds"]
        ratios = ", ".join(f"{s} {weekly[s] / first['stage_seconds'][s]:.2f}" for s in STAGES)
        print(f"weekly / first, per stage: {ratios}")


def _manifest(hashes: list[int]):
    """Manifest rows for synthetic photos with these perceptual hashes, three classes in turn."""
    import pandas as pd

    return pd.DataFrame(
        {
            "path": [f"raw/c{i % 3}/{i:07d}.jpg" for i in range(len(hashes))],
            "class": [f"c{i % 3}" for i in range(len(hashes))],
            "sha256": [f"{i:064x}" for i in range(len(hashes))],
            "phash": [f"{h:064x}" for h in hashes],
            "scraped_at": "2026-12-01",
        }
    )


def algorithm_section(sizes: list[int]) -> None:
    """Per-photo costs of the parts that once grew faster than N, at each size."""
    import numpy as np

    from core.near_index import NearIndex
    from training.embedding.store import EmbeddingStore
    from training.splitting.split import SplitParams, assign_split

    rng = random.Random(0)
    params = SplitParams(test_size=0.2, val_size=0.1, seed=42, max_distance=22)
    rows = []
    for n in sizes:
        hashes = [rng.getrandbits(256) for _ in range(int(n * 1.1))]

        first, grown = _manifest(hashes[:n]), _manifest(hashes)
        started = time.perf_counter()
        split = assign_split(first, params)
        split_s = time.perf_counter() - started
        started = time.perf_counter()
        assign_split(grown, params, previous=split)
        weekly_s = time.perf_counter() - started

        index = NearIndex(22)
        started = time.perf_counter()
        for i, value in enumerate(hashes[:n]):
            index.within(value)
            index.add(i, value)
        dedup_s = time.perf_counter() - started

        with tempfile.TemporaryDirectory() as folder:
            store = EmbeddingStore(folder, "bench")
            vectors = np.random.default_rng(0).normal(size=(4096, 1280)).astype(np.float32)
            keys = [f"{i:064x}" for i in range(n)]
            for start in range(0, n, 4096):
                chunk = keys[start : start + 4096]
                store.add(chunk, vectors[: len(chunk)])
            store.flush()
            wanted = random.Random(1).sample(keys, max(1, n // 100))
            started = time.perf_counter()
            reader = EmbeddingStore(folder, "bench")
            reader.lookup(wanted)
            load_s = time.perf_counter() - started
        rows.append({"n": n, "split": split_s, "weekly": weekly_s, "dedup": dedup_s, "load": load_s})
        print(f"  {json.dumps(rows[-1])}", flush=True)
    print(
        "| photos | split grouping µs/photo | weekly split (+10 %) s | dedup look-up µs/photo | store: open + load 1 % s |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['split'] / r['n'] * 1e6:.0f} | {r['weekly']:.2f} | {r['dedup'] / r['n'] * 1e6:.0f} "
            f"| {r['load']:.2f} |"
        )
    small, large = rows[0], rows[-1]
    print(
        f"per-photo cost, {large['n']} / {small['n']}: split grouping "
        f"{(large['split'] / large['n']) / (small['split'] / small['n']):.2f}, dedup "
        f"{(large['dedup'] / large['n']) / (small['dedup'] / small['n']):.2f}, store load (1 % of keys) "
        f"{(large['load'] / large['n']) / (small['load'] / small['n']):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, nargs="*", default=[6000])
    parser.add_argument("--weekly", type=float, default=0.1, help="0: no weekly run")
    parser.add_argument("--demo-backbones", action="store_true", help="the demo's two backbones, not Lite0 alone")
    parser.add_argument("--algorithms", type=int, default=600_000, help="0: skip the algorithmic parts")
    parser.add_argument("--team", action="store_true", help="on the team setup's services (two Dask workers)")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench-scale")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        run_pipeline([s for s in rest if s != "--"], args.child)
        return
    work = args.work.resolve()
    for photos in args.photos:
        backbones = "ResNet50 + EfficientNet-Lite0" if args.demo_backbones else "EfficientNet-Lite0"
        where = ", team setup: two Dask workers" if args.team else ""
        print(f"the pipeline at {photos} photos ({backbones}, demo config{where})", flush=True)
        with team_services(work) if args.team else contextlib.nullcontext() as team:
            print_pipeline(pipeline_section(photos, args.weekly, work, args.demo_backbones, team))
    if args.algorithms:
        print(f"the algorithmic parts at 6000 and {args.algorithms} photos (synthetic)", flush=True)
        algorithm_section([6000, args.algorithms])


if __name__ == "__main__":
    main()
