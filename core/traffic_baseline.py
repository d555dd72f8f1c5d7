"""The traffic baseline: what the served model answers on photos like its training data, logged by training
beside the model (``monitor/baseline.npz``) and read by ``stj monitor`` to compare live traffic with.

It holds, for the run's test photos (never trained on): the predicted class, the top-1 confidence and the
"none of these" score as the server computes them (the chosen precision); and a sample of pooled features,
unit length, float16 (test, validation and the training rows of the "none of these" index: the embedder is
frozen, so all are photos of the served distribution). Size: ~2.6 KB a feature row for Lite0 (1 280
features), capped at ``MAX_FEATURE_ROWS`` rows: at most ~5 MB.

Written by training (``training.runs.track.log_ood`` through ``training.evaluation.ood.traffic_baseline``).

Config keys: none here.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException

BASELINE_ARTIFACT = "monitor/baseline.npz"
MAX_FEATURE_ROWS = 2000


@dataclass(frozen=True)
class TrafficBaseline:
    """Per test photo: predicted class index, confidence, "none of these" score; the index's threshold; a
    sample of unit-length features."""

    class_names: list[str]
    labels: np.ndarray
    confidences: np.ndarray
    ood_scores: np.ndarray
    threshold: float
    features: np.ndarray

    @property
    def in_distribution(self) -> np.ndarray:
        """Which test photos the index keeps."""
        return self.ood_scores <= self.threshold

    def to_bytes(self) -> bytes:
        """The baseline as an ``.npz`` file's bytes."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            class_names=np.array(self.class_names),
            labels=self.labels.astype(np.int16),
            confidences=self.confidences.astype(np.float32),
            ood_scores=self.ood_scores.astype(np.float32),
            threshold=self.threshold,
            features=self.features.astype(np.float16),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrafficBaseline:
        """A baseline read back from :meth:`to_bytes`."""
        with np.load(io.BytesIO(data)) as npz:
            return cls(
                [str(name) for name in npz["class_names"]],
                npz["labels"].astype(np.int64),
                npz["confidences"],
                npz["ood_scores"],
                float(npz["threshold"]),
                npz["features"],
            )


def read_baseline(run_id: str, tracking_uri: str) -> TrafficBaseline | None:
    """The baseline logged in run ``run_id``; None when it has none (a model trained before baselines were
    logged, the ImageNet model, a fine-tuned one)."""
    with tempfile.TemporaryDirectory(prefix="stj-baseline-") as folder:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=BASELINE_ARTIFACT, dst_path=folder, tracking_uri=tracking_uri
            )
        except (MlflowException, OSError):
            return None
        return TrafficBaseline.from_bytes(Path(local).read_bytes())
