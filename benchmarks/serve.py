"""Serving benchmark, per backbone: STJ's server at 1 and 16 clients, its efficiency against the raw runtime,
and the ratio to `mlflow models serve` on the same model.

Reads the demo store (run `stj run --config configs/demo.yaml` first). For each backbone (the latest run of
each in the demo experiment, or ``--backbones``): the runtime the server would use is loaded here and its raw
batch-of-16 images/s measured; then `stj serve` serves that run's model (one gunicorn worker, 16 threads) and is
driven at 1 and 16 concurrent clients, each request one JPEG from the demo photos. Printed: requests/s,
p50/p99 latency, errors, the load generator's own CPU use, and **efficiency** = server images/s at 16
clients / raw batch-16 images/s (what decoding, HTTP and Python per request cost), and the first backbone
once more with gunicorn facing clients directly (``serve.proxy=none``) for what nginx costs. Then the champion
(at its alias, in a copy of the store) alone and with a challenger in shadow (the other backbone's run registered
in the copy as ``@challenger``) mirroring the configured share of requests (``serve.shadow_share``, 0.25 by
default), then every request (``serve.shadow_share=1``), for what the shadow costs the champion's answers, with
the photos the challenger scored and dropped. Then `mlflow models serve` on the champion (decoded pixels as JSON,
its API) for the ratio STJ/MLflow. ``--challenger-only`` runs the champion and challenger rows alone. The
champion with the prediction log off and on (``monitor.log_predictions``; goal: on >= 95 % of off), with the
rows it wrote and dropped; ``--log-only`` runs those rows alone. Then **BentoML**, the peer a user would
pick instead (``benchmarks/bentoml_service.py``, in ``.venv-bentoml``): the same OpenVINO model (the
champion's embedder as training logged it, then its head), BentoML's adaptive batching, the same photos, 1
and 16 clients; ``--bentoml-only`` runs the champion and BentoML rows alone. Every server here keeps its
accounts, history and prediction log in a scratch database, never the demo's.

The on/off comparisons (challenger, prediction log) run ``--rounds`` times (3), alternating the servers and
starting each round one row later, because one server started twice differs here by more than what they
compare: each ratio is the median of the rounds' ratios, printed with the baseline's spread from round to
round and whether the ratio lies within it.

Usage: .venv/bin/python benchmarks/serve.py [--config configs/demo.yaml] [--seconds 20] [--rounds 3]
[--backbones ...] [--challenger-only] [--log-only] [--bentoml-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load import free_port, post_many, start_stj_server, wait_ready  # noqa: E402
from core.model_input import decode_image  # noqa: E402
from flows.settings import load_run_config  # noqa: E402

RAW_BATCH = 16
RATIO_KEYS = {"rps": "req/s", "p50_ms": "p50", "p99_ms": "p99"}


def latest_run_per_backbone(config, backbones: list[str] | None) -> dict[str, str]:
    """``runs:/<id>/model`` of the newest finished run of each backbone in the config's experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=config.tracking.uri)
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    if experiment is None:
        sys.exit(f"no experiment {config.tracking.experiment!r}: run `stj run --config configs/demo.yaml` first")
    runs = client.search_runs(
        [experiment.experiment_id],
        "attributes.status = 'FINISHED' and tags.finetune != 'ran'",
        order_by=["attributes.start_time DESC"],
    )
    found: dict[str, str] = {}
    for run in runs:
        name = run.data.tags.get("backbone")
        if name and name not in found and (backbones is None or name in backbones):
            found[name] = f"runs:/{run.info.run_id}/model"
    missing = set(backbones or []) - set(found)
    if missing or not found:
        sys.exit(f"no run of {sorted(missing) or 'any backbone'} in the demo store: run the demo first")
    return found


