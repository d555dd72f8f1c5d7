"""Which precision the model runs in: the fastest measured here that keeps validation accuracy within
``train.precision_tolerance`` of f32.

The head is trained on the primary precision's features (the fastest measured, ``training.embedding.features``);
here the same head is scored on the validation split as each precision no slower than f32 computes it,
and the fastest precision whose accuracy is at least f32's minus the tolerance is chosen. The test split
is scored in every precision checked too, so a run records what int8 (say) costs
(``test_accuracy_<precision>``), and the test metrics the gate sees are the chosen precision's, on the whole
test split: what the server will compute.

Cost: the comparison embeds a stratified sample of at most :data:`SAMPLE_CAP` validation and test photos
per precision checked (all of them in a small run), so it costs minutes whatever N; only when the chosen
precision is not the one the features were computed in is the whole test split embedded in it (0.2 N).

Config keys: ``train.precision``, ``train.precision_tolerance``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from core.runtime import RuntimeSpec, TensorFlowRuntime
from training.embedding.features import Features


@dataclass(frozen=True)
class PrecisionChoice:
    """The precisions checked (fastest first), their speed and accuracy, and the one chosen."""

    chosen: RuntimeSpec
    speeds: dict[str, float]  # images/s measured on this CPU
    val_accuracy: dict[str, float]  # on the validation sample, per precision checked
    test_accuracy: dict[str, float]  # on the test sample, per precision checked
    test_probs: np.ndarray  # the whole test split's probabilities in the chosen precision
    tolerance: float
    sample: dict[str, int]  # photos of each split compared

    def summary(self) -> dict:
        """A JSON-ready record of the decision."""
        return {
            "chosen": self.chosen.name,
            "tolerance": self.tolerance,
            "images_per_second": {p: round(s, 1) for p, s in self.speeds.items()},
            "val_accuracy": self.val_accuracy,
            "compared_photos": self.sample,
        }


SAMPLE_CAP = 2000


def stratified_sample(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Row indices, sorted: every row if there are at most ``cap``, else at most ``cap`` of them with each
    class's share kept (rounded down, at least one row), drawn by ``seed``. O(n)."""
    if len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        take = max(1, len(rows) * cap // len(labels))
        chosen.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(chosen))


def _accuracy(score: TensorFlowRuntime, features: np.ndarray, labels: np.ndarray) -> float:
    return float((score(features).argmax(axis=1) == labels).mean())


def choose_precision(features: Features, head: keras.Model, tolerance: float, fixed: bool) -> PrecisionChoice:
    """Score ``head`` on the validation and test splits in each candidate precision and choose one.

    Args:
        features: the split's features (primary precision) and the frozen base with its runtimes.
        head: the trained head.
        tolerance: validation accuracy a precision may lose against f32 and still be chosen (at least one
            validation photo's worth).
        fixed: ``train.precision`` named one precision: check only that one (and f32 for comparison).
    """
    base = features.base
    if fixed:  # the named precision however fast it measured, and f32 for comparison
        candidates = list(dict.fromkeys([base.primary, RuntimeSpec(base.primary.backend, "f32")]))
    else:
        candidates = base.candidates()
    val_y, test_y = features.part("val")[1], features.part("test")[1]
    val_rows, test_rows = stratified_sample(val_y, SAMPLE_CAP, seed=0), stratified_sample(test_y, SAMPLE_CAP, seed=1)
    # the head under one traced function, not Model.predict (a tf.data pipeline per call, a C++ error line, a bar)
    score = TensorFlowRuntime(head)
    val_accuracy, test_accuracy = {}, {}
    for spec in candidates:
        val_accuracy[spec.precision] = _accuracy(
            score, features.vectors_for(spec, "val", rows=val_rows), val_y[val_rows]
        )
        test_accuracy[spec.precision] = _accuracy(
            score, features.vectors_for(spec, "test", rows=test_rows), test_y[test_rows]
        )
    reference = val_accuracy["f32"]  # every candidate list holds f32, the reference
    # On a small validation split one photo is more than the tolerance; a single flip is not a finding.
    allowed = max(tolerance, 1 / max(1, len(val_rows)))
    passing = [c for c in candidates if val_accuracy[c.precision] >= reference - allowed - 1e-9]
    chosen = base.primary if fixed else passing[0]  # f32 always passes: never empty
    return PrecisionChoice(
        chosen=chosen,
        speeds=dict(base.speeds),
        val_accuracy=val_accuracy,
        test_accuracy=test_accuracy,
        test_probs=score(features.vectors_for(chosen, "test")),  # cached already when it was the sample
        tolerance=tolerance,
        sample={"val": len(val_rows), "test": len(test_rows)},
    )
