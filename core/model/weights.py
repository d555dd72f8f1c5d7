"""Which weights a frozen base starts from, decided without ever changing results silently.

Each backbone resolves ``train.weights`` (``imagenet``, ``none`` or a weights file) its own way; when its
ImageNet weights cannot be had offline, ``train.weights_fallback: none`` falls back to a random (seeded)
initialisation with a loud warning, and the choice is recorded on the run; ``error`` stops with a message
saying how to get them.

Config keys: ``train.weights``, ``train.weights_fallback``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

from configs.errors import UserError

log = logging.getLogger(__name__)


class WeightsUnavailable(UserError):
    """The requested weights cannot be had on this machine."""


@dataclass(frozen=True)
class WeightsChoice:
    """Where a base's weights come from (``keras_arg``: Keras' ``weights=`` value or a weights file; ``None``:
    random) and how to describe it in MLflow."""

    keras_arg: str | None
    used: str
    requested: str
    fell_back: bool


NO_WEIGHTS = WeightsChoice(keras_arg=None, used="none", requested="none", fell_back=False)  # random, seeded


@functools.cache  # once per process and reason: the pre-flight check and the stage both resolve weights
def warn_random_fallback(reason: str) -> None:
    """Say loudly that a run trains from a random base because ImageNet weights are missing."""
    log.warning(
        "IMAGENET WEIGHTS UNAVAILABLE (%s): training from a RANDOM initialisation (train.weights_fallback=none). "
        "Results will be far below an ImageNet base.",
        reason,
    )


def weights_file(requested: str) -> WeightsChoice:
    """A weights file named by ``train.weights``.

    Raises:
        WeightsUnavailable: the file does not exist.
    """
    path = Path(requested)
    if not path.is_file():
        raise WeightsUnavailable(f"train.weights: file not found: {requested}")
    return WeightsChoice(keras_arg=str(path), used=f"file:{path.name}", requested=requested, fell_back=False)
