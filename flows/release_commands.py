"""``stj promote N``, ``stj rollback [--to N]`` and the challenger: a person moves ``tracking.alias``
(``@champion``) or ``release.challenger_alias`` (``@challenger``).

``stj promote N`` and ``stj rollback`` run the infra check (:mod:`serving.infra_check`) on the target version
before the move — not the quality gate: a promotion by hand is a person's decision — and record the move, who
made it and why, in the alias history (:mod:`core.aliases`). A failed check moves nothing, says why in one line
and alerts the webhook. Replicas follow the alias within ``serve.reload_interval_s``. None runs a flow.

``stj promote N --as challenger`` names a challenger (after the same check): every replica scores a share of
live predictions with it in shadow (:mod:`serving.shadow`). ``stj promote challenger`` is the release rule:
it moves ``@champion`` to the challenger only when enough photos were scored in shadow
(``release.shadow_min_photos``), it agreed with the champion on enough of them
(``release.shadow_min_agreement``) and the quality gate passes it against the champion on its own run's test
photos; then ``@challenger`` is removed. ``stj promote none --as challenger`` removes it by hand.
"""

from __future__ import annotations

from pathlib import Path

from configs.errors import UserError


def _client(config):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=config.tracking.uri)


def _registered(client, name: str, version: str) -> str:
    """``version`` normalised (``03`` is 3), if ``name`` has it; else a one-line error."""
    from core.aliases import is_registered, version_number

    number = version_number(version)
    if number is None:
        raise UserError(f"version must be a registered version number, not {version!r}")
    if not is_registered(client, name, number):
        raise UserError(f"{name} has no version {version}")
    return number


def _check_then_move(config, client, version: str, kind: str, why: str, alias: str | None = None) -> int:
    """Infra-check ``version``, then point ``alias`` (default ``tracking.alias``) at it and record the move."""
    from core.aliases import command_user, current_version, move_alias
    from flows.notify import post_alert
    from serving.infra_check import infra_check
    from training.publishing.publish import canary_photos

    name, alias = config.tracking.model_name, alias or config.tracking.alias
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
    """Move ``@champion`` to a registered version after its infra check (no quality gate: a person's decision);
    with ``--as challenger``, name (or with ``none`` remove) the challenger; ``challenger`` as the version
    promotes the challenger by the release rule (:func:`promote_challenger`)."""
    client, name = _client(config), config.tracking.model_name
    if args.as_alias == "challenger":
        if args.version == "none":
            return _remove_challenger(config, client, args.reason or "removed by hand")
        version = _registered(client, name, args.version)
        why = args.reason or "named challenger by hand"
        return _check_then_move(config, client, version, "promote", why, alias=config.release.challenger_alias)
    if args.version == "challenger":
        return promote_challenger(config, client, args.reason)
    version = _registered(client, name, args.version)
    return _check_then_move(config, client, version, "promote", args.reason or "promoted by hand")


def _remove_challenger(config, client, why: str) -> int:
    from core.aliases import command_user, remove_alias

    name, alias = config.tracking.model_name, config.release.challenger_alias
    move = remove_alias(client, name, alias, kind="promote", by=command_user("stj promote"), why=why)
    if move is None:
        print(f"stj: {name} has no @{alias}; nothing removed")
    else:
        print(f"stj: {name}@{alias} removed (was version {move.from_version}): replicas stop mirroring to it")
    return 0


def promote_challenger(config, client, reason: str | None) -> int:
    """``@champion`` to the challenger if its shadow tally and the quality gate allow; one-line refusals."""
    import mlflow

    from core.aliases import command_user, current_version, remove_alias
    from core.shadow_tally import shadow_totals
    from training.publishing.publish import judge

    name, release = config.tracking.model_name, config.release
    version = current_version(client, name, release.challenger_alias)
    if version is None:
        raise UserError(
            f"no challenger: {name}@{release.challenger_alias} points at no version "
            "(name one with `stj promote N --as challenger`)"
        )
    champion = current_version(client, name, config.tracking.alias)
    if champion is None:
        raise UserError(f"no @{config.tracking.alias} to compare the challenger with: promote it by number")
    tally = shadow_totals(client, name, version, champion)
    refused = f"challenger version {version} not promoted"
    if tally.scored < release.shadow_min_photos:
        raise UserError(
            f"{refused}: it scored {tally.scored} photos in shadow against version {champion}, "
            f"release.shadow_min_photos asks for {release.shadow_min_photos}"
        )
    if tally.agreement < release.shadow_min_agreement:
        raise UserError(
            f"{refused}: it agreed with version {champion} on {tally.agreement:.1%} of {tally.scored} photos in "
            f"shadow, release.shadow_min_agreement asks for {release.shadow_min_agreement:.1%}"
        )
    run_id = client.get_model_version(name, version).run_id
    mlflow.set_tracking_uri(config.tracking.uri)  # the gate loads both models by their models:/ URIs
    gate = judge(config, f"models:/{name}/{version}", run_id).decision
    if not gate.promote:
        raise UserError(f"{refused}: the quality gate refused it: {gate.reason}")
    why = reason or (
        f"challenger agreed on {tally.agreement:.1%} of {tally.scored} photos in shadow; gate: {gate.reason}"
    )
    _check_then_move(config, client, version, "promote", why)
    remove_alias(client, name, release.challenger_alias, kind="promote", by=command_user("stj promote"), why="promoted")
    return 0


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
