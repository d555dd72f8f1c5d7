"""What an interrupted command tells its user: which stage was running, and what happens next.

The pipeline marks the stage it enters (:func:`entering`); Ctrl-C or SIGTERM then ends the command with one
line from :func:`interrupted_message` instead of a traceback. :func:`install_handlers` makes SIGTERM stop a
command the way Ctrl-C does, and makes sure neither is lost.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from core.safe_points import defer, deferring, raise_interrupt

_running: list[str] = []  # the stage being run, innermost last (a process runs one command)
# per interrupting signal that arrived while :func:`interrupt_wins` watched: how it is raised (None: KeyboardInterrupt)
_received: list[Callable[[], object] | None] = []
_watched = [0]  # calls of :func:`interrupt_wins` running now (no lock: Prefect pickles the wrapper's globals)
_command_handles_sigterm = [False]  # :func:`install_handlers` ran: SIGTERM is this command's, not a worker's
RESEND_AFTER_S = 1.0  # an interrupt swallowed by native code is sent again this often while the stage runs
F = TypeVar("F", bound=Callable[..., Any])

RESUMES = {
    "scrape": "photos saved so far stay in the manifest; the next run scrapes only what is missing",
    "validate": "the next run checks the data again",
    "prepare": "the split is written whole or not at all; the next run makes it again",
    "train": "no model was published, an open MLflow run is marked KILLED; the next run trains again",
    "publish": "the gate decides again on the next run",
    "serve": "the server and its workers are stopped",
    "catalog": "the catalog is stopped",
    "schedule": "the deployment is no longer served",
    "deploy": "the deployment stays registered; a run already started goes on on its worker",
}


def _resend_while_watched(signum: int) -> None:
    """Send ``signum`` again (in a while) if a watched stage is still running then: native code that swallowed
    the interrupt and printed it (TensorFlow, hit while it imports or traces) would otherwise let training go
    on as if never told to stop. The next one lands in ordinary Python code. Stops once the stage has ended."""

    def again() -> None:
        if _watched[0]:
            os.kill(os.getpid(), signum)

    timer = threading.Timer(RESEND_AFTER_S, again)
    timer.daemon = True
    timer.start()


def _terminate_like_interrupt(signum: int, frame: object) -> None:
    # SIGTERM's default ends the process without running exit handlers, orphaning children such as
    # Prefect's temporary server; as an interrupt, every ``finally`` and atexit handler runs.
    _received.append(None)
    if defer(signum):
        return
    _resend_while_watched(signum)
    raise KeyboardInterrupt


def _record_interrupt(signum: int, frame: object) -> None:
    _received.append(None)
    if defer(signum):
        return
    _resend_while_watched(signum)
    signal.default_int_handler(signum, frame)


def _deferring_to(handler: Callable[[int, Any], object]) -> Callable[[int, Any], None]:
    """A signal handler that runs ``handler`` (Prefect's flow-run SIGTERM bridge) at the stage's next safe point."""

    def deferred(signum: int, frame: Any) -> None:
        deliver = functools.partial(handler, signum, None)
        _received.append(deliver)
        if defer(signum, deliver):
            return
        _resend_while_watched(signum)
        handler(signum, frame)

    return deferred


def interrupt_wins(fn: F) -> F:
    """Decorate a stage call so that an interrupt arriving during it always ends it as an interrupt.

    Native code can swallow the KeyboardInterrupt a signal raises in a callback: TensorFlow, tracing a function
    when Ctrl-C lands, turns it into ``SystemError: bad argument to internal function``. Any error raised
    after Ctrl-C or SIGTERM arrived becomes the interrupt again (so does a normal return after one), so the
    command stops with its one line; while the stage goes on after one (the error was printed and dropped),
    the signal is sent again every second.

    Prefect's flow engine puts its own SIGTERM handler (raise ``TerminationSignal`` wherever it lands) over the
    command's for the whole flow run: inside TensorFlow's callbacks that exception is printed and dropped (training
    went on), or it surfaces as that ``SystemError`` and the flow run fails instead of stopping. So in a ``stj``
    command (:func:`install_handlers` ran) the stage takes SIGTERM back for its duration (deferred to a safe point
    like Ctrl-C, ending as the command's interrupt) and gives Prefect's handler back after. In a deployment's
    flow-run process (the runner stops it with SIGTERM, on cancel and on shutdown) Prefect's handler stays the
    one that decides, but runs at the stage's next safe point: the stage ends with Prefect's ``TerminationSignal``.
    While it is deferred, the process cannot acknowledge a cancel on Prefect's control channel, so a run
    cancelled mid-stage first reports Crashed; the runner then sets Cancelled (forced), as it does for any
    process that did not acknowledge.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        arrived = len(_received)
        main = threading.current_thread() is threading.main_thread()
        # Only in the main thread, and only over Python's own handler: asyncio installs its Ctrl-C handling
        # only when it finds that one, so the swap lasts just this call.
        watch = main and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if watch:
            signal.signal(signal.SIGINT, _record_interrupt)
        term_before = _take_sigterm() if main else None
        _watched[0] += 1
        try:
            result = fn(*args, **kwargs)
        except Exception:
            if len(_received) == arrived:
                raise
        finally:
            _watched[0] -= 1
            if watch:
                signal.signal(signal.SIGINT, signal.default_int_handler)
            if term_before is not None:
                signal.signal(signal.SIGTERM, term_before)
        if len(_received) == arrived:
            return result
        # swallowed, then an error or even a normal return: either way the command was told to stop
        raise_interrupt(_received[-1])  # outside the handler: the swallowed error is not this one's context

    return wrapper  # type: ignore[return-value]


def _take_sigterm() -> Any:
    """Install the stage's SIGTERM handler (main thread); return the one to give back after, or None."""
    if _command_handles_sigterm[0]:
        return signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    current = signal.getsignal(signal.SIGTERM)
    if not callable(current):  # the default or ignored: no Python handler would raise inside TensorFlow
        return None
    return signal.signal(signal.SIGTERM, _deferring_to(current))


def at_safe_points(fn: F) -> F:
    """Decorate a stage that runs TensorFlow: an interrupt during it is raised at the stage's next safe point
    (:mod:`core.safe_points`), never inside TensorFlow's callbacks, where it would be printed as a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with deferring():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _swallowed_signal(exc: BaseException | None) -> int | None:
    """The signal behind an interrupt exception (KeyboardInterrupt, Prefect's TerminationSignal), if it is one."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if type(exc).__name__ == "TerminationSignal" and isinstance(getattr(exc, "signal", None), int):
        return exc.signal
    return None


def redeliver_swallowed_interrupts() -> None:
    """An interrupt (Ctrl-C, or Prefect's SIGTERM exception) swallowed by a finalizer is sent again; any other
    unraisable exception goes to the hook installed before."""
    previous = sys.unraisablehook

    def hook(unraisable: object) -> None:
        # A signal's exception raised while a finalizer (``__del__``, e.g. GitPython's Repo during a garbage
        # collection) runs is printed and dropped by Python, and the command would go on as if never told to
        # stop. Send the signal again, from another thread so that it lands in ordinary code.
        signum = _swallowed_signal(getattr(unraisable, "exc_value", None))
        if signum is None:
            previous(unraisable)
            return
        resend = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        resend.daemon = True
        resend.start()

    sys.unraisablehook = hook


def install_handlers() -> None:
    """SIGTERM stops the command like Ctrl-C; an interrupt swallowed by a finalizer is sent again."""
    signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    _command_handles_sigterm[0] = True
    redeliver_swallowed_interrupts()


def entering(stage: str) -> None:
    """Record that ``stage`` is now running (until :func:`leaving`)."""
    _running.append(stage)


def leaving(stage: str) -> None:
    """Record that ``stage`` ended."""
    if stage in _running:
        _running.remove(stage)


def current_stage(default: str) -> str:
    """The stage running now, or ``default`` (the command) when none is marked."""
    return _running[-1] if _running else default


def interrupted_message(command: str) -> str:
    """One line: what was interrupted, and what the next run does about it."""
    stage = current_stage(command)
    where = f"stj {command}" if stage == command else f"stj {command} during {stage}"
    outcome = RESUMES.get(stage, "the next run starts from what was saved")
    return f"stj: interrupted {where}; {outcome}."
