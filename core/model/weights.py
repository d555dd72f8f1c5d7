"""Decide which ResNet50 base weights a run uses, without ever changing results silently.

``imagenet`` uses Keras' own loader, which reads ``$KERAS_HOME/models/<file>`` (default ``~/.keras``) before
trying to download. Offline, when that file is absent, ``train.weights_fallback: none`` falls back to a
random initialisation with a loud warning, and the choice is recorded; ``error`` stops with a message
saying where to put the file.

Config keys: ``train.weights``, ``train.weights_fallback``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError

log = logging.getLogger(__name__)

IMAGENET_NOTOP_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


class WeightsUnavailable(UserError):
    """The requested weights cannot be had on this machine."""


@dataclass(frozen=True)
class WeightsChoice:
    """What to pass to ``keras.applications.ResNet50(weights=...)`` and how to describe it in MLflow."""

    keras_arg: str | None
    used: str
    requested: str
    fell_back: bool


NO_WEIGHTS = WeightsChoice(
    keras_arg=None, used="none", requested="none", fell_back=False
)  # a random base (a function of the seed)


def keras_cache_file() -> Path:
    """Where Keras looks for the ImageNet no-top weights before downloading them."""
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return home / "models" / IMAGENET_NOTOP_FILE


def resolve_weights(requested: str, fallback: str) -> WeightsChoice:
    """Turn the config's ``train.weights`` into a concrete choice.

    Args:
        requested: ``imagenet``, ``none`` or a path to a weights file.
        fallback: ``none`` (random init when ImageNet weights are unavailable) or ``error``.

    Raises:
        WeightsUnavailable: the weights are not on this machine and no fallback is allowed.
    """
    if requested == "none":
        return WeightsChoice(keras_arg=None, used="none", requested=requested, fell_back=False)
    if requested == "imagenet":
        cached = keras_cache_file()
        if cached.is_file():
            return WeightsChoice(keras_arg="imagenet", used="imagenet", requested=requested, fell_back=False)
        if fallback == "none":
            log.warning(
                "IMAGENET WEIGHTS UNAVAILABLE: %s is missing and there is no internet; training from a RANDOM "
                "initialisation (train.weights_fallback=none). Results will be far below an ImageNet base.",
                cached,
            )
            return WeightsChoice(keras_arg=None, used="none", requested=requested, fell_back=True)
        raise WeightsUnavailable(
            f"ImageNet weights for ResNet50 are not available offline: download {IMAGENET_NOTOP_FILE} on a "
            f"connected machine and put it in $KERAS_HOME/models/ (here: {cached}), "
            "or set train.weights to 'none' or a weights file path"
        )
    path = Path(requested)
    if not path.is_file():
        raise WeightsUnavailable(f"train.weights: file not found: {requested}")
    return WeightsChoice(keras_arg=str(path), used=f"file:{path.name}", requested=requested, fell_back=False)
