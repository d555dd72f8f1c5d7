""" "None of these": how unlike the training photos a photo is, from the model's own embedding.

The score is the cosine distance from a photo's pooled features to its k-th nearest neighbour among a
reference sample of the training photos' features (deep nearest neighbours, Sun et al. 2022: no assumption
about the shape of each class, unlike a centroid or a Gaussian). The threshold is a percentile of the
validation photos' scores (99th by default): a photo scoring above it is "not in distribution", so about
1 % of in-distribution photos are flagged by construction.

The index is logged with the model (``ood/index.npz`` in its run, float16: ``reference`` × features × 2
bytes, ~7.5 MB for 3 000 × 1 280) and read back by the server. Scoring a batch of B photos costs
O(B × reference × features) (one matrix product; ~4 MFLOP a photo for 3 000 × 1 280).

Config keys: none here (training's ``training.evaluation.ood`` reads ``ood.*``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

INDEX_ARTIFACT = "ood/index.npz"


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32): the score, and the monitor's drift, are judged on directions."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class OodIndex:
    """Reference features (unit length, float16), the neighbour rank ``k`` and the calibrated threshold."""

    reference: np.ndarray
    k: int
    threshold: float = float("inf")
    percentile: float = 99.0
    _reference32: np.ndarray = field(init=False, repr=False, compare=False)  # widened once, not per call

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reference32", np.asarray(self.reference, np.float32))

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Each row's cosine distance to its ``k``-th nearest reference vector (0: identical; up to 2)."""
        similarity = unit_rows(features) @ self._reference32.T
        k = min(self.k, similarity.shape[1])
        kth = np.partition(similarity, similarity.shape[1] - k, axis=1)[:, similarity.shape[1] - k]
        return (1.0 - kth).astype(np.float32)

    def in_distribution(self, scores: np.ndarray) -> np.ndarray:
        """Which scores are within the threshold."""
        return np.asarray(scores) <= self.threshold

    def calibrated(self, features: np.ndarray, percentile: float) -> OodIndex:
        """This index with its threshold at ``percentile`` of these (in-distribution, held-out) features'
        scores."""
        threshold = float(np.percentile(self.scores(features), percentile))
        return OodIndex(self.reference, self.k, threshold, percentile)

    def to_bytes(self) -> bytes:
        """The index as an ``.npz`` file's bytes."""
        buffer = io.BytesIO()
        np.savez(
            buffer,
            reference=self.reference,
            k=self.k,
            threshold=self.threshold,
            percentile=self.percentile,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> OodIndex:
        """An index read back from :meth:`to_bytes`."""
        with np.load(io.BytesIO(data)) as npz:
            return cls(npz["reference"], int(npz["k"]), float(npz["threshold"]), float(npz["percentile"]))


def reference_rows(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to ``per_class`` rows of each class, drawn with ``seed``, in row order: every class keeps its share
    even when the classes are unbalanced. O(N)."""
    rng = np.random.default_rng(seed)
    rows = [
        rng.choice(members, min(per_class, len(members)), replace=False)
        for members in (np.flatnonzero(labels == label) for label in np.unique(labels))
    ]
    return np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)


def index_from(reference: np.ndarray, k: int) -> OodIndex:
    """An uncalibrated index on these reference features (stored unit-length, float16)."""
    return OodIndex(unit_rows(reference).astype(np.float16), k)
