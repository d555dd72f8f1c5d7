"""Build a candidate's "none of these" index and measure it honestly.

The index (``core.ood``) takes a per-class sample of the training photos' features as its reference and
its threshold from the validation photos'; it is then judged on photos it never saw: the test split (the
share kept as in-distribution, goal >= 95 %) and the probe set of non-garment photos
(``training.evaluation.ood_probe``; the share flagged, goal >= 90 %), overall and per kind. All features are
the served embedder's (the precision training chose), so the server computes the same scores.

Cost: the reference rows' features (at most ``ood.reference_per_class`` per class, from the embedding store),
the validation and test features (cached, unless the precision training chose is not the one that embedded
the data set: then the validation split is embedded in it once more), ~140 probe photos embedded; scoring
O((val + test + probe) x reference x features).

Config keys: ``ood.reference_per_class``, ``ood.k``, ``ood.percentile``, ``project.seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from configs.schema import OodConfig
from core.model_input import decode_image
from core.ood import OodIndex, index_from, reference_rows, unit_rows
from core.traffic_baseline import MAX_FEATURE_ROWS, TrafficBaseline
from training.evaluation.ood_probe import probe_photos

BATCH = 16


@dataclass(frozen=True)
class OodEvaluation:
    """The calibrated index and how it did: test photos kept, probe photos flagged (overall and per kind)."""

    index: OodIndex
    test_kept: float
    probe_flagged: float
    probe_photos: int
    flagged_by_kind: dict[str, float]

    def metrics(self) -> dict[str, float]:
        """The run's metrics."""
        return {
            "ood_threshold": round(self.index.threshold, 6),
            "ood_test_kept": round(self.test_kept, 4),
            "ood_probe_flagged": round(self.probe_flagged, 4),
            "ood_probe_photos": self.probe_photos,
            "ood_reference_photos": len(self.index.reference),
        }

    def summary(self) -> dict:
        """``ood/evaluation.json``: the figures and the per-kind flagged shares."""
        return {
            **self.metrics(),
            "k": self.index.k,
            "percentile": self.index.percentile,
            "flagged": self.flagged_by_kind,
        }


def build_and_evaluate(
    cfg: OodConfig,
    seed: int,
    train: tuple[Callable[[np.ndarray], np.ndarray], np.ndarray],
    val: np.ndarray,
    test: np.ndarray,
    embed: Callable[[np.ndarray], np.ndarray],
    image_size: int,
) -> OodEvaluation:
    """The index of a candidate and its evaluation.

    Args:
        cfg: the ``ood`` settings.
        seed: draws the reference sample.
        train: (features of given training rows, the training labels): only the sampled rows are read.
        val: the validation features (the threshold's).
        test: the test features.
        embed: model-input pixels -> the served embedder's features (the probe photos').
        image_size: the model's input size.
    """
    features_of, labels = train
    index = index_from(features_of(reference_rows(labels, cfg.reference_per_class, seed)), cfg.k)
    index = index.calibrated(val, cfg.percentile)
    kept = float(index.in_distribution(index.scores(test)).mean()) if len(test) else 0.0
    flagged_by_kind, flagged, total = {}, 0, 0
    for kind, photos in probe_photos().items():
        if not photos:
            continue
        pixels = np.stack([decode_image(data, image_size) for data in photos])
        features = np.concatenate([embed(pixels[i : i + BATCH]) for i in range(0, len(pixels), BATCH)])
        out = ~index.in_distribution(index.scores(features))
        flagged_by_kind[kind] = round(float(out.mean()), 4)
        flagged, total = flagged + int(out.sum()), total + len(out)
    return OodEvaluation(index, kept, flagged / total if total else 0.0, total, flagged_by_kind)


def traffic_baseline(
    index: OodIndex,
    class_names: list[str],
    test_probs: np.ndarray,
    test: np.ndarray,
    val: np.ndarray,
    seed: int,
) -> TrafficBaseline:
    """What ``stj monitor`` compares live traffic with (:mod:`core.traffic_baseline`): the test photos'
    predicted classes, confidences and scores, and up to ``MAX_FEATURE_ROWS`` feature rows drawn with
    ``seed`` from the test, validation and index reference rows. O(rows x features)."""
    features = np.concatenate([unit_rows(test), unit_rows(val), np.asarray(index.reference, np.float32)])
    if len(features) > MAX_FEATURE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(features), MAX_FEATURE_ROWS, replace=False))
        features = features[rows]
    return TrafficBaseline(
        class_names=list(class_names),
        labels=np.argmax(test_probs, axis=1),
        confidences=np.max(test_probs, axis=1),
        ood_scores=index.scores(test) if len(test) else np.zeros(0, np.float32),
        threshold=index.threshold,
        features=features,
    )
