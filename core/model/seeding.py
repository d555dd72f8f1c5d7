"""Weights as a function of a seed, and a fingerprint of weights (what identifies a frozen base)."""

from __future__ import annotations

import hashlib

import keras
import numpy as np

_VARIABLE_OF = {"depthwise": "kernel"}  # initializers whose variable has another name (DepthwiseConv2D)


def seed_weights(model: keras.Model, seed: int) -> keras.Model:
    """Draw every weight of ``model`` again from its layer's initializer, seeded by ``(seed, layer index)``.

    Keras seeds an initializer without a seed from Python's global ``random``, which any other thread may
    draw from meanwhile (Prefect's, the scraper's): measured, the same ``set_random_seed`` gave a different
    random ResNet50 in a pipeline run than in a lone train run. Explicit seeds make it a function of ``seed``.
    """
    for index, layer in enumerate(model.layers):
        for attr, initializer in vars(layer).items():
            if not attr.endswith("_initializer") or not isinstance(initializer, keras.initializers.Initializer):
                continue
            name = attr.removesuffix("_initializer")
            variable = getattr(layer, _VARIABLE_OF.get(name, name), None)
            if not isinstance(variable, keras.Variable):
                continue
            config = initializer.get_config()
            if "seed" in config:
                config["seed"] = seed * 100_003 + index
            variable.assign(type(initializer).from_config(config)(variable.shape, variable.dtype))
    return model


def weights_fingerprint(model: keras.Model) -> str:
    """A hash of a model's weights: identifies the exact base that produced cached features."""
    digest = hashlib.sha256()
    for w in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()[:16]
