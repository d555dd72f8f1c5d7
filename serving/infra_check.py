"""The infra check (TFX's InfraValidator): before an alias moves to a model version, that version is started
in a real server — :func:`serving.server.serve`, the code every ``stj serve`` replica runs, with the
configured proxy, one worker, no accounts, on a free loopback port — and asked to score a canary set of
photos. It passes when the server becomes ready, no canary request fails, the top-1 matches the in-process
scores of the same runtime on at least ``release.min_agreement`` of the photos (a class the in-process scores
put within ``release.prob_tolerance`` of their top one counts as the same top-1: ties), every probability is
within ``release.prob_tolerance`` of them, and the answers' p95 latency is within ``release.p95_budget_ms``.

Every check, passed or failed, is logged on the version's run as ``infra_check.*`` metrics (and the tag
``infra_check.reason``). The server is stopped when the check ends, whatever happens.

Cost: one model load in this process, one server start (its model load), and one request per canary photo:
O(canary) time, memory one photo at a time plus the two loaded models.

Config keys: ``release.*``, ``serve.*`` (runtime, proxy, min_side), ``tracking.uri``.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from mlflow import MlflowClient

from configs.schema import Config
from core.processes import stop_process
from serving.predictor import Predictor
from serving.uploads import decode_upload

log = logging.getLogger(__name__)

SERVING_ON = re.compile(r"stj: serving on (http://\S+)")
LOG_TAIL = 400  # characters of the server's log quoted when it did not start
EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception|Exit)\b: ")  # a traceback's last line


@dataclass(frozen=True)
class InfraCheck:
    """The outcome: ``passed``, a one-line ``reason``, and the figures (``infra_check.*`` on the run)."""

    passed: bool
    reason: str
    metrics: dict[str, float] = field(default_factory=dict)


def sandbox_config(config: Config, model_uri: str, folder: Path) -> Config:
    """``config`` for the check's server: ``model_uri`` pinned, one worker, no accounts, no reload, no
    ImageNet model, no browser export and no challenger in shadow, its history in ``folder``, any free loopback port."""
    serve = config.serve.model_copy(
        update={
            "model_uri": model_uri,
            "host": "127.0.0.1",
            "port": 0,
            "workers": 1,
            "auth": "none",
            "reload_interval_s": 0,
            "browser_model": False,
            "shadow_share": 0.0,
            "database_url": f"sqlite:///{folder / 'history.db'}",
            "allowed_hosts": None,
            "public_url": None,
        }
    )
    tracking = config.tracking.model_copy(update={"imagenet_model": None})
    base = Config.model_validate(config.model_dump(include=set(Config.model_fields)))
    return base.model_copy(update={"serve": serve, "tracking": tracking})


class _Server:
    """The sandboxed server: started in ``folder`` (its config and log there), stopped by :meth:`stop`."""

    def __init__(self, config: Config, folder: Path) -> None:
        settings = folder / "config.json"
        settings.write_text(config.model_dump_json())
        self.log_path = folder / "server.log"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "serving", str(settings)], stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )

    def log_tail(self) -> str:
        """What went wrong, on one line: the last exception the server's log names, else the log's last line."""
        lines = [line.strip() for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        errors = [line for line in lines if EXCEPTION_LINE.match(line)]
        return (errors or lines or ["(no output)"])[-1][:LOG_TAIL]

    def wait_ready(self, timeout_s: float) -> str:
        """The server's base URL once ``/ready`` answers 200; ``RuntimeError`` if it exits or times out."""
        deadline, base = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited ({self.proc.returncode}): {self.log_tail()}")
            if base is None and (match := SERVING_ON.search(self.log_path.read_text(errors="replace"))):
                base = match.group(1)
            if base is not None:
                try:
                    if requests.get(f"{base}/ready", timeout=5).ok:
                        return base
                except requests.RequestException:
                    pass  # not listening yet, or still loading
            time.sleep(0.25)
        raise RuntimeError(f"the server was not ready after {timeout_s:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and reap it."""
        stop_process(self.proc, grace_s=30)


def same_runtime(local: Predictor, served: str):
    """``local``'s runtime, or one of the precision the server runs. A model converted here (no embedder
    logged by training: the ImageNet model, fine-tuned ones, those trained on TensorFlow) gets the float
    precision that measured faster when it loaded, so two processes may differ (bf16 against f32 moves
    probabilities by ~5e-3); the check compares like with like, and a model with a "none of these" index
    keeps its embedder-then-head chain (its features are needed). ``ValueError`` for any other difference."""
    if local.runtime.name == served:
        return local.runtime
    if served.startswith("openvino-") and local.runtime.name.startswith("openvino-"):
        from core.runtime.openvino import Chained, OpenVINORuntime, convert_to_openvino

        precision = served.removeprefix("openvino-")
        if isinstance(local.runtime, Chained):
            embedder = OpenVINORuntime(convert_to_openvino(local.model.get_layer("embedder")), precision)
            return Chained(embedder, local.runtime.second)
        return OpenVINORuntime(convert_to_openvino(local.model), precision)
    raise ValueError(f"the server runs {served}, this process {local.runtime.name}")


def _ask(base: str, photo: Path, data: bytes, classes: int) -> tuple[dict | None, float]:
    """The server's answer for one photo (``None`` for a 5xx or no answer) and its latency in ms."""
    started = time.perf_counter()
    try:
        answer = requests.post(
            f"{base}/predict", params={"top_k": classes}, files={"image": (photo.name, data)}, timeout=60
        )
    except requests.RequestException:
        return None, (time.perf_counter() - started) * 1000
    elapsed = (time.perf_counter() - started) * 1000
    return (answer.json() if answer.status_code < 500 else None), elapsed


def _by_label(names: list[str], probabilities) -> dict[str, list[float]]:
    """Each label's probabilities, sorted: ImageNet names some classes twice ("crane", the bird and the
    machine), so a label alone does not say which class a probability is."""
    found: dict[str, list[float]] = {}
    for name, probability in zip(names, probabilities, strict=True):
        found.setdefault(name, []).append(float(probability))
    return {name: sorted(values) for name, values in found.items()}


def largest_difference(answered: list[dict], names: list[str], mine: np.ndarray) -> float:
    """The largest difference between the server's probabilities (its every-class ``top_k``) and ``mine``."""
    theirs = _by_label([row["label"] for row in answered], [row["probability"] for row in answered])
    ours = _by_label(names, mine)
    if theirs.keys() != ours.keys() or any(len(theirs[k]) != len(ours[k]) for k in ours):
        return 1.0  # the server answered for other classes
    return max(abs(a - b) for name in ours for a, b in zip(theirs[name], ours[name], strict=True))


def same_top1(label: str, names: list[str], mine: np.ndarray, tolerance: float) -> bool:
    """Whether the server's top-1 ``label`` is ours: our top class's name, or a class we score within
    ``tolerance`` of it (a tie within the tolerance the probabilities are held to is not a disagreement)."""
    best = float(mine.max())
    return any(name == label and best - float(p) <= tolerance for name, p in zip(names, mine, strict=True))


def _compare(config: Config, local: Predictor, base: str, photos: list[Path]) -> dict[str, float]:
    """Send each canary photo to the server and compare with ``local``'s scores of the same bytes."""
    agree, worst, errors, latencies = 0, 0.0, 0, []
    for photo in photos:
        data = photo.read_bytes()
        pixels = decode_upload(data, local.image_size, config.serve.min_side, resize=local.resize)
        mine = local.predict(pixels[None])[0]
        answer, elapsed = _ask(base, photo, data, len(local.class_names))
        latencies.append(elapsed)
        if answer is None or "top_k" not in answer:
            errors += 1
            continue
        agree += same_top1(answer["label"], local.class_names, mine, config.release.prob_tolerance)
        worst = max(worst, largest_difference(answer["top_k"], local.class_names, mine))
    return {
        "canary": float(len(photos)),
        "agreement": agree / len(photos),
        "max_prob_diff": worst,
        "errors": float(errors),
        "p95_ms": float(np.percentile(latencies, 95)),
    }


def _verdict(config: Config, figures: dict[str, float]) -> str | None:
    """Why the figures fail ``release``'s limits, or ``None`` when they pass."""
    release = config.release
    if figures["errors"]:
        return f"{figures['errors']:.0f} of {figures['canary']:.0f} canary requests failed (5xx or no answer)"
    if figures["agreement"] < release.min_agreement:
        return f"top-1 agreed with the in-process scores on {figures['agreement']:.1%} of the canary photos"
    if figures["max_prob_diff"] > release.prob_tolerance:
        return f"probabilities differ from the in-process scores by up to {figures['max_prob_diff']:.2g}"
    if figures["p95_ms"] > release.p95_budget_ms:
        return f"p95 latency {figures['p95_ms']:.0f} ms is over the budget of {release.p95_budget_ms:.0f} ms"
    return None


def infra_check(config: Config, model_name: str, version: str, photos: list[Path], run_id: str | None) -> InfraCheck:
    """Start ``model_name`` version ``version`` in a real server and score ``photos`` through it (see the
    module); the figures are logged on ``run_id`` when given. Never raises for a broken version: a model
    that does not load, in this process or in the server, is a failed check."""
    started = time.monotonic()
    uri = f"models:/{model_name}/{version}"
    if not photos:
        check = InfraCheck(False, "no canary photos to send")
    else:
        with tempfile.TemporaryDirectory(prefix="stj-infra-check-") as folder:
            check = _run(config, uri, photos[: config.release.canary_size], Path(folder))
    check.metrics["seconds"] = round(time.monotonic() - started, 2)
    check.metrics["passed"] = float(check.passed)
    # info either way: whoever asked for the check (the publish stage, stj promote) reports a failure
    log.info("infra check of %s: %s (%s)", uri, "passed" if check.passed else "failed", check.reason)
    if run_id:
        client = MlflowClient(tracking_uri=config.tracking.uri)
        for key, value in check.metrics.items():
            client.log_metric(run_id, f"infra_check.{key}", value)
        client.set_tag(run_id, "infra_check.reason", check.reason)
    return check


def _run(config: Config, uri: str, photos: list[Path], folder: Path) -> InfraCheck:
    server = _Server(sandbox_config(config, uri, folder), folder)
    try:
        ready_started = time.monotonic()
        try:
            base = server.wait_ready(config.release.ready_timeout_s)
        except RuntimeError as exc:
            return InfraCheck(False, f"{uri} does not serve: {exc}")
        figures = {"ready_s": round(time.monotonic() - ready_started, 2)}
        try:
            local = Predictor.load(uri, config.tracking.uri, runtime=config.serve.runtime)
            served = requests.get(f"{base}/ready", timeout=30).json()["runtime"]
            local.runtime = same_runtime(local, served)
        except Exception as exc:  # noqa: BLE001 - the server loaded it, this process could not: say so
            return InfraCheck(False, f"{uri} does not load in-process for the comparison: {exc}", figures)
        figures |= _compare(config, local, base, photos)
        failure = _verdict(config, figures)
        passed = (
            f"{figures['canary']:.0f} canary photos: top-1 agreement {figures['agreement']:.1%}, probabilities "
            f"within {figures['max_prob_diff']:.1g}, p95 {figures['p95_ms']:.0f} ms"
        )
        return InfraCheck(failure is None, failure or passed, figures)
    finally:
        server.stop()
