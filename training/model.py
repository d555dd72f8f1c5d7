"""The network: raw pixels -> ResNet50 preprocessing -> frozen ResNet50 -> average pooling -> dense head.

The head follows the reference STJ model: average pooling, flatten, Dense 256 relu, Dropout 0.3,
Dense 128 relu, Dropout 0.2, softmax. Because the base is frozen and runs in inference mode, the pooled
2048-d features are a fixed function of the image: the head is trained on cached features
(``training.embed``) and then joined to the base for export, which gives the same network.

Config keys: ``train.image_size``, ``train.dense_units``, ``train.dropout``.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np
from keras import layers

FEATURE_DIM = 2048
BACKBONE = "resnet50"
PREPROCESS_VERSION = "caffe-bgr-v1"
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="stj")
class ResNetPreprocess(layers.Layer):
    """ResNet50's caffe-style preprocessing (RGB->BGR, subtract ImageNet means) as a saveable layer."""

    def call(self, inputs):
        bgr = keras.ops.flip(inputs, axis=-1)
        return bgr - keras.ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=inputs.dtype)


def seed_weights(model: keras.Model, seed: int) -> keras.Model:
    """Draw every weight of ``model`` again from its layer's initializer, seeded by ``(seed, layer index)``.

    Keras seeds an initializer without a seed from Python's global ``random``, which any other thread may
    draw from meanwhile (Prefect's, the scraper's): measured, the same ``set_random_seed`` gave a different
    random ResNet50 in a pipeline run than in a lone train run. Explicit seeds make it a function of ``seed``.
    """
    for index, layer in enumerate(model.layers):
        for attr, initializer in vars(layer).items():
            variable = (
                getattr(layer, attr.removesuffix("_initializer"), None) if attr.endswith("_initializer") else None
            )
            if not isinstance(initializer, keras.initializers.Initializer) or not isinstance(variable, keras.Variable):
                continue
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = seed * 100_003 + index
            variable.assign(type(initializer).from_config(config)(variable.shape, variable.dtype))
    return model


def build_base(image_size: int, weights: str | None, seed: int) -> keras.Model:
    """ResNet50 without its top, frozen. ``weights`` is Keras' argument (``imagenet``, ``None``, a path); a
    random base (``None``) is the same for the same ``seed`` on every run."""
    base = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(image_size, image_size, 3))
    if weights is None:
        seed_weights(base, seed)
    base.trainable = False
    return base


def build_embedder(base: keras.Model, image_size: int) -> keras.Model:
    """Raw pixels -> pooled 2048-d features: the frozen part whose outputs are cached."""
    pixels = keras.Input((image_size, image_size, 3), name="image")
    x = ResNetPreprocess(name="preprocess")(pixels)
    x = base(x, training=False)  # BatchNorm in inference mode
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    features = layers.Flatten(name="flatten")(x)
    return keras.Model(pixels, features, name="embedder")


def build_head(
    num_classes: int,
    units: tuple[int, int],
    dropout: tuple[float, float],
    train_features: np.ndarray,
    seed: int = 0,
) -> keras.Model:
    """Features -> class probabilities (the trainable part).

    The features are first standardised with statistics of the training features, kept in the model: an
    ImageNet base is indifferent to it, but features of a randomly initialised base sit far from zero
    and RMSprop stalls on them (measured: chance accuracy without, well above with).
    """
    features = keras.Input((FEATURE_DIM,), name="features")
    mean = train_features.mean(axis=0)
    variance = train_features.var(axis=0)
    # Nearly dead channels have almost no variance; dividing by it would blow up rounding noise (e.g. bf16
    # features) into confident flips. A floor at 1 % of the mean variance keeps them quiet.
    variance = np.maximum(variance, 0.01 * variance.mean())
    norm = layers.Normalization(mean=mean, variance=variance, name="feature_norm")
    x = layers.Dense(units[0], activation="relu", name="dense_1")(norm(features))
    x = layers.Dropout(dropout[0], name="dropout_1")(x)
    x = layers.Dense(units[1], activation="relu", name="dense_2")(x)
    x = layers.Dropout(dropout[1], name="dropout_2")(x)
    probs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return seed_weights(keras.Model(features, probs, name="head"), seed)


def build_classifier(embedder: keras.Model, head: keras.Model) -> keras.Model:
    """The exported model: raw pixels in, class probabilities out."""
    pixels = keras.Input(embedder.input_shape[1:], name="image")
    return keras.Model(pixels, head(embedder(pixels)), name="stj_classifier")


def weights_fingerprint(model: keras.Model) -> str:
    """A hash of a model's weights: identifies the exact base that produced cached features."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()[:16]
