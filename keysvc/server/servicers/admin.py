"""Admin service: key management (proto <-> domain translation only)."""

from __future__ import annotations

import logging
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from keysvc.errors import InvalidArgument
from keysvc.keys import lifecycle
from keysvc.keys.kek_rotation import KekReport, kek_status, rotate_kek
from keysvc.keys.keyring import DEFAULT_DESTROY_GRACE_SECONDS, Keyring
from keysvc.server.pipeline import principal
from keysvc.store.base import Store
from keysvc.store.models import KeyPolicy, KeyRecord, Purpose, VersionRecord, VersionState
from keysvc.tokens.engine import Tokenizer, validate_token_key
from keysvc_client._pb.keysvc.v1 import admin_pb2 as pb
from keysvc_client._pb.keysvc.v1 import admin_pb2_grpc

log = logging.getLogger(__name__)

_PURPOSES = {
    pb.KEY_PURPOSE_ENCRYPT: Purpose.ENCRYPT,
    pb.KEY_PURPOSE_FPE: Purpose.FPE,
    pb.KEY_PURPOSE_VAULT_TOKEN: Purpose.VAULT_TOKEN,
}
_PURPOSE_PB = {v: k for k, v in _PURPOSES.items()}
_STATES = {
    VersionState.PRIMARY: pb.VERSION_STATE_PRIMARY,
    VersionState.ACTIVE: pb.VERSION_STATE_ACTIVE,
    VersionState.DISABLED: pb.VERSION_STATE_DISABLED,
    VersionState.SCHEDULED_FOR_DESTRUCTION: pb.VERSION_STATE_SCHEDULED_FOR_DESTRUCTION,
    VersionState.DESTROYED: pb.VERSION_STATE_DESTROYED,
}
_STATES_FROM_PB = {v: k for k, v in _STATES.items()}


def _ts(seconds: float | None) -> Timestamp | None:
    if not seconds:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def policy_from_pb(policy: pb.KeyPolicy) -> KeyPolicy:
    return KeyPolicy(
        rotate_every_seconds=policy.rotate_every_seconds,
        rotate_after_encryptions=policy.rotate_after_encryptions,
        keep_versions=policy.keep_versions,
        retain_for_seconds=policy.retain_for_seconds,
        floor_past_in_use=policy.floor_past_in_use,
    )


def version_to_pb(v: VersionRecord) -> pb.KeyVersion:
    return pb.KeyVersion(
        version=v.version,
        state=_STATES[v.state],
        created_at=_ts(v.created_at),
        encryptions=v.encryptions,
        state_changed_at=_ts(v.state_changed_at),
        state_changed_by=v.state_changed_by,
        destroy_after=_ts(v.destroy_after),
        kek_version=v.kek_version,
        retired_at=_ts(v.retired_at),
        last_used_at=_ts(v.last_used_at),
    )


def key_to_pb(key: KeyRecord) -> pb.Key:
    p = key.policy
    next_rotation = lifecycle.next_rotation_at(key)
    return pb.Key(
        name=key.name,
        purpose=_PURPOSE_PB[key.purpose],
        created_at=_ts(key.created_at),
        primary_version=key.primary.version,
        min_decryption_version=key.min_decryption_version,
        versions=[version_to_pb(v) for v in key.versions],
        policy=pb.KeyPolicy(
            rotate_every_seconds=p.rotate_every_seconds,
            rotate_after_encryptions=p.rotate_after_encryptions,
            keep_versions=p.keep_versions,
            retain_for_seconds=p.retain_for_seconds,
            floor_past_in_use=p.floor_past_in_use,
        ),
        format=key.format,
        format_options=key.format_options,
        last_rotated_at=_ts(key.last_rotated_at),
        next_rotation_at=_ts(next_rotation),
        created_by=key.created_by,
    )


def retention_to_pb(actions: list[lifecycle.RetentionAction]) -> pb.RetentionPlan:
    return pb.RetentionPlan(
        actions=[
            pb.RetentionAction(
                key=a.key, version=a.version, destroy_after=_ts(a.destroy_after), action=a.action.value
            )
            for a in actions
        ]
    )


def kek_report_to_pb(provider: str, report: KekReport, healthy: bool) -> pb.KekStatus:
    return pb.KekStatus(
        provider=provider,
        wrapped_by_version=report.wrapped_by_version,
        rewrapped=report.rewrapped,
        current_version=report.current_version,
        rewrapped_from=report.rewrapped_from,
        healthy=healthy,
    )


