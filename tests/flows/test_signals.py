"""An interrupt that lands while a finalizer runs is not lost: the command still stops."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A finalizer that is running when the signal arrives: Python prints and drops the exception raised there.
SCRIPT = textwrap.dedent(
    """
    import contextlib, gc, os, signal, sys, time
    from flows.interrupts import install_handlers, redeliver_swallowed_interrupts

    class TerminationSignal(BaseException):
        pass

    handlers, what = sys.argv[1], sys.argv[2]
    if handlers == "installed":
        install_handlers()
    if handlers == "prefect":  # a deployment's flow-run process: Prefect turns SIGTERM into TerminationSignal
        from prefect.exceptions import TerminationSignal
        from prefect.utilities.engine import capture_sigterm

        redeliver_swallowed_interrupts()

    class Finalized:
        def __del__(self):
            if what == "error":
                raise ValueError("an ordinary error in a finalizer")
            os.kill(os.getpid(), getattr(signal, what))
            time.sleep(0.5)

    with capture_sigterm() if handlers == "prefect" else contextlib.nullcontext():
        try:
            Finalized()
            gc.collect()
            time.sleep(3)  # a signal sent again lands within 0.05 s
            print("went on")
        except KeyboardInterrupt:
            print("interrupted")
        except TerminationSignal:
            print("terminated")
    """
)


def _run(handlers: str, what: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, handlers, what], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_interrupt_swallowed_by_a_finalizer_is_sent_again(signal_name: str) -> None:
    assert _run("installed", signal_name).stdout.strip() == "interrupted"


def test_prefects_termination_signal_swallowed_by_a_finalizer_is_sent_again() -> None:
    assert _run("prefect", "SIGTERM").stdout.strip() == "terminated"


def test_without_the_handlers_python_drops_a_ctrl_c_raised_in_a_finalizer() -> None:
    # the case the handlers exist for: plain Python carries on as if never interrupted
    assert _run("plain", "SIGINT").stdout.strip() == "went on"


def test_other_errors_in_finalizers_are_still_printed_and_dropped() -> None:
    done = _run("installed", "error")
    assert done.stdout.strip() == "went on"
    assert "ValueError: an ordinary error in a finalizer" in done.stderr  # by the hook installed before ours


# A stage whose native code swallows the interrupt raised in a callback and fails with another error, as
# TensorFlow does when Ctrl-C lands while it traces a function.
SWALLOWING_STAGE = textwrap.dedent(
    """
    import contextlib, os, signal, sys, time
    from flows.interrupts import install_handlers, interrupt_wins

    class TerminationSignal(BaseException):
        pass

    in_flow_run = sys.argv[4:] == ["in a flow-run process"]  # Prefect's SIGTERM bridge, no command handlers
    if in_flow_run:  # Prefect is imported only here: it takes ~1.7 s
        from prefect.exceptions import TerminationSignal
        from prefect.utilities.engine import capture_sigterm
    else:
        install_handlers()

    def stage(signal_name):
        try:
            if signal_name != "none":
                os.kill(os.getpid(), getattr(signal, signal_name))
                time.sleep(5)
        except (KeyboardInterrupt, TerminationSignal):
            pass
        if sys.argv[3] == "returns":
            return "carried on"
        if sys.argv[3] == "goes on":  # as training did after TensorFlow printed the swallowed error
            while True:
                time.sleep(0.05)
        raise SystemError("Objects/listobject.c:338: bad argument to internal function")

    if sys.argv[2] == "wrapped":
        stage = interrupt_wins(stage)
    with capture_sigterm() if in_flow_run else contextlib.nullcontext():
        try:
            stage(sys.argv[1])
        except KeyboardInterrupt:
            print("interrupted")
        except TerminationSignal:
            print("terminated")
        except SystemError:
            print("error")
    print("restored" if signal.getsignal(signal.SIGINT) is signal.default_int_handler else "replaced")
    """
)


def _run_stage(signal_name: str, wrapped: str, ending: str = "raises", where: str = "in a command") -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SWALLOWING_STAGE, signal_name, wrapped, ending, where],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.stdout.split()


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_an_error_after_an_interrupt_ends_the_stage_as_the_interrupt(signal_name: str) -> None:
    assert _run_stage(signal_name, "wrapped") == ["interrupted", "restored"]


def test_a_stage_that_swallows_an_interrupt_and_returns_still_ends_as_the_interrupt() -> None:
    assert _run_stage("SIGINT", "wrapped", "returns") == ["interrupted", "restored"]


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_stage_that_swallows_an_interrupt_and_goes_on_is_interrupted_again(signal_name: str) -> None:
    # without the signal sent again, the stage would run until the subprocess timeout fails the test
    assert _run_stage(signal_name, "wrapped", "goes on") == ["interrupted", "restored"]


@pytest.mark.parametrize(("ending", "expected"), [("raises", "terminated"), ("goes on", "terminated")])
def test_in_a_deployments_flow_run_an_error_after_sigterm_ends_the_stage_as_prefects_termination(
    ending: str, expected: str
) -> None:
    # before stages watched Prefect's SIGTERM, the flow run failed with the SystemError and alerted (seen in CI)
    assert _run_stage("SIGTERM", "wrapped", ending, "in a flow-run process") == [expected, "restored"]
    assert _run_stage("SIGTERM", "plain", "raises", "in a flow-run process") == ["error", "restored"]


def test_an_error_without_an_interrupt_stays_that_error() -> None:
    assert _run_stage("none", "wrapped") == ["error", "restored"]


def test_unwrapped_the_swallowed_interrupt_is_lost() -> None:
    # the case the wrapper exists for
    assert _run_stage("SIGINT", "plain") == ["error", "restored"]


# A stage that runs TensorFlow: the signal arrives while "native code" runs (here: the stage's own code, which
# must not see it); the interrupt comes at the next safe point, or, with none, a moment later anyway.
SAFE_POINT_STAGE = textwrap.dedent(
    """
    import os, signal, sys, time
    from core.safe_points import checkpoint
    from flows.interrupts import at_safe_points, install_handlers, interrupt_wins

    class TerminationSignal(BaseException):
        pass

    where = sys.argv[3] if sys.argv[3:] else "in a command"
    if where != "in a command":  # as in a flow run: Prefect's SIGTERM bridge over the command's
        from prefect.exceptions import TerminationSignal
        from prefect.utilities.engine import capture_sigterm, is_prefect_sigterm_handler_installed
    if where != "in a flow-run process":  # a deployment's flow run: the runner's SIGTERM is Prefect's to handle
        install_handlers()

    @interrupt_wins
    @at_safe_points
    def stage(signal_name, then):
        os.kill(os.getpid(), getattr(signal, signal_name))
        time.sleep(0.2)  # the handler has run by now: it raised nothing here
        print("not raised inside", flush=True)
        if then == "checkpoint":
            checkpoint()
        if then == "no checkpoint":
            time.sleep(20)  # no safe point comes: the signal is delivered again, as it comes
        print("went on", flush=True)

    def run():
        try:
            stage(sys.argv[1], sys.argv[2])
        except KeyboardInterrupt:
            print("interrupted")
        except TerminationSignal:
            print("terminated")

    if where != "in a command":
        with capture_sigterm():
            run()
            print("prefect's handler back" if is_prefect_sigterm_handler_installed() else "prefect's handler lost")
    else:
        run()
    checkpoint()  # nothing is left pending after the stage
    print("clean")
    """
)


def _run_safe_point_stage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SAFE_POINT_STAGE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    ("then", "expected"),
    [
        ("checkpoint", ["not raised inside", "interrupted", "clean"]),
        ("no checkpoint", ["not raised inside", "interrupted", "clean"]),
        ("returns", ["not raised inside", "went on", "interrupted", "clean"]),
    ],
)
def test_an_interrupt_in_a_stage_at_safe_points_is_raised_at_the_next_one(
    signal_name: str, then: str, expected: list[str]
) -> None:
    done = _run_safe_point_stage(signal_name, then)
    assert done.stdout.splitlines() == expected, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def test_sigterm_in_a_flow_run_waits_for_the_safe_point_and_prefects_handler_comes_back() -> None:
    # Prefect's flow engine raises its TerminationSignal wherever SIGTERM lands, even inside TensorFlow's
    # callbacks, where it was printed and dropped and training went on (seen in CI)
    done = _run_safe_point_stage("SIGTERM", "checkpoint", "in a command's flow run")
    assert done.stdout.splitlines() == ["not raised inside", "interrupted", "prefect's handler back", "clean"], (
        done.stdout + done.stderr
    )


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        ("checkpoint", ["not raised inside", "terminated"]),
        ("no checkpoint", ["not raised inside", "terminated"]),
        ("returns", ["not raised inside", "went on", "terminated"]),
    ],
)
def test_sigterm_in_a_deployments_flow_run_is_prefects_termination_at_the_next_safe_point(
    then: str, expected: list[str]
) -> None:
    # The runner stops its flow-run process with SIGTERM (cancel, shutdown): TerminationSignal raised inside
    # TensorFlow surfaced as "SystemError: bad argument to internal function" and the run failed (seen in CI)
    done = _run_safe_point_stage("SIGTERM", then, "in a flow-run process")
    assert done.stdout.splitlines() == [*expected, "prefect's handler back", "clean"], done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
