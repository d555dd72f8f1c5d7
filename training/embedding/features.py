"""The frozen base and the features it gives each photo of the split, cached on disk.

With the base frozen (BatchNorm in inference mode), an image's pooled features are a fixed function of the
image: they are computed once per (base, runtime) and cached by the image's sha256; the head trains on them.

Config keys: ``train.backbone``, ``train.weights``, ``train.weights_fallback``, ``train.image_size``,
``train.runtime``, ``train.precision``, ``train.int8_calibration_images``, ``train.embed_batch_size``,
``project.seed``, ``project.data_dir``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from configs.files import atomic_write_text
from configs.schema import Config
from core.model import Backbone, build_frozen, get_backbone, weights_fingerprint
from core.model.weights import WeightsChoice
from core.model_input import load_images
from core.runtime import RuntimeSpec, make_runtime, resolve_backend
from core.runtime.cpu import cpu_model, float_precisions
from core.runtime.int8 import int8_files, int8_runtime
from core.runtime.measure import throughput
from core.runtime.spec import Runtime
from training.embedding.embed import cache_key, embed_files
from training.embedding.store import EmbeddingStore
from training.splitting.split import read_split

PARTS = ("train", "val", "test")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FrozenBase:
    """The frozen network whose outputs are cached, and how it runs on this machine.

    ``primary`` is the runtime that embeds every photo: a fixed ``train.precision``, or under ``auto`` the
    fastest one measured here; ``training.embedding.precision`` then checks the others' accuracy on the validation
    split. ``speeds`` are images/s per precision, measured once per base and CPU.
    """

    backbone: Backbone
    weights: WeightsChoice
    base: keras.Model
    embedder: keras.Model
    weights_fp: str  # fingerprint of the base's exact weights
    folder: Path  # converted and quantised bases live here, next to the embeddings
    primary: RuntimeSpec
    speeds: dict[str, float] = field(default_factory=dict)
    int8: dict | None = None  # the int8 calibration record, when int8 was tried
    calibrated: Runtime | None = None  # the int8 runtime, when it was accepted
    _runtimes: dict[str, Runtime] = field(default_factory=dict, repr=False, compare=False)

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

    @property
    def float_hint(self) -> str:
        """The float precision measured fastest here (what int8's float layers run in)."""
        floats = {p: s for p, s in self.speeds.items() if p != "int8"}
        return max(floats, key=floats.__getitem__) if floats else "f32"

    def candidates(self) -> list[RuntimeSpec]:
        """The precisions worth checking, fastest first: those measured no slower than f32 (f32 included)."""
        if self.primary.backend == "tensorflow" or not self.speeds:
            return [self.primary]
        ranked = sorted(self.speeds, key=self.speeds.__getitem__, reverse=True)
        return [RuntimeSpec("openvino", p) for p in ranked if self.speeds[p] >= self.speeds["f32"]]  # type: ignore[arg-type]

    def ir_file(self, spec: RuntimeSpec | None = None) -> Path:
        """The OpenVINO model that runs ``spec`` (default: FP32): the int8 one, or the converted FP32 one."""
        if spec is not None and spec.is_int8:
            return int8_files(self.folder, self.key)[1]
        return self.folder / f"{self.key}.xml"

    def runtime(self, spec: RuntimeSpec | None = None) -> Runtime:
        """The runtime of ``spec`` (default: the primary one), built on first use."""
        spec = spec or self.primary
        if spec.name not in self._runtimes:
            if spec.is_int8:
                if self.calibrated is None:
                    raise ValueError("int8 was not calibrated for this base")
                self._runtimes[spec.name] = self.calibrated
            else:
                self._runtimes[spec.name] = make_runtime(self.embedder, spec, self.ir_file())
        return self._runtimes[spec.name]

    def store(self, spec: RuntimeSpec | None = None) -> EmbeddingStore:
        """The embedding store of ``spec``'s features (default: the primary runtime's)."""
        return EmbeddingStore(self.folder, self.embedding_key(spec))

    def embedding_key(self, spec: RuntimeSpec | None = None) -> str:
        """The embedding store's key: the base, plus the runtime and int8 calibration that computed it."""
        spec = spec or self.primary
        calibration = self.int8["calibration"] if spec.is_int8 and self.int8 else ""
        return cache_key(
            backbone=self.backbone.name,
            weights_fp=self.weights_fp,
            image_size=self.image_size,
            preprocess=f"{self.backbone.preprocessing}|{spec.name}|calibration={calibration}",
        )


def build_base(config: Config) -> FrozenBase:
    """Resolve the weights and build the frozen base; until :func:`prepare_runtimes`, it runs in f32."""
    tc = config.train
    backbone = get_backbone(tc.backbone)
    weights = backbone.resolve_weights(tc.weights, tc.weights_fallback)
    base, embedder = build_frozen(backbone, tc.image_size, weights, config.project.seed)
    return FrozenBase(
        backbone=backbone,
        weights=weights,
        base=base,
        embedder=embedder,
        weights_fp=weights_fingerprint(base),
        folder=Path(config.project.data_dir) / "embeddings",
        primary=RuntimeSpec(resolve_backend(tc.runtime), "f32"),
    )


def _sample_pixels(frozen: FrozenBase, split: pd.DataFrame, config: Config) -> np.ndarray:
    """Twice ``train.int8_calibration_images`` training photos, lowest sha256 first (a reproducible choice)."""
    n, data_dir = config.train.int8_calibration_images, Path(config.project.data_dir)
    train_paths = [data_dir / p for p in split[split["split"] == "train"].sort_values("sha256")["path"]]
    return load_images(train_paths[: 2 * n], frozen.image_size)


def measured_speeds(
    frozen: FrozenBase, specs: dict[str, RuntimeSpec], pixels: Callable[[], np.ndarray], batch: int
) -> dict[str, float]:
    """Images/s of each precision on this CPU, measured once per base and CPU and kept beside the cache (a
    file per CPU model: machines sharing the data folder each keep their own)."""
    cpu_tag = hashlib.sha256(cpu_model().encode()).hexdigest()[:8]
    record_file = frozen.folder / f"{frozen.key}-speeds-{cpu_tag}.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    if record.get("cpu") != cpu_model() or record.get("batch") != batch:
        record = {"cpu": cpu_model(), "batch": batch, "img_s": {}}
    missing = [p for p in specs if p not in record["img_s"]]
    for precision in missing:
        record["img_s"][precision] = throughput(frozen.runtime(specs[precision]), pixels(), batch)
    if missing:
        atomic_write_text(record_file, json.dumps(record, indent=2))
    return {p: record["img_s"][p] for p in specs}


def prepare_runtimes(frozen: FrozenBase, split: pd.DataFrame, config: Config) -> FrozenBase:
    """For OpenVINO: measure each float precision's speed here, calibrate int8 (once per base: on the first
    half of the sample, checked on the second) and measure it, then pick the primary precision."""
    tc = config.train
    if frozen.primary.backend == "tensorflow":
        return frozen
    pixels = functools.cache(lambda: _sample_pixels(frozen, split, config))
    batch = tc.embed_batch_size
    floats = {p: RuntimeSpec("openvino", p) for p in float_precisions()}  # type: ignore[misc]
    frozen = dataclasses.replace(frozen, speeds=measured_speeds(frozen, floats, pixels, batch))
    if tc.precision in ("auto", "int8"):
        n = tc.int8_calibration_images

        def halves() -> tuple[np.ndarray, np.ndarray]:
            half = min(n, len(pixels()) // 2)
            return pixels()[:half], pixels()[half:]

        calibrated, record = int8_runtime(
            model=frozen.embedder,
            folder=frozen.folder,
            key=frozen.key,
            images=halves,
            hint=frozen.float_hint,
            thorough=frozen.backbone.int8_thorough,
        )
        frozen = dataclasses.replace(frozen, int8=record, calibrated=calibrated)
        if calibrated is not None:
            int8 = measured_speeds(frozen, {"int8": RuntimeSpec("openvino", "int8")}, pixels, batch)
            frozen = dataclasses.replace(frozen, speeds={**frozen.speeds, **int8})
    wanted = tc.precision if tc.precision != "auto" else max(frozen.speeds, key=frozen.speeds.__getitem__)
    if wanted not in frozen.speeds:  # int8 refused, or no bf16 on this CPU
        log.warning("precision %s cannot run here: using %s, the fastest measured", wanted, frozen.float_hint)
        wanted = frozen.float_hint
    log.info("img/s measured on this CPU: %s; embedding in %s", {p: round(v) for p, v in frozen.speeds.items()}, wanted)
    return dataclasses.replace(frozen, primary=RuntimeSpec("openvino", wanted))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Features:
    """The split with every photo's cached features and the frozen base that produced them."""

    split: pd.DataFrame
    labels: np.ndarray
    paths: list[Path]
    vectors: np.ndarray
    base: FrozenBase
    embedded: int  # photos embedded by this call (not found in the cache)
    embed_seconds: float  # includes a first run's speed measurement and int8 calibration
    batch_size: int = 16

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

    def vectors_for(
        self, spec: RuntimeSpec, name: str, show_progress: bool = False, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Features of part ``name`` (only its ``rows``, if given) as ``spec`` computes them (the primary's are
        :attr:`vectors`), cached."""
        if spec == self.base.primary:
            vectors = self.part(name)[0]
            return vectors if rows is None else vectors[rows]
        mask = self.mask(name)
        paths = [p for p, m in zip(self.paths, mask, strict=True) if m]
        shas = list(self.split["sha256"][mask])
        if rows is not None:
            paths, shas = [paths[i] for i in rows], [shas[i] for i in rows]
        vectors, _ = embed_files(
            runtime=self.base.runtime(spec),
            paths=paths,
            shas=shas,
            store=self.base.store(spec),
            image_size=self.base.image_size,
            batch_size=self.batch_size,
            show_progress=show_progress,
        )
        return vectors

    def count(self, name: str) -> int:
        """Photos in ``train``, ``val`` or ``test``."""
        return int(self.mask(name).sum())


def read_class_split(config: Config, split_file: Path) -> pd.DataFrame:
    """The split file's rows of the configured classes."""
    split = read_split(split_file)
    return split[split["class"].isin(config.class_names)].reset_index(drop=True)


def load_features(config: Config, split_file: Path, show_progress: bool = True) -> Features:
    """Build the frozen base and embed every photo of the split (only those missing from the cache)."""
    tc, data_dir = config.train, Path(config.project.data_dir)
    split = read_class_split(config, split_file)
    paths = [data_dir / p for p in split["path"]]
    shas = list(split["sha256"])
    base = build_base(config)
    started = time.monotonic()  # embedding time includes a first run's measurement and int8 calibration
    base = prepare_runtimes(base, split, config)
    vectors, embedded = embed_files(
        runtime=base.runtime(),
        paths=paths,
        shas=shas,
        store=base.store(),
        image_size=tc.image_size,
        batch_size=tc.embed_batch_size,
        show_progress=show_progress,
    )
    return Features(
        split=split,
        labels=split["class"].map({c: i for i, c in enumerate(config.class_names)}).to_numpy(),
        paths=paths,
        vectors=vectors,
        base=base,
        embedded=embedded,
        embed_seconds=time.monotonic() - started,
        batch_size=tc.embed_batch_size,
    )
