"""The ``stj`` subcommands about the registered model: ``predict``, ``export`` and ``status``. None of them
runs a flow, so none starts Prefect."""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

from configs.errors import UserError


def no_model(config, model_uri: str) -> UserError:
    """The one-line error for a model URI the store does not have."""
    return UserError(f"no model at {model_uri} in {config.tracking.uri}; run `stj run` first")


def _load_predictor(config):
    from mlflow.exceptions import MlflowException

    from serving.predictor import Predictor

    try:
        return Predictor.load(config.model_uri, config.tracking.uri, runtime=config.serve.runtime)
    except MlflowException:
        raise no_model(config, config.model_uri) from None


def cmd_predict(config, args) -> int:
    """Score files, folders and globs: with the registered model, or with the server at ``--url``."""
    import requests

    from serving.scoring import NoImages, expand_paths, score_with_model, score_with_server, server_classes, write_rows

    try:
        files = expand_paths(args.paths)
    except NoImages as exc:
        raise UserError(str(exc)) from None
    if args.url:
        try:
            classes = server_classes(args.url)
        except (requests.RequestException, KeyError, ValueError) as exc:
            raise UserError(f"--url {args.url}: not a running `stj serve` ({exc})") from None
        rows = score_with_server(args.url, files, classes)
    else:
        predictor = _load_predictor(config)
        classes, rows = predictor.class_names, score_with_model(predictor, files)
    target = Path(args.output) if args.output else None
    try:
        with target.open("w", newline="") if target else nullcontext(sys.stdout) as out:
            written = write_rows(rows, out, args.format, classes)
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    if target:
        print(f"stj: {written} file(s) scored -> {target}", file=sys.stderr)
    return 0


def cmd_export(config, args) -> int:
    """Write the registered model (the alias, or ``--version``) as ONNX, OpenVINO IR or a SavedModel."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from core.export import export_model
    from core.logged_model import load_logged_model
    from serving.predictor import resolve_model

    uri = f"models:/{config.tracking.model_name}/{args.version}" if args.version else config.model_uri
    try:
        ref = resolve_model(uri, config.tracking.uri)
        mlflow.set_tracking_uri(config.tracking.uri)  # models:/ URIs resolve against the global store
        logged = load_logged_model(ref.uri, with_embedder=False)
    except MlflowException:
        raise no_model(config, uri) from None
    path = export_model(logged, args.format, args.output, source=ref.uri)
    print(f"stj: {ref.uri} exported as {args.format} -> {path}")
    return 0


def cmd_status(config, args) -> int:
    """Print the champion, the last run and its gate decision, the photos per class, and where the MLflow UI shows
    the runs side by side."""
    from training.publishing.status import format_status, project_status
    from training.runs.track import comparison_link

    status = project_status(config)
    status["runs_compared_at"] = comparison_link(config.tracking)
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    if not args.json:
        print(f"runs side by side (make mlflow-ui): {status['runs_compared_at']}")
    return 0