class AdminServicer(admin_pb2_grpc.AdminServicer):  # type: ignore[misc]
    def __init__(self, keyring: Keyring, store: Store, tokenizer: Tokenizer, version: str) -> None:
        self._keyring = keyring
        self._store = store
        self._tokenizer = tokenizer
        self._version = version

    def CreateKey(self, request: pb.CreateKeyRequest, context: grpc.ServicerContext) -> pb.Key:
        purpose = _PURPOSES.get(request.purpose)
        if purpose is None:
            raise InvalidArgument("purpose must be encrypt, fpe or vault-token")
        validate_token_key(purpose, request.format, request.format_options)
        record = self._keyring.create(
            request.name,
            purpose,
            principal().name,
            policy_from_pb(request.policy),
            request.format,
            dict(request.format_options),
        )
        return key_to_pb(record)

    def GetKey(self, request: pb.GetKeyRequest, context: grpc.ServicerContext) -> pb.Key:
        key = key_to_pb(self._keyring.get(request.name, fresh=True))
        key.history.extend(
            pb.VersionEvent(
                version=e.version,
                from_state=_STATES[e.from_state] if e.from_state else pb.VERSION_STATE_UNSPECIFIED,
                to_state=_STATES[e.to_state],
                at=_ts(e.at),
                actor=e.actor,
            )
            for e in self._keyring.history(request.name)
        )
        return key

    def ListKeys(self, request: pb.ListKeysRequest, context: grpc.ServicerContext) -> pb.ListKeysResponse:
        return pb.ListKeysResponse(keys=[key_to_pb(k) for k in self._keyring.all()])

    def RotateKey(self, request: pb.RotateKeyRequest, context: grpc.ServicerContext) -> pb.Key:
        record = self._keyring.rotate(request.name, principal().name)
        if record.purpose is Purpose.VAULT_TOKEN:  # stored values move to the new version
            self._tokenizer.reencrypt_vault(record.name)
        return key_to_pb(record)

    def UpdateKeyPolicy(self, request: pb.UpdateKeyPolicyRequest, context: grpc.ServicerContext) -> pb.Key:
        return key_to_pb(
            self._keyring.update_policy(
                request.name, policy_from_pb(request.policy), request.min_decryption_version
            )
        )

    def SetVersionState(self, request: pb.SetVersionStateRequest, context: grpc.ServicerContext) -> pb.Key:
        target = _STATES_FROM_PB.get(request.state)
        if target is None:
            raise InvalidArgument("state must be active, disabled or scheduled-for-destruction")
        expected = _STATES_FROM_PB.get(request.expected_state) if request.expected_state else None
        grace = float(request.grace_seconds) if request.HasField("grace_seconds") else None
        record = self._keyring.set_state(
            request.name,
            request.version,
            target,
            principal().name,
            grace_seconds=grace,
            expected=expected,
        )
        return key_to_pb(record)

    def RotateDueKeys(
        self, request: pb.RotateDueKeysRequest, context: grpc.ServicerContext
    ) -> pb.RotateDueKeysResponse:
        now = time.time()
        actor = principal().name
        rotated = lifecycle.rotate_due(self._keyring, self._store, now, actor)
        floors = lifecycle.advance_floors(self._keyring, self._store, now)
        return pb.RotateDueKeysResponse(rotated=rotated, floors=floors)

    def PlanRetention(self, request: pb.RetentionRequest, context: grpc.ServicerContext) -> pb.RetentionPlan:
        return retention_to_pb(lifecycle.plan_retention(self._store, time.time(), _grace(request)))

    def ApplyRetention(self, request: pb.RetentionRequest, context: grpc.ServicerContext) -> pb.RetentionPlan:
        done = lifecycle.apply_retention(
            self._keyring, self._store, time.time(), _grace(request), principal().name
        )
        return retention_to_pb(done)

    def PurgeExpiredTokens(
        self, request: pb.PurgeExpiredTokensRequest, context: grpc.ServicerContext
    ) -> pb.PurgeExpiredTokensResponse:
        purged = self._store.purge_expired_tokens(time.time())
        log.info("purged expired tokens", extra={"count": purged, "principal": principal().name})
        return pb.PurgeExpiredTokensResponse(purged=purged)

    def RotateKek(self, request: pb.RotateKekRequest, context: grpc.ServicerContext) -> pb.KekStatus:
        kek = self._keyring.kek
        report = rotate_kek(self._store, kek, resume_only=request.resume_only)
        log.info(
            "rotated KEK",
            extra={
                "provider": kek.name,
                "kek_version": report.current_version,
                "count": report.rewrapped,
                "principal": principal().name,
            },
        )
        return kek_report_to_pb(kek.name, report, kek.health().ok)

    def GetKekStatus(self, request: pb.GetKekStatusRequest, context: grpc.ServicerContext) -> pb.KekStatus:
        kek = self._keyring.kek
        return kek_report_to_pb(kek.name, kek_status(self._store, kek), kek.health().ok)

    def GetStatus(self, request: pb.GetStatusRequest, context: grpc.ServicerContext) -> pb.ServiceStatus:
        kek = self._keyring.kek
        return pb.ServiceStatus(
            version=self._version,
            store=self._store.url_scheme,
            kek_provider=kek.name,
            kek_healthy=kek.health().ok,
            keys=len(self._store.list_keys()),
        )


def _grace(request: pb.RetentionRequest) -> float:
    if request.HasField("grace_seconds"):
        return float(request.grace_seconds)
    return DEFAULT_DESTROY_GRACE_SECONDS
