"""Train benchmark, per backbone: the reference approach (images through the frozen base every epoch) vs STJ's
train stage (embed once with the fastest runtime, then train the head on cached features), and test accuracy
per precision.

On the demo data (scraped first if missing), for each backbone (``train.backbone`` and
``train.compare_backbones`` of the config, or ``--backbones``): embedding images/s for TensorFlow FP32 and
OpenVINO f32, bf16, int8; seconds per epoch for both approaches; the train stage's total seconds (nothing
cached; base prepared but new images; everything cached) and the ratio reference/ours for a 25-epoch
budget; then test accuracy with the whole stage in each precision (``train.precision`` fixed) and with
``auto``. Ends with both tables in Markdown.

Usage: .venv/bin/python benchmarks/train.py [--config configs/demo.yaml] [--backbones resnet50 ...]
       [--reference-epochs 2]
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
from configs.sweep import override_config  # noqa: E402
from core.manifest import manifest_path  # noqa: E402
from core.model import build_classifier, build_frozen, build_head, get_backbone  # noqa: E402
from core.model_input import load_images  # noqa: E402
from core.runtime import RuntimeSpec, TensorFlowRuntime, make_runtime  # noqa: E402
from core.runtime.int8 import int8_runtime  # noqa: E402
from core.runtime.measure import throughput  # noqa: E402
from flows.settings import load_run_config  # noqa: E402
from scraper.scrape import scrape  # noqa: E402
from training.runs.train import train  # noqa: E402
from training.splitting.split import prepare, read_split  # noqa: E402

BUDGET = 25


def frozen_embedder(config) -> keras.Model:
    """The embedder the train stage would build: the config's backbone with the weights it resolves to."""
    backbone = get_backbone(config.train.backbone)
    weights = backbone.resolve_weights(config.train.weights, config.train.weights_fallback)
    return build_frozen(backbone, config.train.image_size, weights=weights, seed=config.project.seed)[1]


def embedding_rates(config, sample: np.ndarray, workdir: Path) -> tuple[dict[str, float], dict]:
    """Images/s of the config's base: TensorFlow FP32 at batch 32, OpenVINO f32/bf16/int8 at the embed batch."""
    embedder = frozen_embedder(config)
    batch = config.train.embed_batch_size
    rates = {"tensorflow-f32": throughput(TensorFlowRuntime(embedder), sample, 32, seconds=3.0)}
    for name in ("openvino-f32", "openvino-bf16"):
        rates[name] = throughput(make_runtime(embedder, RuntimeSpec.parse(name)), sample, batch, seconds=3.0)
    calibrated, record = int8_runtime(
        embedder,
        workdir / "ir",
        "bench",
        lambda: (sample[:32], sample[32:]),
        thorough=get_backbone(config.train.backbone).int8_thorough,  # as training quantises this backbone
    )
    if calibrated is not None:
        rates["openvino-int8"] = throughput(calibrated, sample, batch, seconds=3.0)
    return rates, record


def reference_seconds_per_epoch(config, split, epochs: int) -> float:
    """Seconds per epoch of plain ``fit`` with the frozen base inside the graph (images every epoch)."""
    data_dir, size = Path(config.project.data_dir), config.train.image_size
    embedder = frozen_embedder(config)
    labels = {c: i for i, c in enumerate(config.class_names)}
    train_rows, val_rows = split[split["split"] == "train"], split[split["split"] == "val"]
    x_train = load_images([data_dir / p for p in train_rows["path"]], size)
    x_val = load_images([data_dir / p for p in val_rows["path"]], size)
    y_train, y_val = train_rows["class"].map(labels).to_numpy(), val_rows["class"].map(labels).to_numpy()
    head = build_head(3, config.train.dense_units, config.train.dropout, embedder.predict(x_train[:64], verbose=0))
    reference = build_classifier(embedder, head)
    reference.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy")
    reference.fit(x_train[:32], y_train[:32], epochs=1, verbose=0)  # trace outside the timing
    started = time.perf_counter()
    reference.fit(
        x_train, y_train, validation_data=(x_val, y_val), epochs=epochs, batch_size=config.train.batch_size, verbose=0
    )
    return (time.perf_counter() - started) / epochs


def stage_runs(config, split_file: Path) -> dict:
    """The train stage three times: ``cold`` (nothing cached: the base converted and int8-calibrated, every
    image embedded), ``new`` (the base prepared, every image new: a scheduled run on fresh data), ``warm``
    (every embedding cached)."""
    cache = Path(config.project.data_dir) / "embeddings"
    for old in cache.glob(f"{config.train.backbone}-*"):
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    runs = {"cold": train(config, split_file, config_source="benchmark")}
    for store in cache.glob(f"{config.train.backbone}-*.store"):
        shutil.rmtree(store)
    runs["new"] = train(config, split_file, config_source="benchmark")
    runs["warm"] = train(config, split_file, config_source="benchmark")
    return runs


