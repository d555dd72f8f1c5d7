"""Sibling runs: the same data on several backbones, each a complete run; the best by validation loss
(never the test split) becomes the candidate the gate judges.

Every sibling is tagged ``comparison`` (one id per comparison) and ``comparison.chosen``, so the MLflow UI
filters them together: ``tags.comparison = '<id>'``.

Config keys: ``train.backbone``, ``train.compare_backbones``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from mlflow import MlflowClient

from configs.schema import Config, TrackingConfig
from configs.sweep import override_config
from training.runs.train import TrainResult


def backbone_configs(config: Config) -> list[Config]:
    """One config per backbone to train: ``train.backbone`` first, then ``train.compare_backbones``."""
    names = list(dict.fromkeys([config.train.backbone, *config.train.compare_backbones]))
    return [override_config(config, [f"train.backbone={name}", "train.compare_backbones=[]"]) for name in names]


def choose(results: Sequence[TrainResult], tracking: TrackingConfig) -> TrainResult:
    """The sibling with the lowest validation loss; with several, each run is tagged with the comparison."""
    best = min(results, key=lambda r: r.val_loss)
    if len(results) > 1:
        client, comparison = MlflowClient(tracking_uri=tracking.uri), uuid.uuid4().hex[:12]
        for result in results:
            client.set_tag(result.run_id, "comparison", comparison)
            client.set_tag(result.run_id, "comparison.chosen", str(result is best).lower())
            client.set_tag(result.run_id, "comparison.backbones", " ".join(r.backbone for r in results))
    return best
