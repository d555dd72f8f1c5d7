"""Sweep grids: a YAML file whose ``grid`` maps config keys to lists of values, one run per combination.

    grid:
      train.learning_rate: [0.001, 0.0003]
      train.dropout: [[0.3, 0.2], [0.5, 0.3]]

Every point is validated like a ``--set`` override, so a bad grid fails before anything runs.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import ValidationError

from configs.loader import ConfigError, apply_overrides, format_validation_error
from configs.schema import Config

C = TypeVar("C", bound=Config)


def read_grid(path: str | Path) -> list[list[str]]:
    """Expand a sweep file's ``grid`` into one ``section.key=value`` override list per point (cartesian).

    Raises:
        ConfigError: the file is missing or not a grid.
    """
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{file}: sweep file not found")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError:
        raise ConfigError(f"{file}: not valid YAML") from None
    grid = data.get("grid") if isinstance(data, dict) else None
    if not isinstance(grid, dict) or not grid or set(data) != {"grid"}:
        raise ConfigError(f"{file}: expected exactly one top-level key 'grid' mapping config keys to value lists")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{file}: grid.{key}: expected a non-empty list of values")
    keys = list(grid)
    return [
        [f"{k}={_yaml_value(v)}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(grid[k] for k in keys))
    ]


def _yaml_value(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def override_config(config: C, overrides: list[str]) -> C:
    """``config`` with ``section.key=value`` overrides applied and validated (same schema as ``config``).

    Raises:
        ConfigError: an override names an unknown key or an invalid value.
    """
    try:
        return type(config).model_validate(apply_overrides(config.model_dump(mode="json"), overrides))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "sweep grid", type(config))) from None
