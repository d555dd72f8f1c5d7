"""The alias history: moves recorded in a real MLflow registry, newest first; where a rollback goes."""

from __future__ import annotations

from mlflow import MlflowClient

from core.aliases import AliasMove, alias_history, move_alias, previous_version


def _move(kind: str, from_version: str | None, to_version: str) -> AliasMove:
    return AliasMove("champion", from_version, to_version, "2026-12-03T00:00:00+00:00", kind, "test", "")


def test_rollbacks_step_back_through_promotions_like_a_stack() -> None:
    history = [_move("gate", "2", "3"), _move("gate", "1", "2"), _move("gate", None, "1")]  # newest first
    assert previous_version(history, "3") == "2"
    history.insert(0, _move("rollback", "3", "2"))
    assert previous_version(history, "2") == "1"  # not back to 3: the rollback is skipped
    history.insert(0, _move("rollback", "2", "1"))
    assert previous_version(history, "1") is None  # version 1 came from nowhere
    history.insert(0, _move("promote", "1", "3"))
    assert previous_version(history, "3") == "1"  # the newest move into 3 came from 1
    assert previous_version([], "3") is None


def test_moves_are_recorded_in_the_registry_newest_first(tmp_path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert alias_history(client, "never-registered") == []
    client.create_registered_model("m")
    for _ in range(3):
        client.create_model_version("m", source=str(tmp_path))
    first = move_alias(client, "m", "champion", "1", kind="gate", by="run r1", why="first")
    move_alias(client, "m", "challenger", "3", kind="promote", by="stj promote (user u)", why="x" * 2000)
    move_alias(client, "m", "champion", "2", kind="gate", by="run r2", why="better")
    assert client.get_model_version_by_alias("m", "champion").version == 2
    assert first.from_version is None and first.to_version == "1"
    champion = alias_history(client, "m", "champion")
    assert [(m.from_version, m.to_version, m.by) for m in champion] == [("1", "2", "run r2"), (None, "1", "run r1")]
    every = alias_history(client, "m")
    assert [m.alias for m in every] == ["champion", "challenger", "champion"] and len(every[1].why) == 500