def raw_images_per_second(uri: str, config, pixels, seconds: float) -> tuple[str, float]:
    """The server's runtime for ``uri``, loaded here: its name and batch-of-16 images/s."""
    from serving.predictor import Predictor

    predictor = Predictor.load(uri, config.tracking.uri, runtime=config.serve.runtime)
    batch = pixels[:RAW_BATCH]
    predictor.predict(batch)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.predict(batch)
        done += len(batch)
    return predictor.runtime.name, done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--backbones", nargs="+", help="default: every backbone with a run in the demo store")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the on/off comparisons (challenger, prediction log), alternated; ratios are medians",
    )
    parser.add_argument("--challenger-only", action="store_true", help="only the champion / challenger rows")
    parser.add_argument("--log-only", action="store_true", help="only the prediction log off / on rows")
    parser.add_argument("--bentoml-only", action="store_true", help="only the champion (log on) and BentoML rows")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    scratch = tempfile.TemporaryDirectory(prefix="stj-bench-serve-")  # removed when the benchmark ends
    os.environ["STJ_SERVE__DATABASE_URL"] = f"sqlite:///{scratch.name}/serve.db"  # the servers inherit it
    config = load_run_config(args.config)
    photos = sorted((Path(config.project.data_dir) / "raw").rglob("*.jpg"))[:64]
    if not photos:
        sys.exit("no photos: run `stj run --config configs/demo.yaml` first")
    blobs = [p.read_bytes() for p in photos]
    size = config.train.image_size
    pixels = [decode_image(b, size) for b in blobs[:RAW_BATCH]]
    results, raw = {}, {}
    if args.bentoml_only:
        rows = {**_log_rows(args, blobs, off=False), **_bentoml_rows(args, config, blobs, scratch.name)}
        rows.pop("log")
        _print_rows(rows)
        _print_bentoml(rows)
        return
    if args.log_only:
        logged = _log_rows(args, blobs)
        counts = logged.pop("log")
        _print_rows(logged)
        _print_log(counts, logged)
        return
    if args.challenger_only:
        shadow = _challenger_rows(args, config, blobs)
        if not shadow:
            sys.exit("no challenger rows: the demo store needs a run of a second backbone (and a sqlite:/// store)")
        counts = shadow.pop("shadow")
        _print_rows(shadow)
        _print_shadow(counts, shadow)
        return

    import numpy as np

    for backbone, uri in latest_run_per_backbone(config, args.backbones).items():
        runtime, rate = raw_images_per_second(uri, config, np.stack(pixels), min(args.seconds, 10))
        raw[backbone] = (runtime, rate)
        port = free_port()
        server = start_stj_server(
            args.config, port, 16, extra=[f"serve.model_uri={uri}", "tracking.imagenet_model=null"]
        )
        results.update(_measure(backbone, server, port, "/ready", "/predict", blobs, "image/jpeg", args.seconds))
    first = next(iter(raw))  # the same server without nginx in front: what the proxy costs
    port = free_port()
    uri = latest_run_per_backbone(config, [first])[first]
    server = start_stj_server(
        args.config, port, 16, extra=[f"serve.model_uri={uri}", "tracking.imagenet_model=null", "serve.proxy=none"]
    )
    direct = _measure(f"{first} direct", server, port, "/ready", "/predict", blobs, "image/jpeg", args.seconds)
    results.update(direct)

    shadow = _challenger_rows(args, config, blobs)
    shadow_counts = shadow.pop("shadow", {})
    results.update(shadow)
    logged = _log_rows(args, blobs)
    log_counts = logged.pop("log")
    results.update(logged)
    results.update(_bentoml_rows(args, config, blobs, scratch.name))

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": config.tracking.uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its uvicorn
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", config.model_uri, "--env-manager", "local"]
    theirs = _start_peer([*command, "-p", str(port), "-h", "127.0.0.1"], env)
    bodies = [json.dumps({"inputs": p[None].tolist()}).encode() for p in pixels]
    results.update(_measure("mlflow", theirs, port, "/ping", "/invocations", bodies, "application/json", args.seconds))

    _print_rows(results)
    for clients in (1, 16):
        ratio = results[(first, clients)]["rps"] / max(1e-9, results[(f"{first} direct", clients)]["rps"])
        print(f"ratio nginx in front / gunicorn direct ({first}) at {clients} client(s): {ratio:.2f}")
    _print_shadow(shadow_counts, results)
    _print_log(log_counts, results)
    _print_bentoml(results)
    for backbone, (runtime, rate) in raw.items():
        served = results[(backbone, 16)]["rps"]
        print(
            f"efficiency {backbone} [{runtime}]: {served:.1f} img/s served at 16 clients / {rate:.1f} img/s raw "
            f"batch-{RAW_BATCH} = {served / rate:.2f}"
        )
        for clients in (1, 16):
            ratio = results[(backbone, clients)]["rps"] / max(1e-9, results[("mlflow", clients)]["rps"])
            print(f"ratio stj ({backbone}) / mlflow (champion) at {clients} client(s): {ratio:.1f}x")


def _print_rows(results: dict) -> None:
    """One line per (server, clients): requests/s, p50/p99, errors and the load generator's cores."""
    header = f"{'server':28s} {'clients':>7s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s}"
    print(f"{header} {'load-generator cores':>21s}")
    for (name, clients), r in results.items():
        print(
            f"{name:28s} {clients:7d} {r['rps']:8.1f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['errors']:6d} "
            f"{r['client_cores']:21.2f}"
        )


