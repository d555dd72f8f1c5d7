"""A tiny model in a real MLflow registry: what server tests serve (the ``registry`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from configs.schema import CLASS_NAMES_DEFAULT

CLASSES = list(CLASS_NAMES_DEFAULT)
MODEL = "stj-classifier"


@dataclass
class Registry:
    """A session's MLflow store holding the tiny model; ``overrides`` point a config at it."""

    root: Path
    uri: str
    overrides: list[str]

    def register(self, seed: int, image_size: int = 32) -> str:
        """Log and register another version of the tiny model (head weights from ``seed``, input
        ``image_size`` px); returns it."""
        import mlflow
        from mlflow import MlflowClient

        from core.logged_model import EmbedderRecord, log_classifier, log_embedder
        from core.model import build_classifier, build_frozen, build_head
        from core.runtime.openvino import convert_to_openvino, save_ir
        from core.runtime.spec import RuntimeSpec

        mlflow.set_tracking_uri(self.uri)
        if MlflowClient(self.uri).get_experiment_by_name("stj-serve-test") is None:
            MlflowClient(self.uri).create_experiment("stj-serve-test", (self.root / "mlartifacts").as_uri())
        mlflow.set_experiment("stj-serve-test")
        embedder = build_frozen("efficientnet_lite0", image_size, seed=0)[1]  # small: many reloads in a test
        features = np.random.default_rng(seed).normal(size=(8, 1280)).astype("float32")
        model = build_classifier(embedder, build_head(len(CLASSES), (16, 8), (0.3, 0.2), features))
        with mlflow.start_run():
            mlflow.log_artifact(str(self.root / "split.csv"))  # its canary photos, as a training run logs them
            log_classifier(model, CLASSES, image_size, registered_name=MODEL)
            xml = self.root / f"embedder-{seed}-{image_size}" / "embedder.xml"
            save_ir(convert_to_openvino(embedder), xml)  # as training logs it: the server runs this IR
            log_embedder(xml, EmbedderRecord(RuntimeSpec("openvino", "f32"), "f32", xml.name))
        mlflow.set_tracking_uri(None)
        return str(max(int(v.version) for v in MlflowClient(self.uri).search_model_versions(f"name = '{MODEL}'")))

    def break_version(self, version: str) -> None:
        """Remove a registered version's files, so that loading it fails."""
        import shutil
        from urllib.parse import urlparse

        import mlflow
        from mlflow import MlflowClient

        source = MlflowClient(self.uri).get_model_version(MODEL, version).source  # models:/<model id>
        mlflow.set_tracking_uri(self.uri)
        location = mlflow.get_logged_model(source.removeprefix("models:/")).artifact_location
        mlflow.set_tracking_uri(None)
        shutil.rmtree(urlparse(location).path)

    def point_alias(self, version: str) -> None:
        """Move ``champion`` to ``version``."""
        from mlflow import MlflowClient

        MlflowClient(self.uri).set_registered_model_alias(MODEL, "champion", version)


def _photos(root: Path) -> None:
    """Four photos per class under ``root``/data and ``root``/split.csv listing them as test photos: what the
    infra check sends to a version of the tiny model."""
    from PIL import Image

    rows = ["path,class,split"]
    for index, name in enumerate(CLASSES):
        folder = root / "data" / "raw" / name
        folder.mkdir(parents=True)
        for n in range(4):
            Image.new("RGB", (48, 48), (60 * index + 10 * n, 80, 200 - 40 * index)).save(folder / f"{n}.jpg")
            rows.append(f"raw/{name}/{n}.jpg,{name},test")
    (root / "split.csv").write_text("\n".join(rows) + "\n")


def make_registry(root: Path) -> Registry:
    """A real MLflow store under ``root`` with version 1 of the tiny model at ``champion``; each version's run
    logs a split of twelve photos under ``root``/data (``project.data_dir``)."""
    _photos(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    overrides = [
        f"project.data_dir={root / 'data'}",
        f"tracking.uri={uri}",
        f"tracking.artifact_dir={root / 'mlartifacts'}",
        "tracking.imagenet_model=",
        "serve.runtime=tensorflow",
        f"serve.database_url=sqlite:///{root / 'history.db'}",
    ]
    registry = Registry(root, uri, overrides)
    registry.point_alias(registry.register(seed=1))
    return registry
