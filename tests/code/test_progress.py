"""Progress: a bar on a terminal; in a piped log, a line every few seconds and at the end of a long step."""

from __future__ import annotations

import logging

import pytest

from core.progress import Progress


@pytest.fixture
def lines(caplog):
    caplog.set_level(logging.INFO, logger="core.progress")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "core.progress"]


def test_a_piped_log_gets_a_line_per_interval_with_the_count_and_the_note(lines) -> None:
    with Progress(3, "saree: silk saree", "page", terminal=False, every_s=0) as progress:
        progress.note("12 saree photos kept")
        progress.update()
        progress.update(2)
    logged = lines()
    assert len(logged) == 3  # two intervals and the closing line
    assert logged[0].startswith("saree: silk saree: 1/3 page (")
    assert logged[-1].startswith("saree: silk saree: 3/3 page (")
    assert logged[-1].endswith(", 12 saree photos kept")


def test_a_short_step_stays_quiet_unless_its_count_is_the_summary(lines) -> None:
    with Progress(5, "embedding", "img", terminal=False, every_s=60) as progress:
        progress.update(5)
    assert lines() == []
    with Progress(5, "head epochs", "epoch", terminal=False, every_s=60, summary=True) as progress:
        progress.update(5)
    assert [line.split(" (")[0] for line in lines()] == ["head epochs: 5/5 epoch"]


def test_a_terminal_gets_a_bar_and_no_log_lines(lines, capsys) -> None:
    with Progress(4, "embedding (tensorflow-f32)", "img", terminal=True, every_s=0, summary=True) as progress:
        progress.update(4)
    assert lines() == []
    assert "embedding (tensorflow-f32): 100%" in capsys.readouterr().err


def test_disabled_shows_nothing(lines, capsys) -> None:
    for terminal in (True, False):
        with Progress(2, "embedding", "img", enabled=False, terminal=terminal, every_s=0, summary=True) as p:
            p.update(2)
    assert capsys.readouterr().err == ""
    assert lines() == []


def test_quiet_logging_hides_the_bar_and_the_lines(lines, capsys) -> None:
    logging.getLogger("core.progress").setLevel(logging.WARNING)  # what --quiet does to STJ's loggers
    for terminal in (True, False):
        with Progress(2, "embedding", "img", terminal=terminal, every_s=0, summary=True) as p:
            p.update(2)
    assert capsys.readouterr().err == ""
    assert lines() == []