def _print_shadow(counts: dict[str, dict[str, float]], results: dict) -> None:
    """The champion's figures with a challenger as ratios to it alone, and what the challenger scored."""
    _print_noise(results, "champion alone")
    for label, count in counts.items():
        _print_ratios(results, label, "champion alone", f"{label} / champion alone")
        print(
            f"{label}: {count['scored']:.0f} photos scored ({count['agreed']:.0f} agreeing with the champion), "
            f"{count['dropped']:.0f} dropped"
        )


def _print_ratios(results: dict, mine: str, theirs: str, title: str) -> None:
    """Row ``mine``'s requests/s, p50 and p99 as ratios to row ``theirs``', at each client count both have: the
    median of the rounds' ratios where both rows ran the same rounds (each round's pair measured close
    together), else the ratio of their medians; then whether it lies within ``theirs``' own spread from round
    to round (:func:`_noise`): a rough guide, since the other row's own spread is not counted."""
    import statistics

    for clients in (1, 16):
        a, b = results.get((mine, clients)), results.get((theirs, clients))
        if not (a and b):
            continue
        ours, peers = a.get("rounds", [a]), b.get("rounds", [b])
        pairs = list(zip(ours, peers, strict=True)) if len(ours) == len(peers) else [(a, b)]
        ratio = {key: statistics.median(x[key] / max(1e-9, y[key]) for x, y in pairs) for key in RATIO_KEYS}
        line = f"ratio {title} at {clients} client(s): " + ", ".join(
            f"{RATIO_KEYS[k]} {v:.2f}" for k, v in ratio.items()
        )
        if len(pairs) > 1:
            noise = _noise(b)
            worse = [RATIO_KEYS[k] for k, v in ratio.items() if (v < noise[k][0] if k == "rps" else v > noise[k][1])]
            better = [RATIO_KEYS[k] for k, v in ratio.items() if (v > noise[k][1] if k == "rps" else v < noise[k][0])]
            verdicts = [
                f"{how} beyond the noise on {', '.join(keys)}"
                for how, keys in (("worse", worse), ("better", better))
                if keys
            ]
            verdict = "; ".join(verdicts) or "within the noise"
            line += f" (median of {len(pairs)} rounds: {verdict})"
        print(line)


def _print_noise(results: dict, label: str) -> None:
    """Row ``label``'s round-to-round spread, the noise its ratios are read against (with several rounds)."""
    for clients in (1, 16):
        row = results.get((label, clients))
        if row and len(row.get("rounds", [])) > 1:
            spread = ", ".join(f"{RATIO_KEYS[k]} {lo:.2f}-{hi:.2f}" for k, (lo, hi) in _noise(row).items())
            print(f"noise: {label} from round to round at {clients} client(s), as ratios to its median: {spread}")


def _noise(row: dict) -> dict[str, tuple[float, float]]:
    """The lowest and highest of a row's rounds as ratios to their median, per figure."""
    return {
        key: (min(r[key] for r in row["rounds"]) / row[key], max(r[key] for r in row["rounds"]) / row[key])
        for key in RATIO_KEYS
    }


def _challenger_rows(args, config, blobs: list[bytes]) -> dict:
    """The champion alone, then with a challenger in shadow mirroring the configured ``serve.shadow_share`` and
    then every request, in a copy of the store (the demo's registry is not touched), alternated over
    ``args.rounds`` (:func:`_alternated`); none when the store has a single backbone's run. The counts under
    "shadow": what each challenger row scored, agreed on and dropped, summed over the rounds."""
    import shutil
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    runs = latest_run_per_backbone(config, None)
    client = MlflowClient(tracking_uri=config.tracking.uri)
    name = config.tracking.model_name
    champion_run = client.get_model_version_by_alias(name, config.tracking.alias).run_id
    others = [uri for uri in runs.values() if champion_run not in uri]
    if not others or not config.tracking.uri.startswith("sqlite:///"):
        return {}
    with tempfile.TemporaryDirectory(prefix="stj-bench-shadow-") as folder:
        copy = Path(folder) / "mlflow.db"
        shutil.copy(config.tracking.uri.removeprefix("sqlite:///"), copy)
        uri = f"sqlite:///{copy}"
        mlflow.set_tracking_uri(uri)
        version = mlflow.register_model(others[0], name).version
        MlflowClient(tracking_uri=uri).set_registered_model_alias(name, "challenger", str(version))
        mlflow.set_tracking_uri(None)
        common = [f"tracking.uri={uri}", "tracking.imagenet_model=null", "serve.shadow_report_s=3600"]
        default = f"{config.serve.shadow_share:g}"
        rows = [("champion alone", [*common, "serve.shadow_share=0"], False)]
        for share in dict.fromkeys([default, "1"]):
            rows.append((f"with challenger, share {share}", [*common, f"serve.shadow_share={share}"], True))
        results, counts = _alternated(args, blobs, rows, _shadow_counts)
    return {**results, "shadow": {label: counts[label] for label, _, challenger in rows if challenger}}


