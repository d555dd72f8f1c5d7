"""ResNet50 (Keras applications), the mission's backbone: caffe-style preprocessing, 2048 features.

``imagenet`` uses Keras' own loader, which reads ``$KERAS_HOME/models/<file>`` (default ``~/.keras``) before
trying to download; offline without that file, ``train.weights_fallback: none`` gives a random base that
is a function of the seed, and ``error`` says where to put the file.

Config keys: ``train.weights``, ``train.weights_fallback``.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
from keras import layers

from core.model.backbones.spec import Backbone, top_weighted_layers
from core.model.layers import ResNetPreprocess
from core.model.seeding import seed_weights
from core.model.weights import NO_WEIGHTS, WeightsChoice, WeightsUnavailable, warn_random_fallback, weights_file

IMAGENET_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def keras_cache_file() -> Path:
    """Where Keras looks for the ImageNet no-top weights before downloading them."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / IMAGENET_NOTOP_FILE


def resolve_weights(requested: str, fallback: str) -> WeightsChoice:
    """Turn ``train.weights`` (``imagenet``, ``none`` or a weights file) into a concrete choice.

    Raises:
        WeightsUnavailable: the weights are not on this machine and no fallback is allowed.
    """
    if requested == "none":
        return NO_WEIGHTS
    if requested != "imagenet":
        return weights_file(requested)
    cached = keras_cache_file()
    if cached.is_file():
        return WeightsChoice(keras_arg="imagenet", used="imagenet", requested=requested, fell_back=False)
    if fallback == "none":
        shown = (
            f"~/{cached.relative_to(Path.home())}" if cached.is_relative_to(Path.home()) else cached
        )  # no home path in logs
        warn_random_fallback(f"{shown} is missing and there is no internet")
        return WeightsChoice(keras_arg=None, used="none", requested=requested, fell_back=True)
    raise WeightsUnavailable(
        f"ImageNet weights for ResNet50 are not available offline: download {IMAGENET_NOTOP_FILE} on a "
        f"connected machine and put it in $KERAS_HOME/models/ (here: {cached}), "
        "or set train.weights to 'none' or a weights file path"
    )


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


BACKBONE = Backbone(
    name="resnet50",
    input_size=224,
    feature_dim=2048,
    preprocessing="caffe-bgr-v1",
    preprocess_layer=_preprocess,
    build_base=build_base,
    resolve_weights=resolve_weights,
    finetune_layers=top_weighted_layers,
)
