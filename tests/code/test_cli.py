"""The command line's own logic: suggestions for a mistyped command, the interrupt line, batch-scoring paths."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from configs import ConfigError
from flows import commands, interrupts
from flows.cli import build_parser, flag_overrides, suggest_command
from flows.logs import STJ_LOGGERS, adopt_command_settings
from flows.settings import load_run_config
from serving.scoring import NoImages, expand_paths

COMMANDS = list(commands.COMMANDS)


def test_a_mistyped_command_gets_the_closest_one() -> None:
    assert "did you mean 'status'?" in suggest_command(["stauts", "-c", "x.yaml"], COMMANDS)
    assert "did you mean" not in suggest_command(["zzz"], COMMANDS)
    assert suggest_command(["run", "-c", "x.yaml"], COMMANDS) is None
    assert suggest_command(["--help"], COMMANDS) is None


def test_every_command_has_examples_in_its_help() -> None:
    parser = build_parser()
    assert sorted(parser._subparsers._group_actions[0].choices) == sorted(COMMANDS)
    for name in COMMANDS:
        sub = parser._subparsers._group_actions[0].choices[name]
        assert f"stj {name}" in sub.format_help() and "examples:" in sub.format_help(), name


def test_serve_host_and_port_are_config_values_checked_by_the_schema() -> None:
    args = build_parser().parse_args(["serve", "--set", "serve.port=1", "--host", "::", "--port", "9000"])
    config = load_run_config("configs/demo.yaml", [*args.overrides, *flag_overrides(args)])
    assert (config.serve.host, config.serve.port) == ("::", 9000)  # over the file and over --set
    too_big = build_parser().parse_args(["serve", "--port", "70000"])
    with pytest.raises(ConfigError, match="serve.port: Input should be less than or equal to 65535"):
        load_run_config("configs/demo.yaml", flag_overrides(too_big))
    assert flag_overrides(build_parser().parse_args(["catalog", "--port", "9"])) == []  # the catalog's own


def test_the_interrupt_line_names_the_stage_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interrupts, "_running", [])
    assert interrupts.interrupted_message("catalog") == "stj: interrupted stj catalog; the catalog is stopped."
    interrupts.entering("scrape")
    interrupts.entering("train")
    interrupts.leaving("scrape")
    assert interrupts.interrupted_message("run").startswith("stj: interrupted stj run during train; no model")


def test_paths_expand_files_folders_and_globs_once_each(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ["a/1.jpg", "a/2.PNG", "a/notes.txt", "3.webp"]:
        (tmp_path / name).write_bytes(b"x")
    found = expand_paths([str(tmp_path / "a"), str(tmp_path / "*.webp"), str(tmp_path / "a" / "1.jpg")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == ["a/1.jpg", "a/2.PNG", "3.webp"]
    with pytest.raises(NoImages, match="nowhere: no such file"):
        expand_paths([str(tmp_path / "nowhere")])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("x")
    with pytest.raises(NoImages, match="no image files"):
        expand_paths([str(tmp_path / "b")])


def test_a_scheduled_runs_process_takes_the_commands_log_level(monkeypatch) -> None:
    saved = {name: logging.getLogger(name).level for name in STJ_LOGGERS}
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # restored after the test
    try:
        for name in STJ_LOGGERS:
            logging.getLogger(name).setLevel(logging.NOTSET)
        adopt_command_settings({"PREFECT_LOGGING_LEVEL": "WARNING"})
        assert {logging.getLogger(name).level for name in STJ_LOGGERS} == {logging.WARNING}
        assert sys.unraisablehook.__qualname__.startswith("redeliver_swallowed_interrupts")
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def test_tensorflows_retracing_notice_is_dropped_and_its_other_warnings_kept(caplog) -> None:
    from flows.logs import _DropRetracingNotice, drop_retracing_notices

    tf_log = logging.getLogger("tensorflow")
    saved = list(tf_log.filters)
    try:
        drop_retracing_notices()
        drop_retracing_notices()  # once per process, however often it is called
        assert sum(isinstance(f, _DropRetracingNotice) for f in tf_log.filters) == 1
        with caplog.at_level(logging.WARNING, logger="tensorflow"):
            tf_log.warning("5 out of the last 9 calls to <function f> triggered tf.function retracing. Tracing is")
            tf_log.warning("a warning a user should see")
        assert [r.getMessage() for r in caplog.records if r.name == "tensorflow"] == ["a warning a user should see"]
    finally:
        tf_log.filters[:] = saved
