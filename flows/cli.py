"""``stj``: the one entry point. ``stj --help`` lists the commands, ``stj COMMAND --help`` shows examples.

Config values come from, highest first: ``--set section.key=value``, the environment (``STJ_SECTION__KEY``,
``MLFLOW_TRACKING_URI``), the ``--config`` file (default ``$STJ_CONFIG`` or ``configs/stj.yaml``), defaults.
User mistakes (bad config, missing weights, no model yet) print one line and exit 2; an interrupt (Ctrl-C,
SIGTERM) stops the command, says what was interrupted, and exits 130.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import re
import sys
import tempfile
import warnings

from flows.interrupts import install_handlers, interrupted_message
from flows.logs import STJ_LOGGERS, drop_retracing_notices, set_stj_level

EXIT_USER_ERROR = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def quiet_environment() -> None:
    """Settings and log filters that keep a run's output to what a user can act on (as `stj` runs it)."""
    # Set before TensorFlow / Prefect are imported: both read these at import time.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", ",".join(STJ_LOGGERS))
    # The scrape's query threads log their progress outside any flow run's context: those lines go to the
    # console as always; without this, Prefect also prints a UserWarning for each one it cannot send to its API.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # bars with ANSI codes in piped logs
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call otherwise
    logging.getLogger("absl").setLevel(logging.WARNING)  # Keras logs its progress bars (ANSI codes) here
    drop_retracing_notices()
    # Keras warns on every call of a model whose one input is named ("image") when given a plain tensor: the
    # call is right, the warning says nothing a user can act on.
    warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match the expected structure")
    # A logged model is loaded to predict, never to resume training: its optimizer's state is not needed.
    warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")


EXAMPLES = {
    "run": """examples:
  stj run --config configs/demo.yaml                  # the offline demo: local catalog, train, publish
  stj run --config configs/stj.yaml --set train.epochs=10
  STJ_TRAIN__BACKBONE=efficientnet_lite0 stj run -c configs/demo.yaml""",
    "demo": """examples:
  stj demo -c configs/demo.yaml                       # offline catalog, train, publish, then serve on :8000""",
    "train": """examples:
  stj train -c configs/demo.yaml                      # re-train on the photos already scraped
  stj train -c configs/demo.yaml --sweep configs/sweep.yaml""",
    "scrape": """examples:
  stj scrape -c configs/demo.yaml                     # the scrape stage alone, then its report
  stj scrape -c configs/stj.yaml --set scrape.max_pages=2""",
    "serve": """examples:
  stj serve -c configs/demo.yaml                      # http://127.0.0.1:8000
  stj serve -c configs/demo.yaml --host 0.0.0.0 --port 9000""",
    "predict": """examples:
  stj predict -c configs/demo.yaml photo.jpg shop/ "more/*.png"
  stj predict -c configs/demo.yaml data/demo/raw/jeans --format jsonl --output scores.jsonl
  stj predict --url http://127.0.0.1:8000 photo.jpg   # against a running `stj serve`""",
    "export": """examples:
  stj export -c configs/demo.yaml --format openvino --output exported/
  stj export -c configs/demo.yaml --format saved_model --output exported/ --version 3""",
    "status": """examples:
  stj status -c configs/demo.yaml
  stj status -c configs/demo.yaml --json | jq .champion""",
    "promote": """examples:
  stj promote 3 -c configs/stj.yaml --reason "better on the new sarees"   # infra check, then @champion -> 3
  stj promote 4 --as challenger -c configs/stj.yaml   # replicas score a share of live traffic with 4 in shadow
  stj promote challenger -c configs/stj.yaml          # @champion -> the challenger, if shadow and gate allow
  stj promote none --as challenger -c configs/stj.yaml   # stop the shadow""",
    "rollback": """examples:
  stj rollback -c configs/stj.yaml                    # @champion back to the version it held before
  stj rollback -c configs/stj.yaml --to 2 --reason "complaints about jeans\"""",
    "schedule": """examples:
  stj schedule -c configs/stj.yaml --cron "0 3 * * 1"  # every Monday at 03:00
  stj schedule -c configs/stj.yaml --cron "0 3 * * 1" --monitor-cron "0 * * * *"  # and drift checks hourly
  PREFECT_API_URL=http://127.0.0.1:4200/api stj schedule -c configs/stj.yaml --cron "@daily\"""",
    "deploy": """examples:
  source .team/env                                     # after `make team-up`: the team's Prefect server
  stj deploy -c configs/demo.yaml --cron "0 3 * * 1"   # a worker on pool 'stj' runs it every Monday at 03:00
  stj deploy -c configs/demo.yaml --run                # register, run once now, wait for the run
  stj deploy -c configs/demo.yaml --cron "0 3 * * 1" --monitor-cron "0 * * * *"   # and stj-monitor hourly""",
    "monitor": """examples:
  stj monitor -c configs/stj.yaml                      # the last monitor.window_hours (24) of live traffic
  stj monitor -c configs/stj.yaml --since 2026-12-01T00:00 --until 2026-12-02T00:00""",
    "admin": """examples:
  stj admin grant ann@example.com -c configs/stj.yaml   # ann becomes an admin""",
    "catalog": """examples:
  stj catalog -c configs/demo.yaml                    # then open http://127.0.0.1:8765/s?k=saree
  stj catalog -c configs/demo.yaml --port 9999""",
}


