"""The model family shared by training and serving: backbones, preprocessing layers, the head.

Importing this package registers the custom layers a saved STJ model contains, so ``keras`` (and
``mlflow.tensorflow``) can load it in safe mode.
"""

from core.model import layers  # noqa: F401 - registers the preprocessing layers
from core.model.backbones import Backbone, build_embedder, build_frozen, get_backbone
from core.model.head import build_classifier, build_head
from core.model.seeding import seed_weights, weights_fingerprint

__all__ = [
    "Backbone",
    "build_classifier",
    "build_embedder",
    "build_frozen",
    "build_head",
    "get_backbone",
    "seed_weights",
    "weights_fingerprint",
]
