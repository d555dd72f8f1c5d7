"""The infra check's comparison of a server's answer with the in-process scores (the check itself, with real
servers: tests/flows/test_tasks.py, tests/e2e/test_releases.py and the reference run)."""

from __future__ import annotations

import numpy as np

from serving.infra_check import largest_difference


def _rows(pairs):
    return [{"label": label, "probability": probability} for label, probability in pairs]


def test_probabilities_are_compared_class_by_class_even_when_two_classes_share_a_name() -> None:
    names, mine = ["crane", "heron", "crane"], np.array([0.5, 0.2, 0.3])  # ImageNet has two cranes
    assert largest_difference(_rows([("crane", 0.5), ("crane", 0.3), ("heron", 0.2)]), names, mine) < 1e-9
    moved = _rows([("crane", 0.5), ("crane", 0.302), ("heron", 0.198)])
    assert abs(largest_difference(moved, names, mine) - 0.002) < 1e-9
    assert largest_difference(_rows([("crane", 0.5), ("crane", 0.3)]), names, mine) == 1.0  # a class missing
    assert largest_difference(_rows([("crane", 0.5), ("stork", 0.3), ("heron", 0.2)]), names, mine) == 1.0
