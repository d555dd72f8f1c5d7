"""What a backbone is (:class:`Backbone`) and what every backbone shares: the embedder around its base and
the layers fine-tuning may unfreeze. The backbones' own modules build on this one; the package registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
from keras import layers

from core.model.weights import WeightsChoice


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