# What TensorFlow's C++ side prints on import, once per shared library, whatever TF_CPP_MIN_LOG_LEVEL says
# (it is written before absl's logging is initialised): nothing a user can act on.
TF_IMPORT_NOISE = re.compile(r"absl::InitializeLog|oneDNN custom operations|cpu_feature_guard|rebuild TensorFlow")
NEEDS_TENSORFLOW = {"run", "demo", "train", "serve", "predict", "export", "deploy", "promote", "rollback"}


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with standard error held back, then pass on every line but its start-up notices."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        for line in held.read().decode(errors="replace").splitlines():
            if not TF_IMPORT_NOISE.search(line):
                print(line, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(
        prog="stj",
        description="Scrape product photos, train, track and serve an image classifier.",
        epilog="`stj COMMAND --help` shows a command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text[0].upper() + help_text[1:] + ".",
            epilog=EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument(
            "--config",
            "-c",
            default=os.environ.get("STJ_CONFIG", "configs/stj.yaml"),
            help="YAML config file (default: $STJ_CONFIG or configs/stj.yaml)",
        )
        p.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override one config value, e.g. --set train.epochs=5 (repeatable; wins over the environment)",
        )
        loudness = p.add_mutually_exclusive_group()
        loudness.add_argument("--quiet", "-q", action="store_true", help="only warnings, errors and the result")
        loudness.add_argument("--verbose", "-v", action="store_true", help="debug logs too")
        return p

    add("run", "run scrape -> validate -> prepare -> train -> publish once")
    add("demo", "run the pipeline once, then serve its champion (what `make demo` runs)")
    train = add("train", "prepare -> train (or a sweep) -> publish on the photos already scraped")
    train.add_argument("--sweep", default=None, help="YAML file with a 'grid' of config values to try")
    add("scrape", "run the scrape stage alone and print its report")
    serve = add("serve", "serve the registered model over HTTP (nginx + gunicorn)")
    serve.add_argument("--host", default=None, help="address to listen on (default: serve.host)")
    serve.add_argument("--port", type=int, default=None, help="port (default: serve.port)")
    predict = add("predict", "score image files, folders or globs with the registered model (or a server)")
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image file, folder (searched recursively) or glob")
    predict.add_argument("--url", default=None, help="a running `stj serve` to ask instead of loading the model")
    predict.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="output format (default: csv)")
    predict.add_argument("--output", "-o", default=None, help="write here instead of standard output")
    export = add("export", "write the registered model in a format other tools load")
    export.add_argument("--format", required=True, choices=["onnx", "openvino", "saved_model"])
    export.add_argument("--output", "-o", required=True, help="folder to write into (created)")
    export.add_argument("--version", default=None, help="model version (default: the alias, e.g. @champion)")
    status = add("status", "show the champion, the last run and its gate decision, and the data per class")
    status.add_argument("--json", action="store_true", help="print it as JSON")
    promote = add("promote", "move @champion to a registered version, after checking it in a real server")
    promote.add_argument(
        "version",
        metavar="N",
        help="the registered version to serve; `challenger`: the challenger, if its shadow tally and the gate allow; "
        "`none` with --as challenger: remove the challenger",
    )
    promote.add_argument(
        "--as",
        dest="as_alias",
        choices=("champion", "challenger"),
        default="champion",
        help="challenger: score live traffic with N in shadow instead of serving it (default: champion)",
    )
    promote.add_argument("--reason", default=None, help="why (kept in the alias history)")
    rollback = add("rollback", "move @champion back to the version it held before (or --to N), after the same check")
    rollback.add_argument("--to", default=None, metavar="N", help="the registered version to go back to")
    rollback.add_argument("--reason", default=None, help="why (kept in the alias history)")
    schedule = add("schedule", "serve the pipeline as a Prefect deployment on a cron schedule")
    schedule.add_argument("--cron", required=True, help='cron expression, e.g. "0 3 * * 1"')
    schedule.add_argument("--name", default="stj-scheduled", help="deployment name (default: %(default)s)")
    schedule.add_argument(
        "--monitor-cron", default=None, help="also run `stj monitor` on this cron (its own deployment)"
    )
    deploy = add("deploy", "register the pipeline on a work pool of a Prefect server (a `prefect worker` runs it)")
    deploy.add_argument("--cron", default=None, help='cron expression, e.g. "0 3 * * 1" (default: no schedule)')
    deploy.add_argument("--name", default="stj-team", help="deployment name (default: %(default)s)")
    deploy.add_argument("--pool", default="stj", help="process work pool (default: %(default)s)")
    deploy.add_argument("--run", action="store_true", help="run it once now and wait for the run to end")
    deploy.add_argument("--monitor-cron", default=None, help="also deploy `stj monitor` on this cron")
    admin = add("admin", "manage the server's accounts: grant an account the admin role")
    admin.add_argument("action", choices=["grant"], help="grant: make EMAIL an admin")
    admin.add_argument("email", metavar="EMAIL", help="the account's address")
    monitor = add("monitor", "judge a window of live traffic against the champion's training baseline; report, alert")
    monitor.add_argument("--since", default=None, help="window start, ISO 8601 (default: monitor.window_hours ago)")
    monitor.add_argument("--until", default=None, help="window end, ISO 8601 (default: now)")
    catalog = add("catalog", "serve the local Amazon-like catalog (offline stand-in for amazon.in)")
    catalog.add_argument("--port", type=int, default=None, help="port (default: catalog.port from the config)")
    return parser


