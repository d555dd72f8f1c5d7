"""The frozen base and the features it gives each photo of the split, cached on disk.

With the base frozen (BatchNorm in inference mode), an image's pooled features are a fixed function of the
image: they are computed once per (base, runtime) and cached by the image's sha256; the head trains on them.

Config keys: ``train.backbone``, ``train.weights``, ``train.weights_fallback``, ``train.image_size``,
``train.runtime``, ``train.precision``, ``train.int8_calibration_images``, ``train.embed_batch_size``,
``project.seed``, ``project.data_dir``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from configs.schema import Config
from core.model import Backbone, build_frozen, get_backbone, weights_fingerprint
from core.model.weights import WeightsChoice
from core.model_input import load_images
from core.runtime import RuntimeSpec, float_fallback, make_runtime, resolve_runtime
from core.runtime.int8 import int8_files, int8_runtime
from core.runtime.spec import Runtime
from training.embed import EmbeddingCache, cache_key, embed_files
from training.split import read_split

PARTS = ("train", "val", "test")


@dataclass(frozen=True)
class FrozenBase:
    """The frozen network whose outputs are cached, with the runtime resolved once for the run."""

    backbone: Backbone
    weights: WeightsChoice
    base: keras.Model
    embedder: keras.Model
    spec: RuntimeSpec
    weights_fp: str  # fingerprint of the base's exact weights
    folder: Path  # converted and quantised bases live here, next to the embeddings
    int8: dict | None = None  # the int8 calibration record, when int8 was tried
    calibrated: Runtime | None = None  # the int8 runtime, when it was accepted

    @property
    def key(self) -> str:
        """The base's identity: backbone, exact weights, image size, preprocessing."""
        return cache_key(
            backbone=self.backbone.name,
            weights_fp=self.weights_fp,
            image_size=self.image_size,
            preprocess=self.backbone.preprocessing,
        )

    @property
    def image_size(self) -> int:
        """The side of the square input images."""
        return int(self.embedder.input_shape[1])

    @cached_property
    def runtime(self) -> Runtime:
        """The embedding runtime, built on first use (a warm cache never needs it for embedding)."""
        return self.calibrated or make_runtime(self.embedder, self.spec, self.ir_file)

    @property
    def ir_file(self) -> Path:
        """The embedder converted for OpenVINO (FP32), kept for the next run."""
        return self.folder / f"{self.key}.xml"

    @property
    def run_ir_file(self) -> Path:
        """The IR this run embeds with: the int8 one when int8 runs, else the FP32 one."""
        return int8_files(self.folder, self.key)[1] if self.spec.is_int8 else self.ir_file

    @property
    def embedding_key(self) -> str:
        """The embedding cache file's key: the base, plus the runtime and int8 calibration that computed it."""
        calibration = self.int8["calibration"] if self.spec.is_int8 and self.int8 else ""
        return cache_key(
            backbone=self.backbone.name,
            weights_fp=self.weights_fp,
            image_size=self.image_size,
            preprocess=f"{self.backbone.preprocessing}|{self.spec.name}|calibration={calibration}",
        )


def prepare_base(config: Config) -> FrozenBase:
    """Resolve weights and runtime and build the frozen base (int8 is calibrated by :func:`calibrate_int8`)."""
    tc = config.train
    backbone = get_backbone(tc.backbone)
    weights = backbone.resolve_weights(tc.weights, tc.weights_fallback)
    base, embedder = build_frozen(backbone, tc.image_size, weights, config.project.seed)
    return FrozenBase(
        backbone=backbone,
        weights=weights,
        base=base,
        embedder=embedder,
        spec=resolve_runtime(tc.runtime, tc.precision),  # asks OpenVINO about the CPU: once per run
        weights_fp=weights_fingerprint(base),
        folder=Path(config.project.data_dir) / "embeddings",
    )


def calibrate_int8(frozen: FrozenBase, split: pd.DataFrame, config: Config) -> FrozenBase:
    """For an int8 runtime, the base calibrated once (or its recorded refusal, then a float precision)."""
    if not frozen.spec.is_int8:
        return frozen
    # Calibrate on the lowest-sha256 training photos (a reproducible choice) and check on the next ones.
    n, data_dir = config.train.int8_calibration_images, Path(config.project.data_dir)
    train_paths = [data_dir / p for p in split[split["split"] == "train"].sort_values("sha256")["path"]]

    def images() -> tuple[np.ndarray, np.ndarray]:
        pixels = load_images(train_paths[: 2 * n], frozen.image_size)
        half = min(n, len(pixels) // 2)
        return pixels[:half], pixels[half:]

    calibrated, record = int8_runtime(frozen.embedder, frozen.folder, frozen.key, images)
    spec = frozen.spec if calibrated is not None else float_fallback(frozen.spec)
    return dataclasses.replace(frozen, spec=spec, int8=record, calibrated=calibrated)


@dataclass(frozen=True)
class Features:
    """The split with every photo's cached features and the frozen base that produced them."""

    split: pd.DataFrame
    labels: np.ndarray
    paths: list[Path]
    vectors: np.ndarray
    base: FrozenBase
    embedded: int  # photos embedded by this call (not found in the cache)
    embed_seconds: float  # includes a first run's int8 calibration

    def mask(self, name: str) -> np.ndarray:
        """Which rows are in ``train``, ``val`` or ``test``."""
        return (self.split["split"] == name).to_numpy()

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, labels) of ``train``, ``val`` or ``test``."""
        mask = self.mask(name)
        return self.vectors[mask], self.labels[mask]

    def part_paths(self, name: str) -> list[Path]:
        """The files of ``train``, ``val`` or ``test``, in split order."""
        return [p for p, m in zip(self.paths, self.mask(name), strict=True) if m]

    def count(self, name: str) -> int:
        """Photos in ``train``, ``val`` or ``test``."""
        return int(self.mask(name).sum())


def load_features(config: Config, split_file: Path, show_progress: bool = True) -> Features:
    """Build the frozen base and embed every photo of the split (only those missing from the cache)."""
    tc, data_dir = config.train, Path(config.project.data_dir)
    split = read_split(split_file)
    split = split[split["class"].isin(config.class_names)].reset_index(drop=True)
    paths = [data_dir / p for p in split["path"]]
    shas = list(split["sha256"])
    base = prepare_base(config)
    started = time.monotonic()  # embedding time includes a first run's int8 calibration, as before
    base = calibrate_int8(base, split, config)
    cache = EmbeddingCache(base.folder, base.embedding_key)
    if cache.missing(shas):
        vectors, embedded = embed_files(
            runtime=base.runtime,
            paths=paths,
            shas=shas,
            cache=cache,
            image_size=tc.image_size,
            batch_size=tc.embed_batch_size,
            show_progress=show_progress,
        )
    else:
        vectors, embedded = cache.lookup(shas), 0
    return Features(
        split=split,
        labels=split["class"].map({c: i for i, c in enumerate(config.class_names)}).to_numpy(),
        paths=paths,
        vectors=vectors,
        base=base,
        embedded=embedded,
        embed_seconds=time.monotonic() - started,
    )
