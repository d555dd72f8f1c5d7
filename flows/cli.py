"""``stj``: the one entry point.

    stj run      --config configs/demo.yaml [--set section.key=value ...]   run the whole pipeline once
    stj train    --config configs/demo.yaml [--sweep configs/sweep.yaml]    re-train on the scraped data
    stj serve    --config configs/demo.yaml                                 serve the champion model
    stj schedule --config configs/stj.yaml --cron "0 3 * * 1"              run the pipeline on a cron schedule
    stj catalog  --config configs/demo.yaml [--port N]                      serve the local Amazon-like catalog

User mistakes (bad config, missing weights, no model yet) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

EXIT_USER_ERROR = 2
EXIT_FAILED = 1


def _quiet_environment() -> None:
    # Set before TensorFlow / Prefect are imported: both read these at import time.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "scraper,training,serving")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(prog="stj", description="Scrape, train, track and serve a product classifier.")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", "-c", default="configs/stj.yaml", help="YAML config file (default: %(default)s)")
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one config value, e.g. --set train.epochs=5 (repeatable)",
        )
        return p

    add("run", "run scrape -> prepare -> train -> publish once")
    train = add("train", "prepare -> train (or a sweep) -> publish on already scraped data")
    train.add_argument("--sweep", default=None, help="YAML file with a 'grid' of config values to try")
    add("serve", "serve the registered model over HTTP (gunicorn)")
    schedule = add("schedule", "serve the pipeline as a Prefect deployment on a cron schedule")
    schedule.add_argument("--cron", required=True, help='cron expression, e.g. "0 3 * * 1"')
    schedule.add_argument("--name", default="stj-scheduled", help="deployment name (default: %(default)s)")
    catalog = add("catalog", "serve the local Amazon-like catalog (offline stand-in for amazon.in)")
    catalog.add_argument("--port", type=int, default=None, help="port (default: catalog.port from the config)")
    return parser


def _preflight(config) -> None:
    """Fail in a second, before any stage runs, on what would otherwise fail after the scrape."""
    from core.model import get_backbone

    for name in [config.train.backbone, *config.train.compare_backbones]:
        get_backbone(name).resolve_weights(config.train.weights, config.train.weights_fallback)


def _cmd_run(config, args) -> int:
    _preflight(config)
    from flows.pipeline import pipeline

    summary = pipeline(config, config_source=args.config)
    _print_outcome(config, summary)
    print(f"stj: images per class {summary['scrape']['per_class']}")
    return 0


def _print_outcome(config, summary) -> None:
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


def _cmd_train(config, args) -> int:
    _preflight(config)
    from configs.sweep import read_grid
    from flows.pipeline import train_pipeline

    grid = read_grid(args.sweep) if args.sweep else None
    if grid:
        from configs.sweep import override_config

        for overrides in grid:  # fail on a bad grid before anything runs
            override_config(config, overrides)
    _print_outcome(config, train_pipeline(config, config_source=args.config, grid_points=grid))
    return 0


def _cmd_serve(config, args) -> int:
    from mlflow.exceptions import MlflowException

    from serving.predictor import resolve_model
    from serving.server import serve

    try:
        resolve_model(config.model_uri, config.tracking.uri)
    except MlflowException:
        print(
            f"stj: error: no model at {config.model_uri} in {config.tracking.uri}; run `stj run` first", file=sys.stderr
        )
        return EXIT_USER_ERROR
    serve(config)
    return 0


def _cmd_schedule(config, args) -> int:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    from flows.pipeline import pipeline

    try:
        schedule = Cron(args.cron)
    except ValueError as exc:
        print(f"stj: error: --cron {args.cron!r}: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    pipeline.serve(
        name=args.name,
        schedules=[schedule],
        # Runs share one data folder and registry: a run due while the last one is still going is cancelled.
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        parameters={"config": config.model_dump(mode="json"), "config_source": args.config},
    )
    return 0


def _cmd_catalog(config, args) -> int:
    import time

    from catalog import running_catalog

    if config.catalog is None:
        print(f"stj: error: {args.config}: no 'catalog' section", file=sys.stderr)
        return EXIT_USER_ERROR
    with running_catalog(config.catalog, port=args.port) as server:
        print(f"stj: catalog at {server.base_url}/s?k=saree (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


COMMANDS = {
    "run": _cmd_run,
    "train": _cmd_train,
    "serve": _cmd_serve,
    "schedule": _cmd_schedule,
    "catalog": _cmd_catalog,
}


def _terminate_like_interrupt(signum: int, frame: object) -> None:
    # SIGTERM's default ends the process without running exit handlers, orphaning children such as
    # Prefect's temporary server; as an interrupt, every ``finally`` and atexit handler runs.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the config once, run the subcommand; returns the exit code."""
    signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    args = build_parser().parse_args(argv)
    from core.processes import guard_children

    guard_children()  # whatever this command starts ends with it, even on kill -9
    _quiet_environment()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from configs import UserError
    from flows.settings import load_run_config

    try:
        config = load_run_config(args.config, args.overrides)
        return COMMANDS[args.command](config, args)
    except UserError as exc:
        print(f"stj: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
