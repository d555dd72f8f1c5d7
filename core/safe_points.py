"""Interrupts raised at safe points while TensorFlow works.

A KeyboardInterrupt that a signal handler raises while TensorFlow's C++ has called back into Python (tracing a
function, flattening a structure, importing a module) is turned by TensorFlow into a ``SystemError``, printed
with a traceback and dropped. Inside :func:`deferring`, a command's signal handlers only record the signal
(:func:`defer`), and the next :func:`checkpoint` raises the KeyboardInterrupt (or what the deferring handler
raises, e.g. Prefect's ``TerminationSignal``) in plain Python: every epoch and batch call of a Keras loop
(:class:`training.fitting.fit.SafePoints`) and every embedding batch calls one. A stretch with no checkpoint gets
the signal again, undeferred, after :data:`FORCE_AFTER_S`.

Only the main thread defers: Python runs signal handlers there, and only there does an interrupt land.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

FORCE_AFTER_S = 2.0  # longest wait for a checkpoint before the signal is delivered as it comes
_depth = [0]  # :func:`deferring` blocks open in the main thread
_pending: list[Callable[[], object] | None] = []  # per signal recorded for the next checkpoint: how it is raised
_forcing = [False]  # the next signal is the forced one: it is not deferred


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def deferring() -> Iterator[None]:
    """While the block runs (in the main thread), interrupts wait for a :func:`checkpoint`; one still pending
    when the block ends normally is raised then."""
    if not _in_main_thread():
        yield
        return
    _depth[0] += 1
    try:
        yield
    finally:
        _depth[0] -= 1
        first = _pending[:1] if not _depth[0] else []
        if not _depth[0]:
            _pending.clear()
    if first:
        raise_interrupt(first[0])


def raise_interrupt(deliver: Callable[[], object] | None) -> None:
    """Raise a recorded signal's exception: what ``deliver`` raises, or a KeyboardInterrupt without one."""
    if deliver is not None:
        deliver()  # raises the handler's own exception
    raise KeyboardInterrupt


def _force(signum: int) -> None:
    if _pending:
        _forcing[0] = True
        os.kill(os.getpid(), signum)


def defer(signum: int, deliver: Callable[[], object] | None = None) -> bool:
    """Called by a signal handler: True when the signal was recorded for the next :func:`checkpoint` (inside
    :func:`deferring`), False when the handler should raise now (outside, or the forced delivery). ``deliver``
    raises the signal's exception at the checkpoint; without it, a KeyboardInterrupt is raised."""
    if _forcing[0] or not _depth[0]:
        _forcing[0] = False
        return False
    if not _pending:
        timer = threading.Timer(FORCE_AFTER_S, _force, (signum,))
        timer.daemon = True
        timer.start()
    _pending.append(deliver)
    return True


def checkpoint() -> None:
    """Raise the interrupt a deferred signal is waiting to raise, if any (O(1))."""
    if _pending and _in_main_thread():
        deliver = _pending[0]
        _pending.clear()
        raise_interrupt(deliver)
