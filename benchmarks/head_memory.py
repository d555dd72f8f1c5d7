"""Head training's peak memory against the number of epochs: ``fit_head`` (batches gathered as they are
needed) beside its peer in the same run, the same fit on every epoch's rows gathered up front (how
``fit_head`` trained until 2026-12, the first wall of issue 25: 10.9 GiB at 100 epochs on 4 300 rows).

Each fit runs in a fresh process on the same synthetic features (``--rows`` x 2 048 float32, three
classes), with early stopping off so that every epoch runs; printed: peak RSS of that process (MiB), seconds,
and the ratio streamed / materialised. No data or store needed.

Usage: .venv/bin/python benchmarks/head_memory.py [--rows 4300] [--epochs 25 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAYS = ("streamed", "materialised")


def fit_materialised(train, val, num_classes: int, config, seed: int):
    """The head as ``fit_head`` trained it before streaming: every epoch's rows gathered up front (memory
    epochs x rows x dims), the same seeds, callbacks and best-epoch weights. The peer of this benchmark, and
    the reference the bit-equality test compares ``fit_head`` with."""
    import keras
    import numpy as np
    import tensorflow as tf

    from core.model import build_head
    from training.fitting.fit import EpochSeeds, Validation, balanced_class_weights, epoch_order

    features, labels = train
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)
    head = build_head(num_classes, config.dense_units, config.dropout, features, seed=seed)
    steps = -(-len(features) // config.batch_size)
    head.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps,
    )
    weights = balanced_class_weights(labels, num_classes)
    order = np.concatenate([epoch_order(len(features), seed, e, config.batch_size) for e in range(config.epochs)])
    stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
    head.fit(
        features[order],
        labels[order],
        sample_weight=np.array([weights[int(c)] for c in labels], np.float32)[order],
        batch_size=config.batch_size,
        steps_per_epoch=steps,
        epochs=config.epochs,
        shuffle=False,
        verbose=0,
        callbacks=[EpochSeeds(seed), Validation(*val), stopper],
    )
    if stopper.best_weights is not None:
        head.set_weights(stopper.best_weights)
    return head


def fit_once(way: str, rows: int, epochs: int) -> dict:
    """One fit in this process; its peak RSS (MiB) and seconds."""
    import resource
    import time

    import numpy as np

    from configs.schema import TrainConfig
    from training.fitting.fit import fit_head

    rng = np.random.default_rng(0)
    labels = np.arange(rows) % 3
    features = rng.normal(size=(rows, 2048)).astype(np.float32) + labels[:, None] * 0.05
    val = (features[:256], labels[:256])
    config = TrainConfig(epochs=epochs, patience=epochs + 1, batch_size=32)
    started = time.perf_counter()
    fit = fit_head if way == "streamed" else lambda *args, **kwargs: fit_materialised(*args[:4], kwargs["seed"])
    fit((features, labels), val, 3, config, None, seed=0)
    seconds = time.perf_counter() - started
    return {"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4300)
    parser.add_argument("--epochs", type=int, nargs="+", default=[25, 100])
    parser.add_argument("--one", nargs=3, metavar=("WAY", "ROWS", "EPOCHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(fit_once(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    print(f"head training on {args.rows} x 2048 features (peak RSS of a fresh process per fit)")
    print(f"| epochs | {' | '.join(f'{w} MiB | {w} s' for w in WAYS)} | streamed / materialised (memory) |")
    print("|---|" + "---|" * (2 * len(WAYS) + 1))
    for epochs in args.epochs:
        found = {}
        for way in WAYS:
            done = subprocess.run(
                [sys.executable, __file__, "--one", way, str(args.rows), str(epochs)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            found[way] = json.loads(done.stdout.strip().splitlines()[-1])
        cells = " | ".join(f"{found[w]['peak_mib']:.0f} | {found[w]['seconds']:.1f}" for w in WAYS)
        ratio = found["streamed"]["peak_mib"] / found["materialised"]["peak_mib"]
        print(f"| {epochs} | {cells} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
