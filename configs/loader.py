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


def _read_mapping(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ConfigError(f"{file}: config file not found")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{file}:{where}: not valid YAML").with_traceback(None) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: top level must be a mapping of sections")
    return data


def merge_sections(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``own`` laid over it: mappings merge key by key, anything else (lists too) is replaced."""
    merged = _deep_copy(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_sections(merged[key], value)
        else:
            merged[key] = _deep_copy(value) if isinstance(value, dict) else value
    return merged


def read_config_file(file: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's sections, with ``extends: other.yaml`` (relative to the file) resolved first.

    A preset names the config it builds on and states only what differs; chains are allowed, cycles are not.
    """
    data = _read_mapping(file)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{file}: extends: expected the path of another config file")
    base_file = file.parent / parent
    if base_file.resolve() in {f.resolve() for f in (*_seen, file)}:
        raise ConfigError(f"{file}: extends: {parent} extends this file again (a cycle)")
    if not base_file.is_file():
        raise ConfigError(f"{file}: extends: {parent}: config file not found")
    return merge_sections(read_config_file(base_file, (*_seen, file)), data)


def load_config(path: str | Path | None, overrides: Iterable[str] = (), schema: type[C] = Config) -> C:
    """Read, override and validate a config.

    Args:
        path: a YAML file (it may name another it ``extends``); ``None`` means all defaults.
        overrides: ``section.key=value`` strings applied after the file.
        schema: the root schema: the stages' :class:`Config`, or one that adds sections to it (the ``stj``
            command's ``flows.settings.RunConfig`` adds the offline catalog's).

    Returns:
        The validated, immutable config.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid.
    """
    source = str(path) if path is not None else "defaults"
    data: Any = read_config_file(Path(path)) if path is not None else {}
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    if overrides:
        source = f"{source} (with --set)"
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
