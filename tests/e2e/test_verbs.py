"""The verbs on the demo store, as a user types them: `stj status`, `stj predict` (model and server agree),
and the command line's conventions (did you mean, environment over file, --set over environment)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

pytestmark = pytest.mark.slow


def test_status_names_the_champion_last_run_and_data(reference, stj) -> None:
    config, overrides = reference.config, reference.overrides
    proc = stj(["status", "-c", "configs/demo.yaml", "--json"], overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads(proc.stdout)
    champion = MlflowClient(tracking_uri=config.tracking.uri).get_model_version_by_alias("stj-classifier", "champion")
    assert status["champion"]["version"] == str(champion.version)
    assert set(status["champion"]["metrics"]) == {"test_macro_f1", "test_accuracy", "best_val_loss"}
    assert status["last_run"]["status"] == "FINISHED" and status["last_run"]["gate"] in {"promoted", "rejected"}
    assert status["data"]["photos"] == {"jeans": 12, "saree": 12, "trousers": 12}
    gate_move = next(m for m in status["alias_history"] if m["to_version"] == str(champion.version))
    assert gate_move["kind"] == "gate" and gate_move["by"] == f"run {champion.run_id}"
    checked = MlflowClient(tracking_uri=config.tracking.uri).get_run(champion.run_id).data.metrics
    assert checked["infra_check.passed"] == 1 and checked["infra_check.canary"] >= 8
    assert sum(sum(side.values()) for side in status["data"]["split"].values()) == 36
    text = stj(["status", "-c", "configs/demo.yaml"], overrides).stdout
    assert f"champion  version {champion.version}" in text and "jeans 12" in text


def test_predict_scores_files_folders_and_globs_like_the_server(tmp_path, reference, stj, serve_subprocess) -> None:
    config, overrides = reference.config, reference.overrides
    raw = Path(config.project.data_dir) / "raw"
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("not a photo")
    paths = [str(raw / "jeans"), str(raw / "saree" / "*.jpg"), str(not_an_image)]
    local = stj(["predict", "-c", "configs/demo.yaml", *paths, "--format", "jsonl"], overrides)
    assert local.returncode == 0, local.stderr[-3000:]
    rows = [json.loads(line) for line in local.stdout.splitlines()]
    assert len(rows) == 12 + 12 + 1
    assert rows[-1]["file"] == str(not_an_image) and "not scored" in rows[-1]["error"]
    for row in rows[:-1]:
        assert row["label"] in config.class_names and abs(sum(row["probabilities"].values()) - 1) < 1e-3
        assert isinstance(row["in_distribution"], bool) and row["ood_score"] >= 0  # the model's OOD index
    with serve_subprocess(overrides) as server:
        remote = stj(["predict", "--url", server.base, *paths[:2], "--format", "csv"], overrides)
    assert remote.returncode == 0, remote.stderr[-3000:]
    table = list(csv.DictReader(io.StringIO(remote.stdout)))
    assert [r["file"] for r in table] == [r["file"] for r in rows[:-1]]
    for mine, theirs in zip(rows, table, strict=False):
        assert mine["label"] == theirs["label"]
        assert str(mine["in_distribution"]).lower() == theirs["in_distribution"]
        assert abs(mine["ood_score"] - float(theirs["ood_score"])) < 1e-3
        for name in config.class_names:
            assert abs(mine["probabilities"][name] - float(theirs[name])) < 1e-3


def test_predict_refuses_what_it_cannot_score_in_one_line(tmp_path, reference, stj) -> None:
    overrides = reference.overrides
    missing = stj(["predict", "-c", "configs/demo.yaml", str(tmp_path / "nowhere.jpg")], overrides)
    assert missing.returncode == 2 and missing.stderr.strip().endswith("no such file, folder or match")
    photo = next(Path(reference.config.project.data_dir, "raw", "jeans").glob("*.jpg"))
    down = stj(["predict", "--url", "http://127.0.0.1:9", str(photo)], overrides)
    assert down.returncode == 2 and down.stderr.startswith("stj: error: --url http://127.0.0.1:9: not a running")
    assert len(down.stderr.splitlines()) == 1  # asking a server loads no TensorFlow, so nothing else is printed
    assert "Traceback" not in missing.stderr + down.stderr


def test_command_line_conventions(tmp_path, reference, stj) -> None:
    overrides = reference.overrides
    typo = stj(["stauts", "-c", "configs/demo.yaml"])
    assert typo.returncode == 2 and "did you mean 'status'?" in typo.stderr
    key = stj(["status", "-c", "configs/demo.yaml", "--set", "train.epoch=3"])
    assert key.returncode == 2 and "train.epoch: unknown key (did you mean 'train.epochs'?)" in key.stderr
    # the environment names the store; --set wins over it
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    from_env = stj(["status", "-c", "configs/demo.yaml", "--json"], [], env)
    assert json.loads(from_env.stdout)["tracking_uri"] == env["MLFLOW_TRACKING_URI"], from_env.stderr[-2000:]
    over = stj(["status", "-c", "configs/demo.yaml", "--json"], overrides, env)
    assert json.loads(over.stdout)["champion"] is not None
    bad_env = stj(["status", "-c", "configs/demo.yaml"], [], {"STJ_TRAIN__EPOCHS": "many"})
    assert bad_env.returncode == 2 and "STJ_TRAIN__EPOCHS" in bad_env.stderr and "train.epochs" in bad_env.stderr
    helped = stj(["predict", "--help"])
    assert "examples:" in helped.stdout and "stj predict" in helped.stdout


def test_scrape_alone_fills_the_manifest_and_prints_its_report(tmp_path, overrides_for, stj) -> None:
    from core.manifest import manifest_path, read_manifest
    from core.processes import free_port

    overrides = [*overrides_for(tmp_path), f"scrape.base_url=http://127.0.0.1:{free_port()}"]
    proc = stj(["scrape", "-c", "configs/demo.yaml", "--quiet"], overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("scrape summary") and "36 saved" in proc.stdout, proc.stdout
    manifest = read_manifest(manifest_path(tmp_path / "data"))
    assert manifest["class"].value_counts().to_dict() == {"saree": 12, "trousers": 12, "jeans": 12}
    assert not (tmp_path / "mlflow.db").exists()  # the scrape alone trains and records nothing


def test_deploy_needs_a_prefect_server_and_a_real_pool_and_says_so_in_one_line(tmp_path, stj) -> None:
    no_server = {"PREFECT_API_URL": "", "PREFECT_HOME": str(tmp_path / "prefect")}
    done = stj(["deploy", "-c", "configs/demo.yaml"], env=no_server)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("stj: error: stj deploy registers with a Prefect server")
    assert "Traceback" not in done.stderr

    bad_cron = stj(["deploy", "-c", "configs/demo.yaml", "--cron", "every day"], env=no_server)
    assert bad_cron.returncode == 2 and "--cron 'every day'" in bad_cron.stderr, bad_cron.stderr[-2000:]
