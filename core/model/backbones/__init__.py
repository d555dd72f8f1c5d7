"""The frozen bases STJ can put under its head, one small module each, chosen by ``train.backbone``.

A :class:`Backbone` says everything the rest of the project needs to know about one: how to build it
without its top (with which weights), its preprocessing (a registered layer inside the model), its input
and feature sizes, the layers fine-tuning may unfreeze, and where Grad-CAM looks. The embedder built here
(raw pixels -> preprocessing -> base -> pooled features) is what training caches and serving runs.

Config keys: ``train.backbone``, ``train.image_size``, ``train.weights``, ``train.weights_fallback``.
"""

from __future__ import annotations

import keras

from core.model.backbones.spec import Backbone, build_embedder, top_weighted_layers
from core.model.weights import NO_WEIGHTS, WeightsChoice

__all__ = ["Backbone", "backbones", "build_embedder", "build_frozen", "get_backbone", "top_weighted_layers"]


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


def build_frozen(
    backbone: Backbone | str, image_size: int, weights: WeightsChoice = NO_WEIGHTS, seed: int = 0
) -> tuple[keras.Model, keras.Model]:
    """(frozen base, embedder) of a backbone (given or by name); without weights, a random base of ``seed``."""
    spec = get_backbone(backbone) if isinstance(backbone, str) else backbone
    base = spec.build_base(image_size, weights, seed)
    return base, build_embedder(spec, base, image_size)
