"""Releasing models by hand, as a user types it: `stj promote N` and `stj rollback` run the infra check in a
real server before moving `@champion`, record every move in the alias history (`stj status`, `/api/about`),
and two running replicas follow; a version that does not serve is refused and the champion keeps serving; a
challenger scored in shadow by both replicas is promoted only by the release rule."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import requests
from mlflow import MlflowClient

from core.aliases import alias_history
from core.shadow_tally import ShadowTally, report_tally, shadow_totals
from tests.registry import MODEL, make_registry
from tests.support import ready_state, wait_until

pytestmark = pytest.mark.slow


def _version(base: str) -> str:
    return ready_state(base)["model"]["version"]


def test_promote_and_rollback_check_record_and_replicas_follow(tmp_path, stj, serve_subprocess) -> None:
    registry = make_registry(tmp_path)
    second = registry.register(seed=5)
    client = MlflowClient(tracking_uri=registry.uri)
    overrides = [*registry.overrides, "serve.reload_interval_s=0.2"]
    with ExitStack() as stack:
        replicas = [stack.enter_context(serve_subprocess(overrides)) for _ in range(2)]
        assert [_version(r.base) for r in replicas] == ["1", "1"]
        promoted = stj(["promote", second, "-c", "configs/demo.yaml", "--reason", "try the new head"], overrides)
        assert promoted.returncode == 0, promoted.stderr[-3000:]
        assert f"version 1 -> {second} (promote: try the new head)" in promoted.stdout
        for replica in replicas:
            wait_until(lambda r=replica: _version(r.base) == second, f"a replica to follow to {second}")
        back = stj(["rollback", "-c", "configs/demo.yaml"], overrides)
        assert back.returncode == 0, back.stderr[-3000:]
        for replica in replicas:
            wait_until(lambda r=replica: _version(r.base) == "1", "a replica to follow back to 1")
        about = requests.get(f"{replicas[0].base}/api/about", timeout=30).json()
    checked = client.get_run(client.get_model_version(MODEL, second).run_id).data.metrics
    assert checked["infra_check.passed"] == 1 and checked["infra_check.canary"] == 12
    assert checked["infra_check.agreement"] == 1 and checked["infra_check.errors"] == 0
    newest, first = alias_history(client, MODEL, "champion")
    assert (first.from_version, first.to_version, first.kind, first.why) == ("1", second, "promote", "try the new head")
    assert (newest.from_version, newest.to_version, newest.kind) == (second, "1", "rollback")
    assert first.by.startswith("stj promote (user ") and newest.by.startswith("stj rollback (user ")
    assert [m["to_version"] for m in about["alias_history"]] == ["1", second]
    nothing = stj(["rollback", "-c", "configs/demo.yaml"], overrides)  # version 1 was never moved to: no record
    assert nothing.returncode == 2 and nothing.stderr.count("\n") == 1
    assert nothing.stderr.startswith("stj: error: nothing to roll back to:") and "--to N" in nothing.stderr
    status = stj(["status", "-c", "configs/demo.yaml"], overrides).stdout
    assert "alias history" in status and f"{second} -> 1  rollback by stj rollback" in status
    assert f"1 -> {second}  promote by stj promote" in status


def test_a_version_that_does_not_serve_is_refused_and_alerts(tmp_path, stj, webhook, serve_subprocess, jpeg) -> None:
    registry = make_registry(tmp_path)
    broken, slow = registry.register(seed=6), registry.register(seed=7)
    registry.break_version(broken)
    url, alerts = webhook
    overrides = [*registry.overrides, f"notify.webhook_url={url}", "serve.reload_interval_s=0.2"]
    with serve_subprocess(overrides) as champion:
        refused = stj(["promote", broken, "-c", "configs/demo.yaml"], overrides)
        answer = requests.post(f"{champion.base}/predict", files={"image": ("p.jpg", jpeg)}, timeout=30)
        assert answer.ok and answer.headers["X-Model-Version"] == "1"  # the champion kept serving
    error = refused.stderr.strip().splitlines()[-1]  # the lines before it are the check's progress
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert error.startswith(f"stj: error: stj-classifier version {broken} not moved to @champion: infra check failed")
    assert "does not serve: the server exited" in error and "No such artifact" in error  # the cause, one line
    (alert,) = alerts
    assert alert["event"] == "infra_check_failed" and alert["stage"] == "promote"
    # a budget no server meets stands in for a slow model: refused on latency, the champion unchanged
    over = stj(["promote", slow, "-c", "configs/demo.yaml", "--set", "release.p95_budget_ms=0.001"], overrides)
    assert over.returncode == 2 and "p95 latency" in over.stderr and "over the budget" in over.stderr
    client = MlflowClient(tracking_uri=registry.uri)
    assert client.get_model_version_by_alias(MODEL, "champion").version == 1 and alias_history(client, MODEL) == []
    for version in (broken, slow):
        run = client.get_run(client.get_model_version(MODEL, version).run_id).data
        assert run.metrics["infra_check.passed"] == 0 and run.tags["infra_check.reason"]


def test_a_challenger_in_shadow_is_counted_over_replicas_and_promoted_only_by_the_release_rule(
    tmp_path, stj, serve_subprocess
) -> None:
    """Both replicas mirror live predictions to `@challenger` and their tallies add up in the registry
    (`stj status`, `/metrics`); `stj promote challenger` refuses on too few photos, on low agreement and on the
    quality gate, each in one line, then promotes, and the replicas follow and stop mirroring."""
    registry = make_registry(tmp_path)
    second = registry.register(seed=5)
    client = MlflowClient(tracking_uri=registry.uri)
    shadow = ["serve.reload_interval_s=0.2", "serve.shadow_share=1", "serve.shadow_report_s=0.2"]
    overrides = [*registry.overrides, *shadow]
    photos = [path.read_bytes() for path in sorted((tmp_path / "data").rglob("*.jpg"))]
    promote = ["promote", "challenger", "-c", "configs/demo.yaml"]
    with ExitStack() as stack:
        replicas = [stack.enter_context(serve_subprocess(overrides)) for _ in range(2)]
        named = stj(["promote", second, "--as", "challenger", "-c", "configs/demo.yaml"], overrides)
        assert named.returncode == 0, named.stderr[-3000:]
        assert f"{MODEL}@challenger: version none -> {second}" in named.stdout
        for replica in replicas:
            wait_until(
                lambda r=replica: ready_state(r.base)["challenger"]["version"] == second, "the challenger loaded"
            )
            for photo in photos:  # 12, within serve.shadow_queue: the challenger scores them once the worker idles
                answer = requests.post(f"{replica.base}/predict", files={"image": ("p.jpg", photo)}, timeout=30)
                assert answer.ok and answer.json()["model"]["version"] == "1"
        mirrored = 2 * len(photos)
        wait_until(lambda: shadow_totals(client, MODEL, second, "1").scored == mirrored, "both replicas' tallies")
        assert f'stj_shadow_photos_total{{challenger_version="{second}"' in _metrics(replicas[0].base)
        status = stj(["status", "-c", "configs/demo.yaml"], overrides).stdout
        assert f"challenger version {second} in shadow against version 1: agreement " in status
        assert f"of {mirrored} photos, dropped 0" in status and f"@challenger none -> {second}  promote" in status

        few = stj(promote, overrides)  # release.shadow_min_photos is 200
        assert few.returncode == 2 and few.stderr.count("\n") == 1, few.stderr[-3000:]
        assert f"it scored {mirrored} photos in shadow against version 1" in few.stderr
        disagreeing = ShadowTally(scored=1000)  # another worker that agreed on none of 1 000 photos
        report_tally(client, MODEL, second, "1", "a-replica-that-disagrees", disagreeing)
        low = stj([*promote, "--set", "release.shadow_min_photos=10"], overrides)
        assert low.returncode == 2 and "photos in shadow, release.shadow_min_agreement" in low.stderr
        assert f"of {mirrored + 1000} photos" in low.stderr
        loose = ["--set", "release.shadow_min_photos=10", "--set", "release.shadow_min_agreement=0"]
        gate = stj([*promote, *loose, "--set", "tracking.gate_margin=1"], overrides)
        assert gate.returncode == 2 and "the quality gate refused it" in gate.stderr, gate.stderr[-3000:]
        passing = ["--set", "tracking.gate_margin=-1", "--set", "tracking.gate_class_tolerance=1"]
        promoted = stj([*promote, *loose, *passing], overrides)
        assert promoted.returncode == 0, promoted.stderr[-3000:]
        for replica in replicas:
            wait_until(
                lambda r=replica: (
                    ready_state(r.base)["model"]["version"] == second
                    and ready_state(r.base)["challenger"]["version"] is None
                ),
                "a replica to serve the challenger and stop mirroring",
            )
    removed, moved, named_move = alias_history(client, MODEL)
    assert (removed.alias, removed.from_version, removed.to_version) == ("challenger", second, None)
    assert (moved.alias, moved.from_version, moved.to_version, moved.kind) == ("champion", "1", second, "promote")
    assert moved.why.startswith("challenger agreed on ") and (named_move.alias, named_move.to_version) == (
        "challenger",
        second,
    )


def _metrics(base: str) -> str:
    return requests.get(f"{base}/metrics", timeout=10).text
