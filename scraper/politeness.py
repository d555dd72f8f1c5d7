"""Politeness per host: a minimum delay between requests, a cap on requests in flight, and a delay that follows
the host's latency (Scrapy's AutoThrottle), shared by every thread of a scrape and, through
:class:`HostState`, by every process scraping at once (per-query Dask tasks: ``flows.politeness``).

AutoThrottle, as Scrapy defines it: after each response, the target delay is ``latency / target_concurrency``
(so on average ``target_concurrency`` requests are in flight); the new delay is the mean of the current one and
the target, never below the target, clamped to ``[delay_s, max_delay_s]``; an error response never shortens
it. A host that slows down is asked less often; a fast one is never asked more often than ``delay_s``.

Config keys: ``scrape.delay_s``, ``scrape.per_host_concurrency``, ``scrape.autothrottle``,
``scrape.autothrottle_target_concurrency``, ``scrape.max_delay_s``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol
from urllib.parse import urlsplit

from configs.schema import ScrapeConfig


def autothrottle_delay(
    current: float, latency: float, ok: bool, target_concurrency: float, min_delay: float, max_delay: float
) -> float:
    """The next delay between requests to a host after a response that took ``latency`` seconds."""
    target = latency / target_concurrency
    new = min(max(min_delay, max(target, (current + target) / 2)), max_delay)
    return current if not ok and new < current else new


class HostState(Protocol):
    """Where one host's politeness state lives: this process, or a Dask cluster's scheduler."""

    def in_flight(self, host: str, cap: int) -> contextlib.AbstractContextManager[None]:
        """Hold one of the host's ``cap`` request slots while the block runs."""

    def reserve(self, host: str, initial_delay: float) -> float:
        """Take the host's next start time (then push it one delay on); seconds to wait for it."""

    def adjust(self, host: str, initial_delay: float, change: Callable[[float], float]) -> None:
        """Replace the host's delay ``d`` with ``change(d)``, atomically."""


class LocalHostState:
    """Politeness state shared by the threads of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}

    @contextlib.contextmanager
    def in_flight(self, host: str, cap: int) -> Iterator[None]:
        """Hold one of the host's ``cap`` slots."""
        with self._lock:
            slots = self._slots.setdefault(host, threading.BoundedSemaphore(cap))
        with slots:
            yield

    def reserve(self, host: str, initial_delay: float) -> float:
        """Take the host's next start time; seconds to wait."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self._delay.setdefault(host, initial_delay)
        return slot - now

    def adjust(self, host: str, initial_delay: float, change: Callable[[float], float]) -> None:
        """Replace the host's delay with ``change(delay)``."""
        with self._lock:
            self._delay[host] = change(self._delay.get(host, initial_delay))

    def delay(self, host: str) -> float | None:
        """The host's current delay (None before its first request)."""
        with self._lock:
            return self._delay.get(host)


class HostThrottle:
    """Every request to a host goes through :meth:`request`: it waits for a slot and the host's delay, and
    the response's latency adjusts the delay (when ``scrape.autothrottle`` is on)."""

    def __init__(self, config: ScrapeConfig, state: HostState | None = None) -> None:
        self.config = config
        self.state = state or LocalHostState()

    @contextlib.contextmanager
    def request(self, url: str) -> Iterator[Callable[[float, bool], None]]:
        """Hold a request slot for ``url``'s host once its delay has passed; yields ``observe(latency_s, ok)``,
        to call with the response."""
        sc, host = self.config, urlsplit(url).netloc
        with self.state.in_flight(host, sc.per_host_concurrency):
            wait = self.state.reserve(host, sc.delay_s)
            if wait > 0:
                time.sleep(wait)

            def observe(latency_s: float, ok: bool) -> None:
                if sc.autothrottle:
                    self.state.adjust(
                        host,
                        sc.delay_s,
                        lambda d: autothrottle_delay(
                            d, latency_s, ok, sc.autothrottle_target_concurrency, sc.delay_s, sc.max_delay_s
                        ),
                    )

            yield observe
