"""Hot reloads on the real server: 16 alias flips release the old models' memory and leave no files; every
response names the model that computed it; `/ready` tells the state of now, not of a past failure; an alias
flipping between input sizes under load never scores a photo with a model it was not decoded for."""

from __future__ import annotations

import io
import threading
from collections import Counter

import psutil
import pytest
import requests

from tests.support import ready_state, wait_until

pytestmark = pytest.mark.slow
# A leak of 15 MiB a reload (as before malloc_trim) grows the ~1.4 GiB of master and worker by 16 % over the
# 15 reloads after the first: more than the 10 % allowed.
FLIPS = 16


def _server_rss(server) -> dict[int, int]:
    """RSS by pid of the serving processes (gunicorn master and worker; not nginx or the watchdog, nor a
    short-lived child that is gone or not yet reaped by the time it is looked at)."""
    found = {}
    for process in server.family():
        try:
            if "flows.cli" in " ".join(process.cmdline()):
                found[process.pid] = process.memory_info().rss
        except psutil.Error:
            pass
    return found


class _Caller(threading.Thread):
    """Predicts in a loop; records statuses and any response whose headers and body disagree on the model."""

    def __init__(self, base: str, photo: bytes) -> None:
        super().__init__(daemon=True)
        self.base, self.photo, self.stop = base, photo, threading.Event()
        self.statuses: Counter[int] = Counter()
        self.mismatches: list[tuple[str, str]] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                resp = requests.post(f"{self.base}/predict", files={"image": ("p.jpg", self.photo)}, timeout=30)
            except requests.RequestException:
                self.statuses[-1] += 1  # a connection error: counted, and the loop goes on
                continue
            self.statuses[resp.status_code] += 1
            if resp.ok and resp.headers["X-Model-Version"] != resp.json()["model"]["version"]:
                self.mismatches.append((resp.headers["X-Model-Version"], resp.json()["model"]["version"]))


def test_alias_flips_release_memory_and_leave_no_files(stj_server, registry, server_tmp, jpeg: bytes) -> None:
    first, second = "1", registry.register(seed=2)
    temp = server_tmp
    options = ("serve.reload_interval_s=0.1", "serve.runtime=openvino")
    try:
        with stj_server(*options, env={"TMPDIR": str(temp)}) as server:
            caller = _Caller(server.base, jpeg)
            caller.start()
            for flip in range(FLIPS):
                target = second if flip % 2 == 0 else first
                registry.point_alias(target)
                wait_until(lambda t=target: ready_state(server.base)["model"]["version"] == t, f"version {target}")
                if flip == 0:
                    after_one = _server_rss(server)
            after_all = _server_rss(server)
            caller.stop.set()
            caller.join(30)
            left = sorted(p.name for p in temp.iterdir() if not p.name.startswith("stj-serve-"))
    finally:
        registry.point_alias(first)
    mib = {pid: (after_one.get(pid, 0) >> 20, after_all.get(pid, 0) >> 20) for pid in after_one | after_all}
    assert after_all.keys() == after_one.keys(), f"a serving process came or went (MiB by pid): {mib}"
    growth = sum(after_all.values()) / sum(after_one.values()) - 1
    assert growth < 0.10, f"RSS by pid after 1 flip and after {FLIPS} (MiB): {mib}"
    assert left == [], left  # no downloaded model left behind
    assert set(caller.statuses) == {200} and caller.statuses[200] > FLIPS, caller.statuses
    assert caller.mismatches == []


def test_ready_reports_a_failed_reload_until_the_alias_is_fixed(stj_server, registry, jpeg: bytes) -> None:
    broken = registry.register(seed=3)
    registry.break_version(broken)
    try:
        with stj_server("serve.reload_interval_s=0.1") as server:
            registry.point_alias(broken)
            wait_until(lambda: ready_state(server.base)["last_reload_error"] is not None, "the failed reload")
            state = ready_state(server.base)
            assert state["model"]["version"] == "1" and f"loading version {broken} failed" in state["last_reload_error"]
            photo = {"image": ("p.jpg", jpeg)}
            assert requests.post(f"{server.base}/predict", files=photo, timeout=30).status_code == 200
            registry.point_alias("1")
            wait_until(lambda: ready_state(server.base)["last_reload_error"] is None, "the error to clear")
    finally:
        registry.point_alias("1")


def test_an_alias_flipping_between_input_sizes_under_load_answers_each_photo_with_its_own_model(
    registry, app_for, tmp_path, jpeg: bytes
) -> None:
    """Each request resolves its model once: decoded for it, scored by it, named by it. Every answer is
    200 and has the probabilities that the version it names gives this photo on its own."""
    from serving.predictor import Predictor

    small, large = "1", registry.register(seed=4, image_size=48)
    app = app_for(tmp_path, None, *registry.overrides, "serve.reload_interval_s=0.05", "serve.max_wait_ms=20")
    state = app.extensions["stj"]
    expected = {}
    for version in (small, large):
        alone = Predictor.load(f"models:/stj-classifier/{version}", registry.uri, runtime="tensorflow")
        expected[version] = dict(zip(alone.class_names, alone.predict(state.decode(jpeg, alone)[None])[0], strict=True))
    answers, stop = [], threading.Event()

    def call() -> None:
        http = app.test_client()
        while not stop.is_set():
            resp = http.post("/predict?top_k=3", data={"image": (io.BytesIO(jpeg), "p.jpg")})
            answers.append((resp.status_code, resp.get_json()))

    callers = [threading.Thread(target=call, daemon=True) for _ in range(6)]
    try:
        for thread in callers:
            thread.start()
        for flip in range(6):
            target = large if flip % 2 == 0 else small
            registry.point_alias(target)
            wait_until(lambda t=target: state.holder.current().ref.version == t, f"version {target}")
            seen = len(answers)
            wait_until(lambda s=seen: len(answers) > s + 6, "answers from the new version")
    finally:
        stop.set()
        for thread in callers:
            thread.join(30)
        registry.point_alias(small)
    assert {status for status, _ in answers} == {200}, [body for status, body in answers if status != 200][:3]
    versions = Counter(body["model"]["version"] for _, body in answers)
    assert versions[small] > 0 and versions[large] > 0, versions
    for _, body in answers:
        mine = expected[body["model"]["version"]]
        assert all(abs(row["probability"] - mine[row["label"]]) < 1e-4 for row in body["top_k"]), body
