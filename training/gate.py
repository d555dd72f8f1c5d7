"""The quality gate: a new model version becomes ``champion`` only if it is at least as good.

Promote when test macro-F1 >= the current champion's + ``tracking.gate_margin`` and >= ``tracking.gate_floor``;
otherwise the version is registered but tagged ``rejected`` with the reason, and the alias stays put.

Config keys: ``tracking.gate_margin``, ``tracking.gate_floor``, ``tracking.model_name``, ``tracking.alias``.
"""

from __future__ import annotations

from dataclasses import dataclass

GATE_METRIC = "test_macro_f1"


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, and why."""

    promote: bool
    reason: str


def decide(candidate: float, champion: float | None, margin: float, floor: float) -> GateDecision:
    """Compare a candidate's macro-F1 with the champion's (``None``: there is no champion yet)."""
    if candidate < floor:
        return GateDecision(False, f"{GATE_METRIC} {candidate:.4f} is below the floor {floor:.4f}")
    if champion is None:
        return GateDecision(True, f"first model: {GATE_METRIC} {candidate:.4f} >= floor {floor:.4f}")
    if candidate < champion + margin:
        return GateDecision(False, f"{GATE_METRIC} {candidate:.4f} < champion {champion:.4f} + margin {margin:.4f}")
    return GateDecision(True, f"{GATE_METRIC} {candidate:.4f} >= champion {champion:.4f} + margin {margin:.4f}")
