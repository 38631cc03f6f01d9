"""Scheduled key lifecycle: due rotations, keep-last-K floors, retention and token expiry.

Everything here takes ``now`` explicitly, so the scheduler (and tests) inject the clock.

Rotation is *due* when the primary is older than ``rotate_every_seconds`` (counted from
``last_rotated_at``) or has reserved ``rotate_after_encryptions``. A due key is rotated
once, with a compare-and-swap on its primary version; the next due time counts from
that rotation, so a server that was down for several periods rotates once when it comes
back (no catch-up burst), and two replicas racing on one period make one version.

A version is *in use* when it encrypted or decrypted anything (on any replica) within
``in_use_seconds`` of ``now`` (see :attr:`VersionRecord.last_used_at`; decryptions are
flushed to the store by each replica's scheduler tick). Keep-last-K never raises the
decryption floor past a version in use unless the key's policy says
``floor_past_in_use``.

Retention: a version whose ``retain_for_seconds`` have passed since it stopped being
primary is scheduled for destruction with a grace period; a scheduled version whose
grace period is over is destroyed (its wrapped DEK erased). :func:`plan_retention` is
exactly what :func:`apply_retention` then does at the same ``now``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from keysvc.errors import KeysvcError
from keysvc.keys.faults import checkpoint
from keysvc.keys.keyring import DEFAULT_DESTROY_GRACE_SECONDS, Keyring
from keysvc.store.base import Store
from keysvc.store.models import KeyRecord, VersionRecord, VersionState

log = logging.getLogger(__name__)

SCHEDULER_ACTOR = "keysvc:scheduler"
DEFAULT_IN_USE_SECONDS = 7 * 86_400


class Action(StrEnum):
    SCHEDULE = "schedule"  # retain-for passed: schedule for destruction
    DESTROY = "destroy"  # grace period over: erase the wrapped DEK


@dataclass(frozen=True)
class RetentionAction:
    key: str
    version: int
    action: Action
    destroy_after: float


def next_rotation_at(key: KeyRecord) -> float | None:
    period = key.policy.rotate_every_seconds
    return key.last_rotated_at + period if period else None


def rotation_due(key: KeyRecord, now: float) -> bool:
    due = next_rotation_at(key)
    if due is not None and now >= due:
        return True
    limit = key.policy.rotate_after_encryptions
    return bool(limit) and key.primary.encryptions >= limit


def rotate_due(keyring: Keyring, store: Store, now: float, actor: str = SCHEDULER_ACTOR) -> list[str]:
    """Rotate every due key once; returns the names rotated here (not those another replica did)."""
    rotated: list[str] = []
    for key in store.list_keys():
        if not rotation_due(key, now):
            continue
        try:
            if keyring.rotate_if(key.name, actor, key.primary.version) is not None:
                rotated.append(key.name)
        except KeysvcError as exc:
            log.warning("scheduled rotation failed", extra={"key": key.name, "reason": exc.reason})
    return rotated


def in_use(version: VersionRecord, now: float, in_use_seconds: float) -> bool:
    return version.state is VersionState.PRIMARY or version.last_used_at >= now - in_use_seconds


def floor_target(key: KeyRecord, now: float, in_use_seconds: float) -> int:
    """The min_decryption_version keep-last-K asks for (never lower than the current floor)."""
    keep = key.policy.keep_versions
    current = key.min_decryption_version
    if not keep:
        return current
    wanted = max(current, key.primary.version - keep + 1)
    if not key.policy.floor_past_in_use:
        for v in key.versions:
            if current <= v.version < wanted and in_use(v, now, in_use_seconds):
                wanted = v.version
                break
    return wanted


def advance_floors(
    keyring: Keyring, store: Store, now: float, in_use_seconds: float = DEFAULT_IN_USE_SECONDS
) -> dict[str, int]:
    """Apply keep-last-K to every key; returns {key: new floor} for those that moved."""
    moved: dict[str, int] = {}
    for key in store.list_keys():
        target = floor_target(key, now, in_use_seconds)
        if target > key.min_decryption_version and keyring.advance_floor(key.name, target):
            log.info("raised decryption floor", extra={"key": key.name, "version": target})
            moved[key.name] = target
    return moved


def plan_retention(
    store: Store, now: float, grace_seconds: float = DEFAULT_DESTROY_GRACE_SECONDS
) -> list[RetentionAction]:
    """What :func:`apply_retention` would do at ``now`` (a dry run)."""
    actions: list[RetentionAction] = []
    for key in store.list_keys():
        retain = key.policy.retain_for_seconds
        for v in key.versions:
            if v.state is VersionState.SCHEDULED_FOR_DESTRUCTION:
                if v.destroy_after is not None and v.destroy_after <= now:
                    actions.append(RetentionAction(key.name, v.version, Action.DESTROY, v.destroy_after))
            elif (
                retain
                and v.state in (VersionState.ACTIVE, VersionState.DISABLED)
                and v.retired_at is not None
                and v.retired_at + retain <= now
            ):
                actions.append(RetentionAction(key.name, v.version, Action.SCHEDULE, now + grace_seconds))
    return actions


def apply_retention(
    keyring: Keyring,
    store: Store,
    now: float,
    grace_seconds: float = DEFAULT_DESTROY_GRACE_SECONDS,
    actor: str = SCHEDULER_ACTOR,
    progress: Callable[[int, int], None] | None = None,
) -> list[RetentionAction]:
    """Carry out the plan at ``now``, one committed step per action; returns the actions done.

    Resumable: killed halfway, the next run's plan holds exactly the actions not yet done.
    """
    plan = plan_retention(store, now, grace_seconds)
    done: list[RetentionAction] = []
    for i, action in enumerate(plan):
        if action.action is Action.DESTROY:
            ok = keyring.destroy_due(action.key, action.version, now, actor)
        else:
            ok = store.transition_version(
                action.key,
                action.version,
                {VersionState.ACTIVE, VersionState.DISABLED},
                VersionState.SCHEDULED_FOR_DESTRUCTION,
                now,
                actor,
                action.destroy_after,
            )
            keyring.get(action.key, fresh=True)
            if ok:
                log.warning(
                    "key version scheduled for destruction by retention",
                    extra={"key": action.key, "version": action.version},
                )
        if ok:
            done.append(action)
        checkpoint("retention.applied")
        if progress is not None:
            progress(i + 1, len(plan))
    return done