def _log_rows(args, blobs: list[bytes], off: bool = True) -> dict:
    """The champion with the prediction log off (unless not ``off``) and on, alternated over ``args.rounds``
    (one round when not ``off``); the counts under "log": the rows the log wrote and dropped, summed."""
    rows = [
        (label, ["tracking.imagenet_model=null", f"monitor.log_predictions={on}"], False)
        for label, on in (("prediction log off", "false"), ("prediction log on", "true"))[0 if off else 1 :]
    ]
    results, counts = _alternated(args, blobs, rows, _log_counts, rounds=None if off else 1)
    return {**results, "log": counts.get("prediction log on", {})}


def _alternated(
    args, blobs: list[bytes], rows: list[tuple[str, list[str], bool]], counts, rounds: int | None = None
) -> tuple[dict, dict]:
    """Measure each of ``rows`` (label, ``--set`` overrides, whether to wait for its challenger) as a fresh
    `stj serve` at 1 and 16 clients, in ``args.rounds`` rounds, each round starting one row later than the last
    (no row always first). Two servers started alike differ here by 10-25 % in req/s and p99 from one start to
    the next (2 shared cores), more than the settings these rows compare: one pair of runs cannot tell them
    apart, the medians and the baseline's own spread can (:func:`_print_ratios`, :func:`_print_noise`).

    Returns: (each (row, clients)'s median req/s, p50 and p99 with every round's figures under "rounds";
    ``counts(metrics text)`` summed over the rounds per row)."""
    import requests

    samples: dict = {}
    totals: dict[str, dict[str, float]] = {}
    for round_ in range(rounds or args.rounds):
        start = round_ % len(rows)
        for label, extra, challenger in rows[start:] + rows[:start]:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = start_stj_server(args.config, port, 16, extra=extra)
            try:
                if challenger:
                    wait_ready(f"{base}/ready", server)
                    _wait_for_challenger(f"{base}/ready", server)
                measured = _measure(label, server, port, "/ready", "/predict", blobs, "image/jpeg", args.seconds, True)
                for key, row in measured.items():
                    samples.setdefault(key, []).append(row)
                for what, value in counts(requests.get(f"{base}/metrics", timeout=10).text).items():
                    totals.setdefault(label, {}).setdefault(what, 0.0)
                    totals[label][what] += value
            finally:
                server.terminate()
                server.wait()
    return {key: _median_row(rows_) for key, rows_ in samples.items()}, totals


def _median_row(rounds: list[dict]) -> dict:
    """One row from several rounds' figures: medians, errors summed, the load generator's most cores."""
    import statistics

    row = {key: statistics.median(r[key] for r in rounds) for key in ("rps", "p50_ms", "p99_ms")}
    row.update(errors=sum(r["errors"] for r in rounds), client_cores=max(r["client_cores"] for r in rounds))
    return {**row, "rounds": rounds}


def _log_counts(metrics: str) -> dict[str, float]:
    """The prediction log's rows written and dropped, from a server's /metrics."""
    return {what: _counter(metrics, f"stj_prediction_log_{what}_total") for what in ("written", "dropped")}