def suggest_command(argv: list[str], commands: list[str]) -> str | None:
    """A "did you mean" line when the first word is not a command but is close to one."""
    word = next((a for a in argv if not a.startswith("-")), None)
    if word is None or word in commands:
        return None
    close = difflib.get_close_matches(word, commands, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"stj: error: unknown command '{word}'; {hint}(commands: {', '.join(commands)})"


def flag_overrides(args: argparse.Namespace) -> list[str]:
    """Options that are config values (``stj serve --host/--port``) as overrides, validated by the schema like
    any ``--set`` and applied after them."""
    if args.command != "serve":
        return []
    given = {"host": args.host, "port": args.port}
    return [f"serve.{key}={json.dumps(value)}" for key, value in given.items() if value is not None]


def configure_logging(args: argparse.Namespace) -> None:
    """INFO by default; ``--quiet``: warnings and up; ``--verbose``: debug for STJ's own loggers."""
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", logging.getLevelName(max(level, logging.INFO)))
    set_stj_level(level)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the config once, run the subcommand; returns the exit code."""
    from flows.commands import COMMANDS

    argv = sys.argv[1:] if argv is None else argv
    if message := suggest_command(argv, list(COMMANDS)):
        print(message, file=sys.stderr)
        return EXIT_USER_ERROR
    install_handlers()
    args = build_parser().parse_args(argv)
    from core.processes import guard_children

    guard_children()  # whatever this command starts ends with it, even on kill -9
    quiet_environment()
    configure_logging(args)
    if args.command in NEEDS_TENSORFLOW and not getattr(args, "url", None):
        import_tensorflow_quietly()
    from configs import UserError
    from flows.settings import load_run_config

    try:
        config = load_run_config(args.config, [*args.overrides, *flag_overrides(args)], environ=os.environ)
        return COMMANDS[args.command](config, args)
    except UserError as exc:
        print(f"stj: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(interrupted_message(args.command), file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
