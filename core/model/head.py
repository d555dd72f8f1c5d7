"""The trainable head and the exported network (raw pixels -> embedder -> head -> class probabilities).

The head follows the reference STJ model: (pooled features) Dense 256 relu, Dropout 0.3, Dense 128 relu,
Dropout 0.2, softmax, after a standardisation of the features kept in the model. Because the base is
frozen and runs in inference mode, the pooled features are a fixed function of the image: the head is
trained on cached features and then joined to the embedder for export, which gives the same network.

Config keys: ``train.dense_units``, ``train.dropout``.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from core.model.seeding import seed_weights


def build_head(
    num_classes: int,
    units: tuple[int, int],
    dropout: tuple[float, float],
    train_features: np.ndarray,
    seed: int = 0,
) -> keras.Model:
    """Features -> class probabilities (the trainable part); the feature size is ``train_features``'.

    The features are first standardised with statistics of the training features, kept in the model: an
    ImageNet base is indifferent to it, but features of a randomly initialised base sit far from zero
    and RMSprop stalls on them (measured: chance accuracy without, well above with).
    """
    features = keras.Input((train_features.shape[1],), name="features")
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
