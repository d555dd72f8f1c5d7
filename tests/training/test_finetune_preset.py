"""The fine-tuning preset (configs/finetune.yaml): Lite0's top blocks train, the rest of the pretrained base does
not, the run records test accuracy before and after, and the logged model is the fine-tuned network."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from core.logged_model import load_logged_model
from core.model import get_backbone
from flows.settings import load_run_config
from scraper.scrape import scrape
from training.runs.train import train
from training.splitting.split import prepare

pytestmark = pytest.mark.slow


def test_the_preset_fine_tunes_lite0_top_blocks(tmp_path, overrides_for, catalog_server, recwarn) -> None:
    tiny = [
        *overrides_for(tmp_path),
        "train.weights=imagenet",
        "train.image_size=96",
        "train.finetune.epochs=2",
        "train.finetune.batch_size=8",
    ]
    config = load_run_config("configs/finetune.yaml", tiny)
    assert config.train.backbone == "efficientnet_lite0" and config.train.finetune.enabled
    assert config.scrape.classes == load_run_config("configs/demo.yaml").scrape.classes  # the rest is the demo's
    scrape(config, base_url=catalog_server.base_url, show_progress=False)
    result = train(config, prepare(config), config_source="configs/finetune.yaml")

    run = MlflowClient(tracking_uri=config.tracking.uri).get_run(result.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    assert {"test_accuracy_before_finetune", "test_accuracy_after_finetune"} <= set(metrics)
    assert metrics["test_accuracy"] == metrics["test_accuracy_after_finetune"]
    assert len(MlflowClient(tracking_uri=config.tracking.uri).get_metric_history(run.info.run_id, "finetune_val_loss"))
    assert tags["finetune"] == "ran" and tags["weights.used"] == "imagenet"
    assert tags["runtime"] == "tensorflow-f32" and tags["precision.chosen"] == "f32"  # what scored the test set

    mlflow.set_tracking_uri(config.tracking.uri)
    logged = load_logged_model(result.model_uri, with_embedder=False).model.get_layer("embedder")
    # loaded as a server loads it: its optimizer (slots for the unfrozen layers) is not rebuilt and warned about
    assert not [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)]
    backbone = get_backbone("efficientnet_lite0")
    pretrained = backbone.build_base(96, backbone.resolve_weights("imagenet", "error"), 0)
    fine_tuned = logged.get_layer("efficientnet_lite0")
    moved = {
        layer.name
        for layer in pretrained.layers
        if any(
            not np.array_equal(a, b)
            for a, b in zip(layer.get_weights(), fine_tuned.get_layer(layer.name).get_weights(), strict=True)
        )
    }
    unfrozen = {layer.name for layer in backbone.finetune_layers(pretrained, config.train.finetune.unfreeze_layers)}
    assert moved and moved <= unfrozen and "head_conv" in unfrozen and "block15_project_conv" in unfrozen
