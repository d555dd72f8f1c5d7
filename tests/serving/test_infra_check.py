"""The infra check's comparison of a server's answer with the in-process scores (the check itself, with real
servers: tests/flows/test_tasks.py, tests/e2e/test_releases.py and the reference run)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from serving.infra_check import largest_difference, same_top1
from serving.predictor import Predictor


def _rows(pairs):
    return [{"label": label, "probability": probability} for label, probability in pairs]


def test_probabilities_are_compared_class_by_class_even_when_two_classes_share_a_name() -> None:
    names, mine = ["crane", "heron", "crane"], np.array([0.5, 0.2, 0.3])  # ImageNet has two cranes
    assert largest_difference(_rows([("crane", 0.5), ("crane", 0.3), ("heron", 0.2)]), names, mine) < 1e-9
    moved = _rows([("crane", 0.5), ("crane", 0.302), ("heron", 0.198)])
    assert abs(largest_difference(moved, names, mine) - 0.002) < 1e-9
    assert largest_difference(_rows([("crane", 0.5), ("crane", 0.3)]), names, mine) == 1.0  # a class missing
    assert largest_difference(_rows([("crane", 0.5), ("stork", 0.3), ("heron", 0.2)]), names, mine) == 1.0


def test_a_tie_within_the_tolerance_is_the_same_top1_and_the_server_breaks_ties_as_argmax_does() -> None:
    names = ["switch", "shovel", "band-aid"]
    tied = np.array([0.4, 0.4, 0.2])  # the ImageNet model scores some drawings with exact ties
    assert same_top1("switch", names, tied, 1e-3) and same_top1("shovel", names, tied, 1e-3)
    assert not same_top1("band-aid", names, tied, 1e-3)
    assert not same_top1("shovel", names, np.array([0.45, 0.35, 0.2]), 1e-3)  # a real disagreement
    assert same_top1("shovel", names, np.array([0.4004, 0.3996, 0.2]), 1e-3)  # 8e-4 apart: within 1e-3
    many = np.full(1000, 0.0005)  # as many classes as ImageNet's: numpy's default sort reorders exact ties
    many[[3, 500, 900]] = 0.2
    model = SimpleNamespace(class_names=[f"class {i}" for i in range(1000)])
    ranked = Predictor.top_k(model, many, 3)  # the server's answer names argmax's class first
    assert [row["label"] for row in ranked] == ["class 3", "class 500", "class 900"]


def test_a_model_with_an_index_keeps_its_features_at_the_servers_precision(make_predictor) -> None:
    """A model converted here measures its float precision at load, so the server's may differ: the check's
    runtime then takes the server's precision and, for a model with a "none of these" index, stays an
    embedder-then-head chain (scoring it asks for the features)."""
    from core.ood import OodIndex
    from core.runtime.openvino import Chained
    from serving.infra_check import same_runtime

    indexed = make_predictor(ood=OodIndex(np.full((1, 2048), 2048**-0.5, np.float16), k=1))
    indexed.runtime = Chained(*(_openvino(indexed.model.get_layer(n)) for n in ("embedder", "head")))
    runtime = same_runtime(indexed, "openvino-f32" if indexed.runtime.name != "openvino-f32" else "openvino-bf16")
    assert isinstance(runtime, Chained) and runtime.name != indexed.runtime.name
    indexed.runtime = runtime
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    assessed = indexed.assess(pixels)
    assert assessed.ood_scores.shape == (2,) and assessed.features.shape == (2, 2048)


def _openvino(layer):
    from core.runtime.openvino import OpenVINORuntime, convert_to_openvino

    return OpenVINORuntime(convert_to_openvino(layer), "f32")
