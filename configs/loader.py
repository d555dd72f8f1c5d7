"""Load a YAML config file into :class:`configs.schema.Config`, with command-line overrides.

Errors are :class:`ConfigError` whose message is one line naming the file and the offending key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from configs.errors import UserError
from configs.schema import Config

C = TypeVar("C", bound=Config)


class ConfigError(UserError, ValueError):
    """A config file or override is unusable; the message is one line for the user."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``section.key=value`` into its key path and YAML-parsed value.

    Args:
        text: the override as typed on the command line.

    Returns:
        (key path, value) where the value is parsed as YAML (so ``3`` is an int, ``[a, b]`` a list).
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``section.key=value`` override applied."""
    merged: dict[str, Any] = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {'.'.join(path)}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return merged


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Turn a pydantic error into one line: ``<file>: <key.path>: <problem>`` (first error, count of others)."""
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        problem = "unknown key"
    else:
        problem = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{source}: {key}: {problem}{more}"


def load_config(path: str | Path | None, overrides: Iterable[str] = (), schema: type[C] = Config) -> C:
    """Read, override and validate a config.

    Args:
        path: a YAML file; ``None`` means all defaults.
        overrides: ``section.key=value`` strings applied after the file.
        schema: the root schema: the stages' :class:`Config`, or one that adds sections to it (the ``stj``
            command's ``flows.settings.RunConfig`` adds the offline catalog's).

    Returns:
        The validated, immutable config.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid.
    """
    source = str(path) if path is not None else "defaults"
    data: Any = {}
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"{source}: config file not found")
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{source}:{where}: not valid YAML").with_traceback(None) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: top level must be a mapping of sections")
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    if overrides:
        source = f"{source} (with --set)"
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
