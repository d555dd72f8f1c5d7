"""``stj promote N`` and ``stj rollback [--to N]``: a person moves ``tracking.alias`` (``@champion``).

Both run the infra check (:mod:`serving.infra_check`) on the target version before the move — not the
quality gate: a promotion by hand is a person's decision — and record the move, who made it and why, in the
alias history (:mod:`core.aliases`). A failed check moves nothing, says why in one line and alerts the
webhook. Replicas follow the alias within ``serve.reload_interval_s``. Neither runs a flow.
"""

from __future__ import annotations

from pathlib import Path

from configs.errors import UserError


def _client(config):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=config.tracking.uri)


def _registered(client, name: str, version: str) -> str:
    """``version`` normalised (``03`` is 3), if ``name`` has it; else a one-line error."""
    from mlflow.exceptions import MlflowException

    if not version.isascii() or not version.isdigit():
        raise UserError(f"version must be a registered version number, not {version!r}")
    try:
        return str(client.get_model_version(name, str(int(version))).version)
    except MlflowException:
        raise UserError(f"{name} has no version {version}") from None


def _check_then_move(config, client, version: str, kind: str, why: str) -> int:
    from core.aliases import command_user, current_version, move_alias
    from flows.notify import post_alert
    from serving.infra_check import infra_check
    from training.publishing.publish import canary_photos

    name, alias = config.tracking.model_name, config.tracking.alias
    was = current_version(client, name, alias)
    if was == version:
        print(f"stj: {name}@{alias} is already version {version}; nothing moved")
        return 0
    run_id = client.get_model_version(name, version).run_id
    if config.release.infra_check:
        photos = [
            Path(p)
            for p in canary_photos(run_id, config.tracking.uri, config.project.data_dir, config.release.canary_size)
        ]
        check = infra_check(config, name, version, [p for p in photos if p.is_file()], run_id)
        if not check.passed:
            message = f"{name} version {version} not moved to @{alias}: infra check failed: {check.reason}"
            alert = {"event": "infra_check_failed", "stage": kind, "message": message, "mlflow_run_id": run_id}
            post_alert(config.notify.webhook_url, alert, config.notify.timeout_s)
            raise UserError(message)
    move_alias(client, name, alias, version, kind=kind, by=command_user(f"stj {kind}"), why=why)
    print(f"stj: {name}@{alias}: version {was or 'none'} -> {version} ({kind}: {why})")
    return 0


def cmd_promote(config, args) -> int:
    """Move the alias to a registered version after its infra check (no quality gate: a person's decision)."""
    client = _client(config)
    version = _registered(client, config.tracking.model_name, args.version)
    return _check_then_move(config, client, version, "promote", args.reason or "promoted by hand")


def cmd_rollback(config, args) -> int:
    """Move the alias back: to ``--to N``, or to the version it held before the current one."""
    from core.aliases import alias_history, current_version, previous_version

    client, name, alias = _client(config), config.tracking.model_name, config.tracking.alias
    if args.to is not None:
        target = _registered(client, name, args.to)
    else:
        current = current_version(client, name, alias)
        if current is None:
            raise UserError(f"nothing to roll back: {name}@{alias} points at no version (run `stj run` first)")
        target = previous_version(alias_history(client, name, alias), current)
        if target is None:
            raise UserError(
                f"nothing to roll back to: no recorded move brought {name}@{alias} to version {current} from "
                "another version (name one with --to N)"
            )
    return _check_then_move(config, client, target, "rollback", args.reason or "rolled back by hand")