def _counter(metrics: str, name: str) -> float:
    """A counter's value in a Prometheus exposition (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return 0.0


def _print_log(counts: dict[str, float], results: dict) -> None:
    """The champion with the prediction log on, as ratios to it off, and the rows it wrote and dropped."""
    _print_noise(results, "prediction log off")
    _print_ratios(results, "prediction log on", "prediction log off", "prediction log on / off")
    print(f"prediction log: rows written {counts.get('written', 0):.0f}, dropped {counts.get('dropped', 0):.0f}")


BENTOML_VENV = ROOT / ".venv-bentoml"


def _bentoml_rows(args, config, blobs: list[bytes], scratch: str) -> dict:
    """BentoML serving the champion's OpenVINO model (embedder as training logged it, then head) with adaptive
    batching; none, said, when ``.venv-bentoml`` is missing (``make bench-venv``)."""
    if not (BENTOML_VENV / "bin" / "bentoml").exists():
        print("no BentoML rows: .venv-bentoml is missing (make bench-venv)")
        return {}
    folder = Path(scratch) / "bento-model"
    _write_bento_model(config, folder)
    port = free_port()
    env = {
        **os.environ,
        "STJ_BENTO_MODEL": str(folder),
        "BENTOML_HOME": str(Path(scratch) / "bentoml-home"),
        "BENTOML_DO_NOT_TRACK": "True",  # no usage reports (and none could leave this machine)
    }
    command = [str(BENTOML_VENV / "bin" / "bentoml"), "serve", "benchmarks.bentoml_service:Classifier"]
    # a session of its own: its worker processes are stopped with it (the whole group)
    server = _start_peer([*command, "--port", str(port), "--host", "127.0.0.1"], env, own_session=True)
    bodies, content_type = zip(*(_multipart(b) for b in blobs), strict=True)
    try:
        return _measure(
            "bentoml", server, port, "/readyz", "/predict", list(bodies), content_type[0], args.seconds, True
        )
    finally:
        _stop_group(server)


def _start_peer(command: list[str], env: dict[str, str], own_session: bool = False) -> subprocess.Popen:
    """A peer server (MLflow's, BentoML's) from the repository root, its output discarded."""
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=own_session
    )


def _write_bento_model(config, folder: Path) -> None:
    """The champion as BentoML's service reads it: ``embedder.xml`` (training's, e.g. int8), ``head.xml``,
    ``meta.json``."""
    import mlflow
    import openvino as ov

    from core.logged_model import load_logged_model
    from core.runtime import convert_to_openvino

    mlflow.set_tracking_uri(config.tracking.uri)
    logged = load_logged_model(config.model_uri)
    if logged.embedder_ir is None:
        raise SystemExit("the champion has no OpenVINO embedder logged: BentoML would not run the same model")
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(logged.embedder_ir, str(folder / "embedder.xml"), compress_to_fp16=False)
    ov.save_model(convert_to_openvino(logged.model.get_layer("head")), str(folder / "head.xml"), compress_to_fp16=False)
    meta = {"class_names": logged.class_names, "image_size": logged.image_size, "hint": logged.embedder.hint}
    (folder / "meta.json").write_text(json.dumps(meta))


def _multipart(photo: bytes, boundary: str = "stjbenchboundary") -> tuple[bytes, str]:
    """One photo as the BentoML service's ``images`` field: (body, content type)."""
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="p.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    )
    return head.encode() + photo + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop a server started in a session of its own, with every process it started."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def _print_bentoml(results: dict) -> None:
    """STJ's server (log on) against BentoML on the same model and photos."""
    _print_ratios(results, "prediction log on", "bentoml", "stj (prediction log on) / bentoml")


def _wait_for_challenger(url: str, proc: subprocess.Popen, timeout_s: float = 240) -> None:
    import requests

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if requests.get(url, timeout=10).json().get("challenger", {}).get("version"):
            return
        time.sleep(0.5)
    raise RuntimeError("the challenger did not load")


def _shadow_counts(metrics: str) -> dict[str, float]:
    """Photos the challenger scored (and agreed on) and dropped, from a server's /metrics."""
    scored = agreed = dropped = 0.0
    for line in metrics.splitlines():
        if line.startswith("stj_shadow_photos_total{"):
            value = float(line.rsplit(" ", 1)[1])
            scored += value
            agreed += value if 'outcome="agree"' in line else 0
        elif line.startswith("stj_shadow_dropped_total{"):
            dropped += float(line.rsplit(" ", 1)[1])
    return {"scored": scored, "agreed": agreed, "dropped": dropped}


def _measure(
    name: str,
    proc: subprocess.Popen,
    port: int,
    ready: str,
    path: str,
    bodies: list,
    content_type: str,
    seconds: float,
    keep: bool = False,
) -> dict:
    """Drive one running server at 1 and 16 clients, then stop it (``keep``: the caller stops it; on an
    error it is stopped here either way)."""
    out = {}
    done = False
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready}", proc)
        for clients in (1, 16):
            out[(name, clients)] = post_many(port, path, bodies, content_type, clients, seconds)
        done = True
    finally:
        if not (keep and done):
            proc.terminate()
            proc.wait()
    return out


if __name__ == "__main__":
    main()
