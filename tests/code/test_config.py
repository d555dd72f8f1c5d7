"""Config loading: shipped files validate, unknown or invalid keys are one-line errors naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs import ConfigError, load_config
from flows.settings import load_run_config


@pytest.mark.parametrize("name", ["configs/stj.yaml", "configs/demo.yaml", "configs/finetune.yaml"])
def test_shipped_configs_are_valid(name: str) -> None:
    config = load_run_config(name)
    assert config.class_names == ["saree", "trousers", "jeans"]


def test_production_config_matches_the_brief() -> None:
    config = load_run_config("configs/stj.yaml")
    assert config.scrape.base_url == "https://www.amazon.in"
    assert config.scrape.classes["trousers"].queries == ["men trousers"]
    assert config.scrape.classes["jeans"].queries == ["men jeans"]
    assert config.train.image_size == 224 and config.train.weights == "imagenet"
    assert config.train.weights_fallback == "error"
    assert config.catalog is None
    assert config.tracking.gate_floor >= 0.5  # a scheduled first run never serves a model near chance (1/3)


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epocs: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert str(err.value) == f"{bad}: train.epocs: unknown key (did you mean 'train.epochs'?)"


def test_invalid_value_names_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("split:\n  test_size: 1.5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: split.test_size: .*less than 1"):
        load_config(bad)


def test_unknown_section_and_bad_weights(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"trian: unknown key"):
        load_run_config("configs/demo.yaml", ["trian.epochs=3"])
    with pytest.raises(ConfigError, match=r"train.weights: must be 'imagenet', 'none'"):
        load_run_config("configs/demo.yaml", ["train.weights=resnet"])


def test_overrides_parse_yaml_values() -> None:
    config = load_run_config("configs/demo.yaml", ["train.epochs=7", "scrape.classes.saree.queries=[sari, saree]"])
    assert config.train.epochs == 7
    assert config.scrape.classes["saree"].queries == ["sari", "saree"]


def test_malformed_override_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_run_config("configs/demo.yaml", ["train.epochs"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+: not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_cli_prints_one_line_without_traceback(tmp_path: Path, stj) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("serve:\n  port: -1\n")
    proc = stj(["run", "--config", str(bad)], timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"stj: error: {bad}: serve.port: Input should be greater than or equal to 0"]


def test_the_catalog_section_is_not_part_of_the_stages_schema() -> None:
    """The stages' schema knows nothing of the offline catalog; the command's schema adds its section."""
    with pytest.raises(ConfigError, match=r"demo.yaml: catalog: unknown key"):
        load_config("configs/demo.yaml")
    assert load_run_config("configs/demo.yaml").catalog.products_per_class == 200
    with pytest.raises(ConfigError, match=r"catalog.faults.eror_rate: unknown key"):
        load_run_config("configs/demo.yaml", ["catalog.faults.eror_rate=0.5"])


def test_a_preset_extends_another_config(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 7\n  dense_units: [64, 32]\n  finetune: {epochs: 3}\n")
    (tmp_path / "presets").mkdir()
    preset = tmp_path / "presets" / "p.yaml"
    preset.write_text("extends: ../base.yaml\ntrain:\n  dense_units: [8, 4]\n  finetune: {enabled: true}\n")
    config = load_config(preset, ["train.patience=9"])
    assert (config.train.epochs, config.train.dense_units, config.train.patience) == (7, (8, 4), 9)  # merged
    assert config.train.finetune.enabled and config.train.finetune.epochs == 3  # sections merge key by key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("extends: missing.yaml\n", "extends: missing.yaml: config file not found"),
        ("extends: [a]\n", "extends: expected the path of another config file"),
        ("extends: p.yaml\n", "extends: p.yaml extends this file again (a cycle)"),
    ],
)
def test_bad_extends_is_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(preset)
    assert str(err.value) == f"{preset}: {message}"


def test_environment_sits_between_the_file_and_set() -> None:
    env = {"STJ_TRAIN__EPOCHS": "7", "MLFLOW_TRACKING_URI": "sqlite:///other.db", "STJ_OWNER": "123", "HOME": "/x"}
    config = load_run_config("configs/demo.yaml", [], environ=env)
    assert config.train.epochs == 7 and config.tracking.uri == "sqlite:///other.db"  # over the file
    assert load_run_config("configs/demo.yaml", ["train.epochs=9"], environ=env).train.epochs == 9  # --set wins
    assert load_run_config("configs/demo.yaml", [], environ={}).train.epochs != 7  # nothing read unless given
    nested = load_run_config("configs/demo.yaml", [], environ={"STJ_TRAIN__FINETUNE__EPOCHS": "3"})
    assert nested.train.finetune.epochs == 3


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"environment STJ_TRAIN__EPOCHS\): train.epochs: .*integer"):
        load_run_config("configs/demo.yaml", [], environ={"STJ_TRAIN__EPOCHS": "many"})
    with pytest.raises(ConfigError, match=r"trian: unknown key \(did you mean 'train'\?\)"):
        load_run_config("configs/demo.yaml", [], environ={"STJ_TRIAN__EPOCHS": "3"})


@pytest.mark.parametrize(
    ("override", "suggestion"),
    [
        ("train.epoch=3", "did you mean 'train.epochs'?"),
        ("train.finetune.unfreeze=2", "did you mean 'train.finetune.unfreeze_layers'?"),
        ("serve.prot=80", "did you mean 'serve.port'?"),
        ("catalog.prot=80", "did you mean 'catalog.port'?"),
    ],
)
def test_an_unknown_key_close_to_a_known_one_gets_a_suggestion(override: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_run_config("configs/demo.yaml", [override])
    assert str(err.value).endswith(f"unknown key ({suggestion})")


def test_an_unknown_key_far_from_any_gets_none() -> None:
    with pytest.raises(ConfigError) as err:
        load_run_config("configs/demo.yaml", ["train.zzzzzz=1"])
    assert str(err.value).endswith("train.zzzzzz: unknown key")


def test_a_sweep_file_expands_to_every_point_of_its_grid(tmp_path: Path) -> None:
    from configs.sweep import override_config, read_grid

    points = read_grid("configs/sweep.yaml")
    assert points and len({tuple(p) for p in points}) == len(points)
    grid = tmp_path / "grid.yaml"
    grid.write_text("grid:\n  train.learning_rate: [0.001, 0.01]\n  train.dense_units: [[64], [128, 32]]\n")
    assert read_grid(grid) == [
        ["train.learning_rate=0.001", "train.dense_units=[64]"],
        ["train.learning_rate=0.001", "train.dense_units=[128, 32]"],
        ["train.learning_rate=0.01", "train.dense_units=[64]"],
        ["train.learning_rate=0.01", "train.dense_units=[128, 32]"],
    ]
    config = override_config(load_run_config("configs/demo.yaml"), read_grid(grid)[3])
    assert config.train.learning_rate == 0.01 and list(config.train.dense_units) == [128, 32]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "sweep file not found"),
        ("grid: [unclosed", "not valid YAML"),
        ("train.epochs: [1, 2]", "expected exactly one top-level key 'grid'"),
        ("grid:\n  train.epochs: []", "grid.train.epochs: expected a non-empty list"),
    ],
)
def test_a_bad_sweep_file_is_named_with_what_is_wrong(tmp_path: Path, text: str | None, message: str) -> None:
    from configs.sweep import read_grid

    grid = tmp_path / "grid.yaml"
    if text is not None:
        grid.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        read_grid(grid)
    assert str(grid) in str(error.value)


def test_a_sweep_point_with_an_unknown_key_is_refused() -> None:
    from configs.sweep import override_config

    with pytest.raises(ConfigError, match="train.epoch"):
        override_config(load_run_config("configs/demo.yaml"), ["train.epoch=3"])


def test_the_renamed_history_path_is_read_as_a_database_url_with_a_one_line_notice(tmp_path: Path, capsys) -> None:
    file = tmp_path / "old.yaml"
    file.write_text("serve:\n  history_path: state/history.db\n")
    assert load_config(file).serve.database_url == "sqlite:///state/history.db"
    notice = capsys.readouterr().err.strip()
    assert notice.count("\n") == 0 and "serve.history_path is now serve.database_url" in notice
    both = load_config(file, ["serve.database_url=postgresql://stj@db:5432/stj"])  # the new key wins
    assert both.serve.database_url == "postgresql://stj@db:5432/stj"
    with pytest.raises(ConfigError, match="serve.database_url"):
        load_config(None, ["serve.database_url=mysql://db/stj"])
