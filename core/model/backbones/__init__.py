"""The frozen bases STJ can put under its head, one small module each, chosen by ``train.backbone``.

A :class:`Backbone` says everything the rest of the project needs to know about one: how to build it
without its top (with which weights), its preprocessing (a registered layer inside the model), its input
and feature sizes, the layers fine-tuning may unfreeze, and where Grad-CAM looks. The embedder built here
(raw pixels -> preprocessing -> base -> pooled features) is what training caches and serving runs.

Config keys: ``train.backbone``, ``train.image_size``, ``train.weights``, ``train.weights_fallback``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from core.model.weights import NO_WEIGHTS, WeightsChoice


@dataclass(frozen=True)
class Backbone:
    """One family of frozen bases."""

    name: str
    input_size: int  # the size it was trained at (``train.image_size`` may differ)
    feature_dim: int  # pooled features per image
    preprocessing: str  # names the input scaling, part of the embedding cache key
    preprocess_layer: Callable[[], layers.Layer]
    build_base: Callable[[int, WeightsChoice, int], keras.Model]  # (image size, weights, seed) -> frozen base
    resolve_weights: Callable[[str, str], WeightsChoice]  # (train.weights, train.weights_fallback)
    finetune_layers: Callable[[keras.Model, int], list[layers.Layer]]  # the top ``n`` layers that may train
    int8_thorough: bool = False  # quantise with NNCF's full bias correction (depthwise networks need it)


def top_weighted_layers(base: keras.Model, count: int) -> list[layers.Layer]:
    """The top ``count`` weighted layers of ``base``, BatchNorm excluded (it stays frozen, in inference mode)."""
    weighted = [layer for layer in base.layers if layer.weights]
    return [layer for layer in weighted[-count:] if not isinstance(layer, layers.BatchNormalization)]


def backbones() -> dict[str, Backbone]:
    """Every registered backbone by name."""
    from core.model.backbones import efficientnet_lite, resnet50

    return {resnet50.BACKBONE.name: resnet50.BACKBONE, **efficientnet_lite.BACKBONES}


def get_backbone(name: str) -> Backbone:
    """The backbone registered under ``name`` (``train.backbone``)."""
    known = backbones()
    if name not in known:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


def build_embedder(backbone: Backbone, base: keras.Model, image_size: int) -> keras.Model:
    """Raw pixels -> pooled features: the frozen part whose outputs are cached.

    Layer names are fixed (``preprocess``, the base under its own name, ``avg_pool``), so Grad-CAM finds
    the last convolutional map as the base's output whatever the backbone.
    """
    pixels = keras.Input((image_size, image_size, 3), name="image")
    x = backbone.preprocess_layer()(pixels)
    x = base(x, training=False)  # BatchNorm in inference mode
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    features = layers.Flatten(name="flatten")(x)
    return keras.Model(pixels, features, name="embedder")


def build_frozen(
    backbone: Backbone | str, image_size: int, weights: WeightsChoice = NO_WEIGHTS, seed: int = 0
) -> tuple[keras.Model, keras.Model]:
    """(frozen base, embedder) of a backbone (given or by name); without weights, a random base of ``seed``."""
    spec = get_backbone(backbone) if isinstance(backbone, str) else backbone
    base = spec.build_base(image_size, weights, seed)
    return base, build_embedder(spec, base, image_size)
