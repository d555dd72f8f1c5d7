"""The ``stj`` subcommands: each takes the loaded config and the parsed arguments and returns an exit code.
Heavy libraries (TensorFlow, Prefect, MLflow) are imported inside the commands, so ``stj --help`` is quick.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from configs.errors import UserError
from flows.interrupts import entering, leaving
from flows.model_commands import cmd_export, cmd_predict, cmd_status, no_model
from flows.release_commands import cmd_promote, cmd_rollback


def _preflight(config) -> None:
    """Fail in a second, before any stage runs, on what would otherwise fail after the scrape."""
    from core.model import get_backbone

    for name in [config.train.backbone, *config.train.compare_backbones]:
        get_backbone(name).resolve_weights(config.train.weights, config.train.weights_fallback)


def print_outcome(config, summary: dict[str, Any]) -> None:
    """The result of a pipeline run in a few lines: each sibling, the verdict, where to look next."""
    from training.runs.track import comparison_link

    siblings = summary["train"].get("siblings", [])
    if len(siblings) > 1:
        for run in siblings:
            chosen = "  <- candidate" if run["run_id"] == summary["train"]["run_id"] else ""
            print(
                f"stj: {run['backbone']:<19} weights {run['weights_used']:<8} val loss {run['val_loss']:.4f}  "
                f"test accuracy {run['metrics']['test_accuracy']:.3f} ({run['runtime']}){chosen}"
            )
    metrics, outcome = summary["train"]["metrics"], summary["publish"]
    verdict = f"now @{config.tracking.alias}" if outcome["promoted"] else f"NOT promoted ({outcome['reason']})"
    print(
        f"stj: {config.tracking.model_name} version {outcome['version']} {verdict} - test accuracy "
        f"{metrics['test_accuracy']:.3f}, macro F1 {metrics['test_macro_f1']:.3f} "
        f"(weights: {summary['train']['weights_used']}, run {summary['train']['run_id']})"
    )
    serve = config.serve
    print(
        f"stj: next: `stj serve -c <config>` then open http://{serve.host}:{serve.port}/ ; "
        f"runs: `make mlflow-ui` then {comparison_link(config.tracking)}"
    )


def cmd_run(config, args) -> int:
    """The whole pipeline once."""
    _preflight(config)
    from flows.pipeline import pipeline
    from flows.prefect_server import prefect_api

    with prefect_api():
        summary = pipeline(config, config_source=args.config)
    print(f"stj: images per class {summary['scrape']['per_class']}")
    print_outcome(config, summary)
    return 0


def cmd_train(config, args) -> int:
    """Prepare, train (or sweep) and publish on the photos already scraped."""
    _preflight(config)
    from configs.sweep import override_config, read_grid
    from flows.pipeline import train_pipeline
    from flows.prefect_server import prefect_api

    grid = read_grid(args.sweep) if args.sweep else None
    for overrides in grid or []:  # fail on a bad grid before anything runs
        override_config(config, overrides)
    with prefect_api():
        print_outcome(config, train_pipeline(config, config_source=args.config, grid_points=grid))
    return 0


def cmd_scrape(config, args) -> int:
    """The scrape stage alone (no Prefect), against the local catalog when the config has one."""
    from contextlib import nullcontext

    from catalog.server import catalog_for
    from scraper.scrape import scrape

    entering("scrape")
    site = catalog_for(config.catalog, config.scrape.base_url) if config.catalog else nullcontext(None)
    with site as base_url:
        report = scrape(config, base_url=base_url, show_progress=not args.quiet)
    leaving("scrape")
    print(report.summary())
    return 0


def cmd_serve(config, args) -> int:
    """Serve the registered model (``--host`` / ``--port`` arrive as ``serve.*`` overrides)."""
    from mlflow.exceptions import MlflowException

    from serving.predictor import resolve_model
    from serving.server import serve

    try:
        resolve_model(config.model_uri, config.tracking.uri)
    except MlflowException:
        raise no_model(config, config.model_uri) from None
    entering("serve")
    try:
        serve(config)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    # gunicorn's master ends cleanly only when a signal (Ctrl-C, SIGTERM) told it to stop
    raise KeyboardInterrupt


def cmd_schedule(config, args) -> int:
    """Serve the pipeline as a Prefect deployment on a cron schedule."""
    from flows.pipeline import pipeline
    from flows.prefect_server import prefect_api
    from flows.schedule import add_flow, build_runner, serve_until_stopped

    schedule, monitor_schedule = _cron(args.cron), _cron(args.monitor_cron, "--monitor-cron")
    entering("schedule")
    with prefect_api(scheduler=True) as api:
        parameters = {"config": config.model_dump(mode="json"), "config_source": args.config}
        runner = build_runner(pipeline, args.name, schedule, parameters)
        if monitor_schedule is not None:
            from flows.monitor import monitor_flow

            add_flow(runner, monitor_flow, f"{args.name}-monitor", monitor_schedule, {"config": parameters["config"]})
            print(f"stj: and deployment 'stj-monitor/{args.name}-monitor' on cron {args.monitor_cron!r}", flush=True)
        print(
            f"stj: serving deployment 'stj-pipeline/{args.name}' on cron {args.cron!r}, Prefect API {api} "
            "(Ctrl-C to stop)",
            flush=True,
        )
        serve_until_stopped(runner)
    return 0  # not reached: serving ends with an interrupt


def _cron(expression: str | None, option: str = "--cron"):
    from prefect.schedules import Cron

    try:
        return Cron(expression) if expression else None
    except ValueError as exc:
        raise UserError(f"{option} {expression!r}: {exc}") from None


def cmd_deploy(config, args) -> int:
    """Register the pipeline on a work pool of a persistent Prefect server; optionally run it now."""
    from pathlib import Path

    from prefect.exceptions import ObjectNotFound

    from flows.deploy import FLOW_NAME, deploy_monitor, deploy_pipeline, run_now
    from flows.prefect_server import configured_api

    _cron(args.cron)
    _cron(args.monitor_cron, "--monitor-cron")
    api = configured_api()
    if not api:
        raise UserError(
            "stj deploy registers with a Prefect server that stays up: set PREFECT_API_URL "
            "(`make team-up` starts one; then `source .team/env`)"
        )
    parameters = {"config": config.model_dump(mode="json"), "config_source": args.config}
    try:
        deploy_pipeline(parameters, args.name, args.pool, args.cron, Path.cwd())
        if args.monitor_cron:
            deploy_monitor(
                {"config": parameters["config"]}, f"{args.name}-monitor", args.pool, args.monitor_cron, Path.cwd()
            )
    except ValueError as exc:
        if "work pool" not in str(exc):
            raise
        raise UserError(f"--pool {args.pool!r}: {exc}") from None
    except (OSError, RuntimeError) as exc:
        raise UserError(f"Prefect API {api}: {exc}") from None
    when = f"on cron {args.cron!r}" if args.cron else "without a schedule"
    print(
        f"stj: deployment '{FLOW_NAME}/{args.name}' on work pool '{args.pool}' {when}, Prefect API {api}; "
        f"`prefect worker start --pool {args.pool}` runs it",
        flush=True,
    )
    if args.monitor_cron:
        print(f"stj: and deployment 'stj-monitor/{args.name}-monitor' on cron {args.monitor_cron!r}", flush=True)
    if not args.run:
        return 0
    entering("deploy")
    try:
        run, state = run_now(args.name)
    except ObjectNotFound:
        raise UserError(f"deployment '{FLOW_NAME}/{args.name}' vanished before it ran") from None
    print(f"stj: flow run {run} of '{FLOW_NAME}/{args.name}' ended {state}", flush=True)
    return 0 if state == "Completed" else 1


def cmd_demo(config, args) -> int:
    """The whole pipeline, then ``stj serve`` in this same process (``exec``): a Ctrl-C or a SIGTERM to the
    one command stops whichever part is running (``make demo`` runs this)."""
    from pathlib import Path

    cmd_run(config, args)
    photo = next(iter(sorted((Path(config.project.data_dir) / "raw").rglob("*.jpg"))), None)
    serve = config.serve
    print(
        f"\nServing {config.tracking.model_name}@{config.tracking.alias} next. Try it once the server prints 'stj: serving on ...':"
    )
    print(f"  curl -F image=@{photo or 'photo.jpg'} http://{serve.host}:{serve.port}/predict\n", flush=True)
    sys.stderr.flush()
    command = [sys.executable, "-m", "flows.cli", "serve", "--config", args.config]
    command += [arg for override in args.overrides for arg in ("--set", override)]
    command += ["--quiet"] if args.quiet else ["--verbose"] if args.verbose else []
    os.execv(sys.executable, command)
    return 0  # not reached


def cmd_catalog(config, args) -> int:
    """Serve the local Amazon-like catalog until interrupted."""
    from catalog import running_catalog

    if config.catalog is None:
        raise UserError(f"{args.config}: no 'catalog' section")
    entering("catalog")
    with running_catalog(config.catalog, port=args.port) as server:
        print(f"stj: catalog at {server.base_url}/s?k=saree (Ctrl-C to stop)", flush=True)
        while True:
            time.sleep(3600)


def cmd_monitor(config, args) -> int:
    """Judge a window of live traffic once (the ``stj-monitor`` flow); print the report's path and headline."""
    from flows.monitor import monitor_flow, window
    from flows.prefect_server import prefect_api
    from serving.monitor import champion_baseline

    window(config, args.since, args.until)  # a user's mistake is one line, before any server starts
    champion_baseline(config)
    with prefect_api():
        result = monitor_flow(config, since=args.since, until=args.until)
    print(f"stj: report {result['report_path']} (MLflow run {result['mlflow_run_id']})")
    print(f"stj: {result['headline']}")
    if result["drifted"]:
        alert = (
            "alert sent to notify.webhook_url"
            if result["alerted"]
            else "no alert sent (notify.webhook_url unset or away)"
        )
        started = f"; started {result['started']['deployment']}" if result["started"] else ""
        print(f"stj: {alert}{started}")
    return 0


def cmd_admin(config, args) -> int:
    """``stj admin grant EMAIL``: the account at EMAIL becomes an admin, in the server's database (every
    replica sees it)."""
    from serving.accounts import Accounts
    from serving.database import Database
    from serving.errors import ApiError

    try:
        user = Accounts(Database(config.serve.database_url)).grant(args.email)
    except ApiError as exc:
        raise UserError(exc.message) from None
    print(f"stj: {user.email} is an admin now")
    return 0


COMMANDS = {
    "run": cmd_run,
    "demo": cmd_demo,
    "train": cmd_train,
    "scrape": cmd_scrape,
    "serve": cmd_serve,
    "predict": cmd_predict,
    "export": cmd_export,
    "status": cmd_status,
    "promote": cmd_promote,
    "rollback": cmd_rollback,
    "schedule": cmd_schedule,
    "deploy": cmd_deploy,
    "monitor": cmd_monitor,
    "admin": cmd_admin,
    "catalog": cmd_catalog,
}