def accuracy_by_precision(config, split_file: Path) -> dict[str, float]:
    """Test accuracy with the whole stage (embedding, head training, scoring) in each precision, and ``auto``'s."""
    accuracy = {}
    for precision in ("f32", "bf16", "int8"):
        fixed = override_config(config, ["train.runtime=openvino", f"train.precision={precision}"])
        result = train(fixed, split_file, config_source="benchmark")
        if result.runtime == f"openvino-{precision}":  # int8 may be refused: no figure then
            accuracy[precision] = result.metrics["test_accuracy"]
    auto = train(config, split_file, config_source="benchmark")
    accuracy[f"auto ({auto.runtime.removeprefix('openvino-')})"] = auto.metrics["test_accuracy"]
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs/demo.yaml"))
    parser.add_argument("--backbones", nargs="+", help="default: the config's backbone and compare_backbones")
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
    backbones = args.backbones or list(dict.fromkeys([config.train.backbone, *config.train.compare_backbones]))
    print(f"data: {len(split)} images ({split['split'].value_counts().to_dict()}), {config.train.image_size}px")
    import mlflow

    mlflow.set_tracking_uri(config.tracking.uri)
    speed_rows, accuracy_rows = [], []
    try:
        for backbone in backbones:
            bconfig = override_config(config, [f"train.backbone={backbone}", "train.compare_backbones=[]"])
            sample = load_images([data_dir / p for p in split["path"][:64]], bconfig.train.image_size)
            rates, record = embedding_rates(bconfig, sample, tmp / backbone)
            print(f"[{backbone}] embedding: " + ", ".join(f"{n} {r:.1f} img/s" for n, r in rates.items()))
            print(f"[{backbone}] int8 calibration: {record}")
            ref_epoch = reference_seconds_per_epoch(bconfig, split, args.reference_epochs)
            print(f"[{backbone}] (a) reference fit: {ref_epoch:.2f} s/epoch -> {ref_epoch * BUDGET:.0f} s")
            ratios = {}
            for label, result in stage_runs(bconfig, split_file).items():
                metrics = mlflow.get_run(result.run_id).data.metrics
                embed_s = metrics["embed_seconds"]
                ours_epoch = metrics["fit_seconds"] / metrics["epochs_run"]  # head training on cached features
                ours_budget = embed_s + ours_epoch * BUDGET
                ratios[label] = ref_epoch * BUDGET / ours_budget
                print(
                    f"[{backbone}] (b) {label:4s} [{result.runtime}]: embedding {embed_s:.1f} s "
                    f"({metrics['embed_images']:.0f} images) + {ours_epoch:.3f} s/epoch -> {ours_budget:.1f} s for "
                    f"{BUDGET} epochs; ratio (a)/(b) {ratios[label]:.1f}x; whole train stage "
                    f"(plots, baselines, model logging) {result.seconds:.1f} s"
                )
            speed_rows.append((backbone, rates, ratios))
            accuracy = accuracy_by_precision(bconfig, split_file)
            print(f"[{backbone}] test accuracy: " + ", ".join(f"{p} {a:.3f}" for p, a in accuracy.items()))
            accuracy_rows.append((backbone, accuracy))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_tables(speed_rows, accuracy_rows)


def print_tables(speed_rows: list, accuracy_rows: list) -> None:
    """The figures as two Markdown tables (what docs/benchmarks.md quotes)."""
    names = ["tensorflow-f32", "openvino-f32", "openvino-bf16", "openvino-int8"]
    print("\n| backbone | " + " | ".join(f"{n} img/s" for n in names) + " | train stage vs fit (cold / warm) |")
    print("|---" * (len(names) + 2) + "|")
    for backbone, rates, ratios in speed_rows:
        cells = [f"{rates[n]:.0f}" if n in rates else "refused" for n in names]
        print(f"| {backbone} | " + " | ".join(cells) + f" | {ratios['cold']:.1f}x / {ratios['warm']:.1f}x |")
    print("\n| backbone | test accuracy f32 | bf16 | int8 | auto (chosen) |\n|---|---|---|---|---|")
    for backbone, accuracy in accuracy_rows:
        auto = next(f"{a:.3f} ({p[6:-1]})" for p, a in accuracy.items() if p.startswith("auto"))
        cells = [f"{accuracy[p]:.3f}" if p in accuracy else "refused" for p in ("f32", "bf16", "int8")]
        print(f"| {backbone} | " + " | ".join(cells) + f" | {auto} |")


if __name__ == "__main__":
    main()
