"""An interrupt that lands while a finalizer runs is not lost: the command still stops."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A finalizer that is running when the signal arrives: Python prints and drops the exception raised there.
SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, sys, time
    from flows.interrupts import install_handlers

    if sys.argv[1] == "installed":
        install_handlers()

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))
            time.sleep(0.5)

    try:
        Finalized()
        gc.collect()
        time.sleep(5)
        print("went on")
    except KeyboardInterrupt:
        print("interrupted")
    """
)


def _run(handlers: str, signal_name: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, handlers, signal_name], capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_swallowed_by_a_finalizer_is_sent_again(signal_name: str) -> None:
    assert _run("installed", signal_name) == "interrupted"


def test_without_the_handlers_python_drops_a_ctrl_c_raised_in_a_finalizer() -> None:
    # the case the handlers exist for: plain Python carries on as if never interrupted
    assert _run("plain", "SIGINT") == "went on"
