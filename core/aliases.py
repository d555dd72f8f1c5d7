"""Alias moves with a history, kept in the model registry itself.

Every move of a registered model's alias — the quality gate's, ``stj promote``'s, ``stj rollback``'s, a
challenger named or removed — is recorded as one registered-model tag, ``alias_history.<alias>.<time in ns>``,
whose value is the move as JSON (from, to, when, kind, by what, why). Every client of the store (replicas,
``stj status``, ``/about``, the MLflow UI's "Tags" of the model) sees the same history, with no second
database to keep in step; a move made by hand in the MLflow UI is not recorded (``previous_version`` then has nothing to go back to).

Cost: a move is two registry writes; the history is one registry read, O(moves) (one tag each: a weekly
schedule adds ~52 a year).
"""

from __future__ import annotations

import getpass
import json
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

PREFIX = "alias_history."
KINDS = ("gate", "promote", "rollback", "register")
WHY_MAX = 500  # a tag value holds 5 000 characters: the reason is kept short


@dataclass(frozen=True)
class AliasMove:
    """One recorded move of ``alias`` from ``from_version`` to ``to_version`` (``None``: nowhere; a challenger's
    alias is removed once it is promoted, or by hand)."""

    alias: str
    from_version: str | None
    to_version: str | None
    at: str  # ISO 8601, UTC
    kind: str  # gate | promote | rollback | register
    by: str  # what moved it: "run <id>", "stj promote (user <name>)", ...
    why: str


def current_version(client: MlflowClient, model: str, alias: str) -> str | None:
    """The version ``model@alias`` points at, or ``None`` when the alias (or the model) does not exist."""
    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException:
        return None


def version_number(text: str) -> str | None:
    """``text`` as a registered version's number (``03`` is 3), or ``None`` when it is not one (1 to 9 ASCII
    digits: ``str.isdigit()`` also takes other scripts' digits)."""
    return str(int(text)) if re.fullmatch(r"[0-9]{1,9}", text) else None


def is_registered(client: MlflowClient, model: str, version: str) -> bool:
    """Whether ``model`` has ``version`` in the registry."""
    try:
        client.get_model_version(model, version)
    except MlflowException:
        return False
    return True


def command_user(command: str) -> str:
    """``by`` for a move a person made from the command line: the command and the operating-system user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = "unknown"
    return f"{command} (user {user})"


def move_alias(client: MlflowClient, model: str, alias: str, version: str, kind: str, by: str, why: str) -> AliasMove:
    """Point ``model@alias`` at ``version`` and record the move; returns it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    move = AliasMove(
        alias=alias,
        from_version=current_version(client, model, alias),
        to_version=str(version),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        kind=kind,
        by=by,
        why=why[:WHY_MAX],
    )
    client.set_registered_model_alias(model, alias, str(version))
    client.set_registered_model_tag(model, f"{PREFIX}{alias}.{time.time_ns()}", json.dumps(asdict(move)))
    return move


def remove_alias(client: MlflowClient, model: str, alias: str, kind: str, by: str, why: str) -> AliasMove | None:
    """Remove ``model@alias`` and record it (a move to ``None``); ``None`` when the alias did not exist."""
    was = current_version(client, model, alias)
    if was is None:
        return None
    move = AliasMove(alias, was, None, datetime.now(UTC).isoformat(timespec="seconds"), kind, by, why[:WHY_MAX])
    client.delete_registered_model_alias(model, alias)
    client.set_registered_model_tag(model, f"{PREFIX}{alias}.{time.time_ns()}", json.dumps(asdict(move)))
    return move


def alias_history(client: MlflowClient, model: str, alias: str | None = None) -> list[AliasMove]:
    """The recorded moves of ``model``'s aliases (only ``alias``'s, when given), newest first; ``[]`` for a
    model that is not registered."""
    try:
        tags = client.get_registered_model(model).tags
    except MlflowException:
        return []
    moves = []
    for key in sorted((k for k in tags if k.startswith(PREFIX)), key=lambda k: int(k.rsplit(".", 1)[1]), reverse=True):
        move = AliasMove(**json.loads(tags[key]))
        if alias is None or move.alias == alias:
            moves.append(move)
    return moves


def previous_version(history: list[AliasMove], current: str | None) -> str | None:
    """Where a rollback from ``current`` goes: the version the alias held before ``current`` was last moved
    to by the gate or a promotion (rollbacks are skipped, so repeated rollbacks step further back, as a
    stack). ``None`` when no recorded move led to ``current`` from another version."""
    for move in history:
        if move.to_version == current and move.kind != "rollback" and move.from_version != current:
            return move.from_version
    return None
