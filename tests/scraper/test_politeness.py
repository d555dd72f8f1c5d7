"""Politeness per host: a delay between starts, a cap on requests in flight, AutoThrottle's delay from latency,
and the same limits shared by tasks in several Dask worker processes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from configs.schema import ScrapeConfig
from scraper.fetch import Fetcher
from scraper.politeness import HostThrottle, LocalHostState, autothrottle_delay

URL = "http://shop.example/s?k=jeans"


@pytest.mark.parametrize(
    ("current", "latency", "ok", "expected"),
    [
        (0.0, 0.4, True, 0.4),  # never below the target: latency / target concurrency
        (1.0, 0.4, True, 0.7),  # a faster host: halfway down to the target
        (1.0, 0.4, False, 1.0),  # an error never shortens the delay
        (0.2, 3.0, False, 2.0),  # ... but lengthens it, up to the ceiling
        (0.5, 0.01, True, 0.255),  # a fast host: the mean, then ...
        (0.1, 0.01, True, 0.1),  # ... never below delay_s
    ],
)
def test_autothrottle_follows_latency_within_bounds(current: float, latency: float, ok: bool, expected: float) -> None:
    delay = autothrottle_delay(current, latency, ok, target_concurrency=1.0, min_delay=0.1, max_delay=2.0)
    assert delay == pytest.approx(expected)


def _timed_requests(throttle: HostThrottle, count: int, duration_s: float) -> list[tuple[float, float]]:
    """(start, end) of ``count`` requests to one host made by 8 threads through ``throttle``."""

    def one(_: int) -> tuple[float, float]:
        with throttle.request(URL):
            started = time.time()
            time.sleep(duration_s)
            return started, time.time()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def _assert_polite(spans: list[tuple[float, float]], delay_s: float, cap: int) -> None:
    # start slots are exactly delay_s apart; a start may come late by a busy machine's scheduling jitter (up
    # to half a delay allowed), so any k+1 consecutive starts span at least k delays less that: the rate is
    # never exceeded (unshared limits start several requests at once: 0 s apart)
    starts = sorted(start for start, _ in spans)
    for k in range(1, len(starts)):
        assert min(b - a for a, b in zip(starts, starts[k:], strict=False)) >= (k - 0.5) * delay_s, k
    in_flight = max(sum(s <= start < e for s, e in spans) for start in starts)
    assert in_flight <= cap


def test_threads_keep_the_delay_and_the_cap_on_one_host() -> None:
    config = ScrapeConfig(delay_s=0.05, per_host_concurrency=2, autothrottle=False)
    spans = _timed_requests(HostThrottle(config), 12, duration_s=0.25)
    _assert_polite(spans, 0.05, 2)
    assert max(sum(s <= start < e for s, e in spans) for start, _ in spans) == 2  # the cap, not one at a time


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        time.sleep(0.2)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.parametrize("autothrottle", [True, False])
def test_a_slow_host_is_asked_less_often(autothrottle: bool) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        state = LocalHostState()
        config = ScrapeConfig(delay_s=0, autothrottle=autothrottle, obey_robots=False, retries=0)
        fetcher = Fetcher(config, hosts=state)
        host = f"127.0.0.1:{server.server_port}"
        fetcher.get(f"http://{host}/a")
        assert state.delay(host) == (pytest.approx(0.2, abs=0.1) if autothrottle else 0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _requests_in_a_task(scrape_id: str, delay_s: float, cap: int) -> tuple[int, list[tuple[float, float]]]:
    import os

    from flows.politeness import DaskHostState

    config = ScrapeConfig(delay_s=delay_s, per_host_concurrency=cap, autothrottle=False)
    return os.getpid(), _timed_requests(HostThrottle(config, DaskHostState(scrape_id)), 4, duration_s=0.4)


@pytest.mark.slow
def test_tasks_on_several_dask_workers_share_one_delay_and_cap() -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        workers = list(client.scheduler_info()["workers"])
        futures = [
            client.submit(_requests_in_a_task, "t1", 0.15, 2, pure=False, workers=[w]) for w in workers for _ in "ab"
        ]
        results = [future.result() for future in futures]
    assert len({pid for pid, _ in results}) == 2  # two processes, two tasks each, eight threads in each task
    spans = [span for _, task_spans in results for span in task_spans]
    assert len(spans) == 16
    _assert_polite(spans, 0.15, 2)
