"""Which precision the model runs in: the fastest measured here that keeps validation accuracy within
``train.precision_tolerance`` of f32.

The head is trained on the primary precision's features (the fastest measured, ``training.features``);
here the same head is scored on the validation split as each precision no slower than f32 computes it,
and the fastest precision whose accuracy is at least f32's minus the tolerance is chosen. The test split
is scored in every precision checked too, so a run records what int8 (say) costs
(``test_accuracy_<precision>``), and the test metrics the gate sees are the chosen precision's: what the
server will compute.

Config keys: ``train.precision``, ``train.precision_tolerance``.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from core.runtime import RuntimeSpec, TensorFlowRuntime
from training.features import Features


@dataclass(frozen=True)
class PrecisionChoice:
    """The precisions checked (fastest first), their speed and accuracy, and the one chosen."""

    chosen: RuntimeSpec
    speeds: dict[str, float]  # images/s measured on this CPU
    val_accuracy: dict[str, float]
    test_probs: dict[str, np.ndarray]  # test-split probabilities in each precision checked
    tolerance: float

    def summary(self) -> dict:
        """A JSON-ready record of the decision."""
        return {
            "chosen": self.chosen.name,
            "tolerance": self.tolerance,
            "images_per_second": {p: round(s, 1) for p, s in self.speeds.items()},
            "val_accuracy": self.val_accuracy,
        }


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
    val_y = features.part("val")[1]
    # the head under one traced function, not Model.predict (a tf.data pipeline per call, a C++ error line, a bar)
    score = TensorFlowRuntime(head)
    val_accuracy, test_probs = {}, {}
    for spec in candidates:
        val_accuracy[spec.precision] = _accuracy(score, features.vectors_for(spec, "val"), val_y)
        test_probs[spec.precision] = score(features.vectors_for(spec, "test"))
    reference = val_accuracy["f32"]  # every candidate list holds f32, the reference
    # On a small validation split one photo is more than the tolerance; a single flip is not a finding.
    allowed = max(tolerance, 1 / max(1, len(val_y)))
    passing = [c for c in candidates if val_accuracy[c.precision] >= reference - allowed - 1e-9]
    chosen = base.primary if fixed else passing[0]  # f32 always passes: never empty
    return PrecisionChoice(
        chosen=chosen, speeds=dict(base.speeds), val_accuracy=val_accuracy, test_probs=test_probs, tolerance=tolerance
    )
