"""ResNet50 (Keras applications), the mission's backbone: caffe-style preprocessing, 2048 features.

Its ImageNet weights come from Keras' own loader (see ``core.model.weights``); offline without the file,
``train.weights_fallback: none`` gives a random base that is a function of the seed.
"""

from __future__ import annotations

import keras
from keras import layers

from core.model.backbones import Backbone
from core.model.layers import ResNetPreprocess
from core.model.seeding import seed_weights
from core.model.weights import WeightsChoice, resolve_weights


def _preprocess() -> layers.Layer:
    return ResNetPreprocess(name="preprocess")


def build_base(image_size: int, weights: WeightsChoice, seed: int) -> keras.Model:
    """ResNet50 without its top, frozen; a random base (no weights) is the same for the same ``seed``."""
    base = keras.applications.ResNet50(
        include_top=False, weights=weights.keras_arg, input_shape=(image_size, image_size, 3)
    )
    if weights.keras_arg is None:
        seed_weights(base, seed)
    base.trainable = False
    return base


def finetune_layers(base: keras.Model, count: int) -> list[layers.Layer]:
    """The top ``count`` weighted layers, BatchNorm excluded (it stays frozen, in inference mode)."""
    weighted = [layer for layer in base.layers if layer.weights]
    return [layer for layer in weighted[-count:] if not isinstance(layer, layers.BatchNormalization)]


BACKBONE = Backbone(
    name="resnet50",
    input_size=224,
    feature_dim=2048,
    preprocessing="caffe-bgr-v1",
    preprocess_layer=_preprocess,
    build_base=build_base,
    resolve_weights=resolve_weights,
    finetune_layers=finetune_layers,
)
