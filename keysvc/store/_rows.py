"""Row <-> record conversions shared by the SQLite and PostgreSQL stores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any

from keysvc.store.models import (
    KeyPolicy,
    KeyRecord,
    Purpose,
    TokenRecord,
    VersionEvent,
    VersionRecord,
    VersionState,
)

KEY_COLUMNS = (
    "name, purpose, created_at, created_by, policy, format, format_options, "
    "min_decryption_version, last_rotated_at"
)
VERSION_COLUMNS = (
    "version, state, created_at, wrapped_dek, kek_version, encryptions, state_changed_at, "
    "state_changed_by, destroy_after, retired_at, last_used_at"
)
TOKEN_COLUMNS = "key_name, token, ciphertext, key_version, fingerprint, created_at, expires_at, metadata"  # noqa: S105
_POLICY_FIELDS = {f.name for f in fields(KeyPolicy)}


def policy_json(policy: KeyPolicy) -> str:
    return json.dumps(asdict(policy), sort_keys=True)


def policy_from_json(text: str) -> KeyPolicy:
    doc = json.loads(text)
    return KeyPolicy(**{k: v for k, v in doc.items() if k in _POLICY_FIELDS})


def key_params(key: KeyRecord) -> tuple[Any, ...]:
    return (
        key.name,
        key.purpose.value,
        key.created_at,
        key.created_by,
        policy_json(key.policy),
        key.format,
        json.dumps(key.format_options),
        key.min_decryption_version,
        key.last_rotated_at,
    )


def version_params(name: str, v: VersionRecord) -> tuple[Any, ...]:
    return (
        name,
        v.version,
        v.state.value,
        v.created_at,
        v.wrapped_dek,
        v.kek_version,
        v.encryptions,
        v.state_changed_at,
        v.state_changed_by,
        v.destroy_after,
        v.retired_at,
        v.last_used_at,
    )


def version_from_row(v: Sequence[Any]) -> VersionRecord:
    return VersionRecord(
        version=int(v[0]),
        state=VersionState(v[1]),
        created_at=float(v[2]),
        wrapped_dek=bytes(v[3]) if v[3] is not None else None,
        kek_version=int(v[4]),
        encryptions=int(v[5]),
        state_changed_at=float(v[6]),
        state_changed_by=str(v[7]),
        destroy_after=float(v[8]) if v[8] is not None else None,
        retired_at=float(v[9]) if v[9] is not None else None,
        last_used_at=float(v[10] or 0.0),
    )


def key_from_row(row: Sequence[Any], versions: Sequence[Sequence[Any]]) -> KeyRecord:
    return KeyRecord(
        name=str(row[0]),
        purpose=Purpose(row[1]),
        created_at=float(row[2]),
        created_by=str(row[3]),
        policy=policy_from_json(str(row[4])),
        format=str(row[5]),
        format_options=json.loads(str(row[6])),
        min_decryption_version=int(row[7]),
        last_rotated_at=float(row[8]),
        versions=tuple(version_from_row(v) for v in versions),
    )


EVENT_COLUMNS = "key_name, version, at, actor, from_state, to_state"


def event_from_row(r: Sequence[Any]) -> VersionEvent:
    return VersionEvent(
        key_name=str(r[0]),
        version=int(r[1]),
        at=float(r[2]),
        actor=str(r[3]),
        from_state=VersionState(r[4]) if r[4] is not None else None,
        to_state=VersionState(r[5]),
    )


def token_params(t: TokenRecord) -> tuple[Any, ...]:
    return (
        t.key_name,
        t.token,
        t.ciphertext,
        t.key_version,
        t.fingerprint,
        t.created_at,
        t.expires_at,
        json.dumps(t.metadata, sort_keys=True),
    )


def token_from_row(r: Sequence[Any]) -> TokenRecord:
    return TokenRecord(
        key_name=str(r[0]),
        token=str(r[1]),
        ciphertext=bytes(r[2]),
        key_version=int(r[3]),
        fingerprint=bytes(r[4]) if r[4] is not None else None,
        created_at=float(r[5]),
        expires_at=float(r[6]) if r[6] is not None else None,
        metadata=json.loads(str(r[7])),
    )


def reservation_grant(row: Sequence[Any], count: int, limit: int) -> int:
    """How many of ``count`` encryptions a version row (encryptions, state) may reserve:
    only the primary encrypts, and its counter never passes ``limit`` (the nonce budget)."""
    if row[1] != VersionState.PRIMARY.value:
        return 0
    return max(0, min(count, limit - int(row[0])))
