"""Per-host politeness shared by a scrape's per-query tasks on a Dask cluster (``scraper.politeness.HostState``
kept by the scheduler): each host's request slots are a ``distributed.Semaphore``; its next start time and
delay an entry of the scheduler's metadata, read and written under a ``distributed.Lock``. N query tasks on any workers
then ask a host no more often, and with no more requests in flight, than one scrape would.

Names carry the scrape's id, so two scrapes never inherit each other's delays. Each request costs a few
scheduler round trips (about a millisecond each on one machine), small beside any delay worth having; times
are wall-clock, since the workers may be on several machines.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator


class DaskHostState:
    """Politeness state on the Dask scheduler, for tasks running on its workers (built inside the task)."""

    def __init__(self, scrape_id: str) -> None:
        from distributed import get_client

        self.scrape_id = scrape_id
        # the worker's client, found here in the task's thread: the scrape's own threads could not find it
        self._client = get_client()
        self._lock = threading.Lock()
        self._objects: dict[str, object] = {}

    def _shared(self, kind: str, host: str, make: Callable[[str], object]) -> object:
        name = f"stj-politeness-{self.scrape_id}-{kind}-{host}"
        with self._lock:  # one object per name in this process: its threads share the leases
            if name not in self._objects:
                self._objects[name] = make(name)
            return self._objects[name]

    @contextlib.contextmanager
    def in_flight(self, host: str, cap: int) -> Iterator[None]:
        """Hold one of the host's ``cap`` slots, cluster-wide."""
        from distributed import Semaphore

        def make(name: str) -> Semaphore:
            return Semaphore(max_leases=cap, name=name, scheduler_rpc=self._client.scheduler, loop=self._client.loop)

        with self._shared("slots", host, make):  # type: ignore[attr-defined]
            yield

    def _update(self, host: str, initial_delay: float, change: Callable[[dict], dict]) -> None:
        from distributed import Lock

        client, key = self._client, f"stj-politeness-{self.scrape_id}-state-{host}"
        lock = self._shared("lock", host, lambda name: Lock(name, scheduler_rpc=client.scheduler, loop=client.loop))
        with lock:  # type: ignore[attr-defined]
            state = client.get_metadata(key, default=None) or {"next": 0.0, "delay": initial_delay}
            client.set_metadata(key, change(state))

    def reserve(self, host: str, initial_delay: float) -> float:
        """Take the host's next start time, cluster-wide; seconds to wait."""
        slot = 0.0

        def take(state: dict) -> dict:
            nonlocal slot
            slot = max(time.time(), state["next"])  # read under the lock: the wait for it does not count
            return {**state, "next": slot + state["delay"]}

        self._update(host, initial_delay, take)
        return max(0.0, slot - time.time())

    def adjust(self, host: str, initial_delay: float, change: Callable[[float], float]) -> None:
        """Replace the host's delay with ``change(delay)``, cluster-wide."""
        self._update(host, initial_delay, lambda s: {**s, "delay": change(s["delay"])})
