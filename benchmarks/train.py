"""Train benchmark: the reference approach (images through the frozen ResNet50 every epoch) vs STJ's train
stage (embed once with the fast runtime, then train the head on cached features).

On the demo data (scraped first if missing): prints embedding images/s for TensorFlow FP32 and OpenVINO
(f32, bf16, int8), seconds per epoch for both approaches, the train stage's total seconds (nothing cached;
base prepared but new images; everything cached), and the ratio reference/ours for a 25-epoch budget.

Usage: .venv/bin/python benchmarks/train.py [--config configs/demo.yaml] [--reference-epochs 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from catalog.server import catalog_for  # noqa: E402
from core.manifest import manifest_path  # noqa: E402
from core.model import build_classifier, build_frozen, build_head  # noqa: E402
from core.model_input import load_images  # noqa: E402
from core.runtime import RuntimeSpec, TensorFlowRuntime, make_runtime  # noqa: E402
from core.runtime.int8 import int8_runtime  # noqa: E402
from flows.settings import load_run_config  # noqa: E402
from scraper.scrape import scrape  # noqa: E402
from training.split import prepare, read_split  # noqa: E402
from training.train import train  # noqa: E402

BUDGET = 25


def images_per_second(runtime, pixels: np.ndarray, batch: int, seconds: float = 3.0) -> float:
    """Throughput over repeated passes on ``pixels`` for at least ``seconds`` (one warm-up batch first)."""
    runtime(pixels[:batch])
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for i in range(0, len(pixels), batch):
            runtime(pixels[i : i + batch])
        done += len(pixels)
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/demo.yaml"))
    parser.add_argument("--reference-epochs", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stj-bench-train-"))
    config = load_run_config(
        args.config,
        [
            f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
            f"tracking.artifact_dir={tmp / 'mlartifacts'}",
            f"train.epochs={BUDGET}",
            f"train.patience={BUDGET}",  # the whole budget: no early stop in either
        ],
    )
    data_dir = Path(config.project.data_dir)
    if not manifest_path(data_dir).exists():
        with catalog_for(config.catalog, config.scrape.base_url) as base_url:
            scrape(config, base_url=base_url, show_progress=False)
    split_file = prepare(config)
    split = read_split(split_file)
    size = config.train.image_size
    print(f"data: {len(split)} images ({split['split'].value_counts().to_dict()}), {size}px, 2 cores")

    # embedding speed: TensorFlow FP32 vs OpenVINO bf16 and int8, on the same 64 images
    _, embedder = build_frozen(config.train.backbone, size, seed=config.project.seed)
    sample = load_images([data_dir / p for p in split["path"][:64]], size)
    batch = config.train.embed_batch_size
    rates = {"tensorflow-f32 (batch 32)": images_per_second(TensorFlowRuntime(embedder), sample, 32)}
    for name in ("openvino-f32", "openvino-bf16"):
        runtime = make_runtime(embedder, RuntimeSpec.parse(name))
        rates[f"{name} (batch {batch})"] = images_per_second(runtime, sample, batch)
    calibrated, record = int8_runtime(embedder, tmp / "ir", "bench", lambda: (sample[:32], sample[32:]))
    if calibrated is not None:
        rates[f"openvino-int8 (batch {batch})"] = images_per_second(calibrated, sample, batch)
    print("embedding: " + ", ".join(f"{name} {rate:.1f} img/s" for name, rate in rates.items()))
    print(f"int8 calibration: {record}")

    # (a) reference: frozen base inside the graph, images every epoch
    train_rows = split[split["split"] == "train"]
    val_rows = split[split["split"] == "val"]
    labels = {c: i for i, c in enumerate(config.class_names)}
    x_train = load_images([data_dir / p for p in train_rows["path"]], size)
    x_val = load_images([data_dir / p for p in val_rows["path"]], size)
    y_train, y_val = train_rows["class"].map(labels).to_numpy(), val_rows["class"].map(labels).to_numpy()
    head = build_head(3, config.train.dense_units, config.train.dropout, embedder.predict(x_train[:64], verbose=0))
    reference = build_classifier(embedder, head)
    reference.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy")
    reference.fit(x_train[:32], y_train[:32], epochs=1, verbose=0)  # trace outside the timing
    started = time.perf_counter()
    reference.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=args.reference_epochs,
        batch_size=config.train.batch_size,
        verbose=0,
    )
    ref_epoch = (time.perf_counter() - started) / args.reference_epochs
    del x_train, x_val

    # (b) ours: the train stage, BUDGET epochs of head training, three times:
    #   cold   - nothing cached: the base is converted (and int8-calibrated) first, every image embedded
    #   new    - the base prepared by an earlier run, every image new: a scheduled run on fresh data
    #   warm   - every embedding cached
    cache = data_dir / "embeddings"
    shutil.rmtree(cache, ignore_errors=True)
    runs = {"cold": train(config, split_file, config_source="benchmark")}
    for vectors in cache.glob("*.npz"):
        vectors.unlink()
    runs["new"] = train(config, split_file, config_source="benchmark")
    runs["warm"] = train(config, split_file, config_source="benchmark")
    import mlflow

    mlflow.set_tracking_uri(config.tracking.uri)
    print(f"(a) reference fit: {ref_epoch:.2f} s/epoch -> {ref_epoch * BUDGET:.0f} s for {BUDGET} epochs")
    for label, result in runs.items():
        metrics = mlflow.get_run(result.run_id).data.metrics
        embed_s = metrics["embed_seconds"]
        ours_epoch = metrics["fit_seconds"] / metrics["epochs_run"]  # head training on cached features
        ours_budget = embed_s + ours_epoch * BUDGET
        print(
            f"(b) {label:4s} [{result.runtime}]: embedding {embed_s:.1f} s "
            f"({metrics['embed_images']:.0f} images) + {ours_epoch:.3f} s/epoch -> {ours_budget:.1f} s for "
            f"{BUDGET} epochs; ratio (a)/(b) {ref_epoch * BUDGET / ours_budget:.1f}x; whole train stage "
            f"(plots, baselines, model logging) {result.seconds:.1f} s"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
