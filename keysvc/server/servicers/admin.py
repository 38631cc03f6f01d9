"""Admin service: key management (proto <-> domain translation only)."""

from __future__ import annotations

import logging

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from keysvc_client._pb.keysvc.v1 import admin_pb2 as pb
from keysvc_client._pb.keysvc.v1 import admin_pb2_grpc

from keysvc.errors import InvalidArgument
from keysvc.keys.kek_rotation import KekReport, kek_status, rotate_kek
from keysvc.keys.keyring import Keyring
from keysvc.server.pipeline import principal
from keysvc.store.base import Store
from keysvc.store.models import KeyPolicy, KeyRecord, Purpose, VersionRecord, VersionState

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
    )


def key_to_pb(key: KeyRecord) -> pb.Key:
    p = key.policy
    next_rotation = key.last_rotated_at + p.rotate_every_seconds if p.rotate_every_seconds else None
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
        ),
        format=key.format,
        format_options=key.format_options,
        last_rotated_at=_ts(key.last_rotated_at),
        next_rotation_at=_ts(next_rotation),
        created_by=key.created_by,
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
    def __init__(self, keyring: Keyring, store: Store, version: str) -> None:
        self._keyring = keyring
        self._store = store
        self._version = version

    def CreateKey(self, request: pb.CreateKeyRequest, context: grpc.ServicerContext) -> pb.Key:
        purpose = _PURPOSES.get(request.purpose)
        if purpose is None:
            raise InvalidArgument("purpose must be encrypt, fpe or vault-token")
        if purpose is Purpose.ENCRYPT and request.format:
            raise InvalidArgument("encryption keys take no token format")
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
        return key_to_pb(self._keyring.get(request.name, fresh=True))

    def ListKeys(self, request: pb.ListKeysRequest, context: grpc.ServicerContext) -> pb.ListKeysResponse:
        return pb.ListKeysResponse(keys=[key_to_pb(k) for k in self._keyring.all()])

    def RotateKey(self, request: pb.RotateKeyRequest, context: grpc.ServicerContext) -> pb.Key:
        return key_to_pb(self._keyring.rotate(request.name, principal().name))

    def UpdateKeyPolicy(self, request: pb.UpdateKeyPolicyRequest, context: grpc.ServicerContext) -> pb.Key:
        return key_to_pb(
            self._keyring.update_policy(
                request.name, policy_from_pb(request.policy), request.min_decryption_version
            )
        )

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
