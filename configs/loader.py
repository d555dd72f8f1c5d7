"""Load a YAML config file into :class:`configs.schema.Config`, with environment and command-line overrides.

Precedence, highest first: ``--set section.key=value`` > the environment (``STJ_SECTION__KEY=value``, and
the standard ``MLFLOW_TRACKING_URI``) > the config file (and the file it ``extends``) > the schema's defaults.

Errors are :class:`ConfigError` whose message is one line naming the file (or variable) and the offending
key, with a suggestion when an unknown key is close to a known one.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from configs.errors import UserError
from configs.schema import Config

C = TypeVar("C", bound=Config)

ENV_PREFIX = "STJ_"
ENV_NESTING = "__"  # STJ_TRAIN__EPOCHS: section and key (and any deeper level) joined by a double underscore
STANDARD_ENV = {"MLFLOW_TRACKING_URI": "tracking.uri"}  # variables other tools define, read as config keys
# keys an earlier release had: (section, old key) -> (new key, the new value made from the old one)
RENAMED = {("serve", "history_path"): ("database_url", lambda path: f"sqlite:///{path}")}


class ConfigError(UserError, ValueError):
    """A config file or override is unusable; the message is one line for the user."""


def parse_override(text: str, origin: str = "--set") -> tuple[list[str], Any]:
    """Split ``section.key=value`` into its key path and YAML-parsed value.

    Args:
        text: the override as typed on the command line.
        origin: where it came from, for the error message (``--set``, or an environment variable's name).

    Returns:
        (key path, value) where the value is parsed as YAML (so ``3`` is an int, ``[a, b]`` a list).
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{origin} {text!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin} {key}: value is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str], origin: str = "--set") -> dict[str, Any]:
    """Return a copy of ``data`` with each ``section.key=value`` override applied."""
    merged: dict[str, Any] = _deep_copy(data)
    for text in overrides:
        path, value = parse_override(text, origin)
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"{origin} {'.'.join(path)}: {part} is not a section")
            node = child
        node[path[-1]] = value
    return merged


def environment_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """``variable -> section.key=value`` for every config value the environment sets: ``STJ_SECTION__KEY``
    (``STJ_TRAIN__EPOCHS=5`` is ``train.epochs=5``) and the standard variables in :data:`STANDARD_ENV`.
    ``STJ_`` variables without a double underscore are not config keys and are left alone."""
    found = {name: f"{key}={environ[name]}" for name, key in STANDARD_ENV.items() if environ.get(name)}
    for name in sorted(environ):
        if name.startswith(ENV_PREFIX) and ENV_NESTING in name:
            path = name.removeprefix(ENV_PREFIX).lower().split(ENV_NESTING)
            found[name] = f"{'.'.join(path)}={environ[name]}"
    return found


def _deep_copy(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in data.items()}


def _section(annotation: Any) -> type[BaseModel] | None:
    """The section model an annotation holds (``Section`` or ``Section | None``), if any."""
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def known_keys(schema: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys the section at ``path`` accepts (none when the path leaves the schema's sections)."""
    model: type[BaseModel] | None = schema
    for part in path:
        field = model.model_fields.get(str(part))
        model = _section(field.annotation) if field else None
        if model is None:
            return []
    return list(model.model_fields)


def format_validation_error(exc: ValidationError, source: str, schema: type[BaseModel] | None = None) -> str:
    """Turn a pydantic error into one line: ``<file>: <key.path>: <problem>`` (first error, count of others);
    an unknown key close to one ``schema`` knows gets a "did you mean"."""
    errors = exc.errors()
    first = errors[0]
    key = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        problem = "unknown key"
        loc = tuple(first["loc"])
        close = difflib.get_close_matches(str(loc[-1]), known_keys(schema, loc[:-1]), n=1) if schema else []
        if close:
            problem += f" (did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?)"
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


def read_renamed_keys(data: dict[str, Any], source: str) -> dict[str, Any]:
    """``data`` with each key of :data:`RENAMED` read as its new key (unless that is set too), and a one-line
    notice on stderr saying what to write instead."""
    for (section, old), (new, convert) in RENAMED.items():
        values = data.get(section)
        if not isinstance(values, dict) or old not in values:
            continue
        values = dict(values)
        value = values.pop(old)
        values.setdefault(new, convert(value))
        data = {**data, section: values}
        print(
            f"stj: {source}: {section}.{old} is now {section}.{new}; read as {section}.{new}={values[new]} "
            "(rename it to stop this notice)",
            file=sys.stderr,
        )
    return data


def load_config(
    path: str | Path | None,
    overrides: Iterable[str] = (),
    schema: type[C] = Config,
    environ: Mapping[str, str] | None = None,
) -> C:
    """Read, override and validate a config.

    Args:
        path: a YAML file (it may name another it ``extends``); ``None`` means all defaults.
        overrides: ``section.key=value`` strings applied last (the command line's ``--set``).
        schema: the root schema: the stages' :class:`Config`, or one that adds sections to it (the ``stj``
            command's ``flows.settings.RunConfig`` adds the offline catalog's).
        environ: environment variables to read config values from (see :func:`environment_overrides`),
            applied between the file and ``overrides``; ``None`` reads none.

    Returns:
        The validated, immutable config.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or invalid.
    """
    source = str(path) if path is not None else "defaults"
    data: Any = read_config_file(Path(path)) if path is not None else {}
    from_env = environment_overrides(environ or {})
    for name, text in from_env.items():
        data = apply_overrides(data, [text], origin=name)
    overrides = list(overrides)
    data = apply_overrides(data, overrides)
    layers = [*(["environment " + ", ".join(from_env)] if from_env else []), *(["--set"] if overrides else [])]
    if layers:
        source = f"{source} (with {' and '.join(layers)})"
    try:
        return schema.model_validate(read_renamed_keys(data, source))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, schema)) from None
