"""MLflow experiments as STJ makes them: with the configured artifact folder on a local store (MLflow's default
would be ``./mlruns`` in whatever folder the command ran in), the server's own artifact store behind a tracking
server.

Config keys: ``tracking.uri``, ``tracking.artifact_dir`` (read by the callers).
"""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient


def is_tracking_server(uri: str) -> bool:
    """Whether ``uri`` is an MLflow tracking server (which keeps the artifacts too), not a database."""
    return uri.startswith(("http://", "https://"))


def ensure_experiment(client: MlflowClient, uri: str, name: str, artifact_dir: str | Path, tags: dict[str, str]) -> str:
    """The id of experiment ``name``, created when missing (with ``tags``; its artifacts under
    ``artifact_dir`` unless ``uri`` is a tracking server)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    if is_tracking_server(uri):
        return client.create_experiment(name, tags=tags)
    location = Path(artifact_dir).resolve()
    location.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=location.as_uri(), tags=tags)
