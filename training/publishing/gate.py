"""The quality gate (TFX Evaluator-style blessing): a new model version becomes ``champion`` only if it is at
least as good as the champion **on the same photos**.

Both models are scored on the candidate's test split by the code path the server uses
(:mod:`training.evaluation.rescore`). Promote when the candidate's macro-F1 > the champion's + ``tracking.gate_margin``,
>= ``tracking.gate_floor``, and no class's F1 falls more than ``tracking.gate_class_tolerance`` below the
champion's. A champion that cannot be scored blocks promotion, saying why. Otherwise the version is registered
but tagged ``rejected`` with the reason, and the alias stays put.

Config keys: ``tracking.gate_margin``, ``tracking.gate_floor``, ``tracking.gate_class_tolerance``,
``tracking.model_name``, ``tracking.alias``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GATE_METRIC = "test_macro_f1"


@dataclass(frozen=True)
class Scores:
    """A model's scores on one test split: macro-F1 and each class's F1."""

    macro_f1: float
    class_f1: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why."""

    promote: bool
    reason: str


def decide(
    candidate: Scores, champion: Scores | None, margin: float, floor: float, class_tolerance: float = 1.0
) -> GateDecision:
    """Compare a candidate with the champion on the same photos (``None``: there is no champion yet)."""
    if candidate.macro_f1 < floor:
        return GateDecision(False, f"{GATE_METRIC} {candidate.macro_f1:.4f} is below the floor {floor:.4f}")
    if champion is None:
        return GateDecision(True, f"first model: {GATE_METRIC} {candidate.macro_f1:.4f} >= floor {floor:.4f}")
    if not candidate.macro_f1 > champion.macro_f1 + margin:  # a tie moves the alias (and reloads) for nothing
        return GateDecision(
            False,
            f"{GATE_METRIC} {candidate.macro_f1:.4f} is not above champion {champion.macro_f1:.4f} + margin {margin:.4f}",
        )
    drops = {
        name: champion.class_f1[name] - f1
        for name, f1 in candidate.class_f1.items()
        if name in champion.class_f1 and champion.class_f1[name] - f1 > class_tolerance + 1e-12
    }
    if drops:
        worst = max(drops, key=drops.__getitem__)
        return GateDecision(
            False,
            f"{worst} F1 {candidate.class_f1[worst]:.4f} is {drops[worst]:.4f} below the champion's "
            f"{champion.class_f1[worst]:.4f} (tolerance {class_tolerance:.4f})",
        )
    return GateDecision(
        True, f"{GATE_METRIC} {candidate.macro_f1:.4f} > champion {champion.macro_f1:.4f} + margin {margin:.4f}"
    )
