"""Train benchmark: the reference approach (images through the frozen ResNet50 every epoch) vs STJ's train
stage (embed once with the fast runtime, then train the head on cached features).

On the demo data (scraped first if missing): prints embedding images/s for TensorFlow FP32 and for the
chosen runtime, seconds per epoch for both approaches, the train stage's total seconds (cold cache and warm
cache), and the ratio reference/ours for a 25-epoch budget.

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

from configs import load_config  # noqa: E402
from scraper.catalog.server import catalog_for  # noqa: E402
from scraper.manifest import manifest_path  # noqa: E402
from scraper.scrape import scrape  # noqa: E402
from training.images import load_images  # noqa: E402
from training.model import build_base, build_classifier, build_embedder, build_head  # noqa: E402
from training.runtime import TensorFlowRuntime, make_runtime  # noqa: E402
from training.split import prepare, read_split  # noqa: E402
from training.train import train  # noqa: E402

BUDGET = 25


def images_per_second(runtime, pixels: np.ndarray, batch: int) -> float:
    runtime(pixels[:batch])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(pixels), batch):
        runtime(pixels[i : i + batch])
    return len(pixels) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/demo.yaml"))
    parser.add_argument("--reference-epochs", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stj-bench-train-"))
    config = load_config(
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

    # embedding speed: TensorFlow FP32 vs the configured runtime, on the same 64 images
    base = build_base(size, None, config.project.seed)
    embedder = build_embedder(base, size)
    sample = load_images([data_dir / p for p in split["path"][:64]], size)
    tf_rate = images_per_second(TensorFlowRuntime(embedder), sample, 32)
    fast = make_runtime(embedder, config.train.runtime)
    fast_rate = images_per_second(fast, sample, config.train.embed_batch_size)
    print(
        f"embedding: tensorflow-fp32 {tf_rate:.1f} img/s (batch 32), {fast.name} {fast_rate:.1f} img/s "
        f"(batch {config.train.embed_batch_size})"
    )

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

    # (b) ours: the train stage, cold cache then warm cache, BUDGET epochs of head training
    cache = data_dir / "embeddings"
    shutil.rmtree(cache, ignore_errors=True)
    cold = train(config, split_file, config_source="benchmark")
    warm = train(config, split_file, config_source="benchmark")
    import mlflow

    mlflow.set_tracking_uri(config.tracking.uri)
    run = mlflow.get_run(cold.run_id)
    epochs = int(run.data.metrics["epochs_run"])
    embed_s = run.data.metrics["embed_seconds"]
    ours_epoch = run.data.metrics["fit_seconds"] / epochs  # head training on cached features
    ours_budget = embed_s + ours_epoch * BUDGET
    print(f"(a) reference fit: {ref_epoch:.2f} s/epoch -> {ref_epoch * BUDGET:.0f} s for {BUDGET} epochs")
    print(
        f"(b) ours: embedding once {embed_s:.1f} s ({len(split) / embed_s:.0f} img/s incl. decode) + "
        f"{ours_epoch:.3f} s/epoch -> {ours_budget:.1f} s for {BUDGET} epochs"
    )
    print(
        f"(b) whole train stage (plots, baselines, model logging included): cold {cold.seconds:.1f} s, "
        f"warm cache {warm.seconds:.1f} s"
    )
    print(
        f"ratio (a)/(b) for {BUDGET} epochs: {ref_epoch * BUDGET / ours_budget:.1f}x; "
        f"vs the whole cold stage: {ref_epoch * BUDGET / cold.seconds:.1f}x"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
