"""No orphans: the processes a command starts die with it, even when it is killed with SIGKILL.

Two mechanisms, because STJ does not start every child itself (Prefect starts its temporary server,
chromedriver starts Chromium):

- :func:`die_with_parent`, for children STJ starts itself from the main thread (nginx): the kernel sends
  them SIGTERM when their parent dies.
- :func:`guard_children`, once per command: a small watchdog process, in a session of its own, that keeps
  a list of the command's descendants (every 0.5 s) and, the moment the command is gone however it ended,
  terminates whatever on that list still runs (SIGTERM, then SIGKILL after 3 s), and whatever carries the
  command's mark in its environment (``STJ_OWNER``, inherited by every descendant): that catches those
  started since the last look. psutil matches processes by pid *and* start time, so a reused pid is never
  hit.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import subprocess
import sys

import psutil

_PR_SET_PDEATHSIG = 1
OWNER_ENV = "STJ_OWNER"
POLL_S = 0.5
GRACE_S = 3.0
SWEEPS = 3


def die_with_parent() -> None:
    """``preexec_fn`` for :class:`subprocess.Popen`: SIGTERM this child when the parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop a child STJ started: SIGTERM, SIGKILL if it is still running after ``grace_s``; reaped either way."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now at ``host`` (IPv4 or IPv6), for a child server to bind."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def guard_children() -> subprocess.Popen | None:
    """Start the watchdog for this process (Linux; elsewhere nothing). It exits by itself after cleaning up."""
    if not sys.platform.startswith("linux") or os.environ.get(OWNER_ENV) == str(os.getpid()):
        return None  # elsewhere: no pidfd; same pid: this process exec'd another command, whose watchdog stays
    os.environ[OWNER_ENV] = str(os.getpid())  # before anything is started: every child inherits it
    return subprocess.Popen(
        [sys.executable, "-m", "core.processes", str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C or a kill of the command's group must not take the watchdog with it
        close_fds=True,
    )


def descendants(pid: int) -> list[psutil.Process]:
    """The processes below ``pid`` now (children, their children, …); empty if it is gone."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def terminate_all(processes: list[psutil.Process], grace_s: float = GRACE_S) -> None:
    """SIGTERM the ones still running, SIGKILL those alive after ``grace_s``."""
    alive = [p for p in processes if p.is_running()]
    for process in alive:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, stubborn = psutil.wait_procs(alive, timeout=grace_s)
    for process in stubborn:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(stubborn, timeout=grace_s)


def watch(pid: int) -> None:
    """The watchdog's loop: follow ``pid``'s descendants until it ends, then end them."""
    try:
        handle = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    poller = select.poll()
    poller.register(handle, select.POLLIN)
    known: dict[int, psutil.Process] = {}
    me = os.getpid()
    while True:
        for process in descendants(pid):
            if process.pid != me:
                known[process.pid] = process  # remembered even after it is re-parented to init
        known = {k: p for k, p in known.items() if p.is_running()}
        if poller.poll(POLL_S * 1000):  # readable: the process ended
            break
    terminate_all(list(known.values()))
    for _ in range(SWEEPS):  # the marked ones, again while any remain: one may have been starting meanwhile
        left = [p for p in marked(pid) if p.pid != me]
        if not left:
            break
        terminate_all(left)


def marked(pid: int) -> list[psutil.Process]:
    """Processes whose environment says command ``pid`` started them (directly or not)."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(OWNER_ENV) == str(pid):
                found.append(process)
        except psutil.Error:  # gone, or not ours to read
            continue
    return found


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]))
