"""AdminClient: key management calls on the Admin service (used by keysvc-admin)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from keysvc_client._pb.keysvc.v1 import admin_pb2, admin_pb2_grpc


class AdminClient:
    """Key management calls (the Admin service); returns the protobuf messages."""

    def __init__(self, stub: admin_pb2_grpc.AdminStub, invoke: Callable[..., Any]) -> None:
        self._stub = stub
        self._invoke = invoke

    def create_key(
        self,
        name: str,
        purpose: str,
        *,
        format: str = "",
        format_options: Mapping[str, str] | None = None,
        policy: admin_pb2.KeyPolicy | None = None,
    ) -> admin_pb2.Key:
        """Create a key; ``purpose`` is ``encrypt``, ``fpe`` or ``vault-token``."""
        request = admin_pb2.CreateKeyRequest(
            name=name,
            purpose=_purpose(purpose),
            format=format,
            format_options=format_options or {},
            policy=policy,
        )
        return self._invoke(self._stub.CreateKey, request)  # type: ignore[no-any-return]

    def get_key(self, name: str) -> admin_pb2.Key:
        return self._invoke(self._stub.GetKey, admin_pb2.GetKeyRequest(name=name))  # type: ignore[no-any-return]

    def list_keys(self) -> list[admin_pb2.Key]:
        return list(self._invoke(self._stub.ListKeys, admin_pb2.ListKeysRequest()).keys)

    def rotate_key(self, name: str) -> admin_pb2.Key:
        return self._invoke(self._stub.RotateKey, admin_pb2.RotateKeyRequest(name=name))  # type: ignore[no-any-return]

    def update_key_policy(
        self, name: str, policy: admin_pb2.KeyPolicy, min_decryption_version: int = 0
    ) -> admin_pb2.Key:
        request = admin_pb2.UpdateKeyPolicyRequest(
            name=name, policy=policy, min_decryption_version=min_decryption_version
        )
        return self._invoke(self._stub.UpdateKeyPolicy, request)  # type: ignore[no-any-return]

    def set_version_state(
        self,
        name: str,
        version: int,
        state: str,
        *,
        grace_seconds: int | None = None,
        expected_state: str | None = None,
    ) -> admin_pb2.Key:
        """Move a version to ``active``, ``disabled`` or ``scheduled-for-destruction``."""
        request = admin_pb2.SetVersionStateRequest(
            name=name,
            version=version,
            state=_state(state),
            grace_seconds=grace_seconds,
            expected_state=_state(expected_state) if expected_state else None,
        )
        return self._invoke(self._stub.SetVersionState, request)  # type: ignore[no-any-return]

    def disable_version(self, name: str, version: int) -> admin_pb2.Key:
        """Stop a version encrypting or decrypting (reversible with :meth:`enable_version`)."""
        return self.set_version_state(name, version, "disabled", expected_state="active")

    def enable_version(self, name: str, version: int) -> admin_pb2.Key:
        return self.set_version_state(name, version, "active", expected_state="disabled")

    def destroy_version(self, name: str, version: int, *, grace_seconds: int | None = None) -> admin_pb2.Key:
        """Schedule a version for destruction; its wrapped DEK is erased after the grace period."""
        return self.set_version_state(name, version, "scheduled-for-destruction", grace_seconds=grace_seconds)

    def restore_version(self, name: str, version: int) -> admin_pb2.Key:
        """Undo :meth:`destroy_version` while the grace period lasts (the version becomes active)."""
        return self.set_version_state(name, version, "active", expected_state="scheduled-for-destruction")

    def rotate_due_keys(self) -> admin_pb2.RotateDueKeysResponse:
        """Rotate every key whose policy says it is due (what the scheduler does each minute)."""
        return self._invoke(self._stub.RotateDueKeys, admin_pb2.RotateDueKeysRequest())  # type: ignore[no-any-return]

    def plan_retention(self, *, grace_seconds: int | None = None) -> admin_pb2.RetentionPlan:
        """What :meth:`apply_retention` would do now (a dry run)."""
        request = admin_pb2.RetentionRequest(grace_seconds=grace_seconds)
        return self._invoke(self._stub.PlanRetention, request)  # type: ignore[no-any-return]

    def apply_retention(
        self, *, grace_seconds: int | None = None, timeout: float | None = 600.0
    ) -> admin_pb2.RetentionPlan:
        """Schedule versions past retain-for and destroy those past their grace period."""
        request = admin_pb2.RetentionRequest(grace_seconds=grace_seconds)
        return self._invoke(self._stub.ApplyRetention, request, timeout)  # type: ignore[no-any-return]

    def purge_expired_tokens(self, *, timeout: float | None = 600.0) -> int:
        request = admin_pb2.PurgeExpiredTokensRequest()
        return int(self._invoke(self._stub.PurgeExpiredTokens, request, timeout).purged)

    def rotate_kek(self, *, resume_only: bool = False, timeout: float | None = 600.0) -> admin_pb2.KekStatus:
        """Rotate the KEK and rewrap every stored data key (``resume_only``: finish an interrupted run)."""
        request = admin_pb2.RotateKekRequest(resume_only=resume_only)
        return self._invoke(self._stub.RotateKek, request, timeout)  # type: ignore[no-any-return]

    def kek_status(self) -> admin_pb2.KekStatus:
        return self._invoke(self._stub.GetKekStatus, admin_pb2.GetKekStatusRequest())  # type: ignore[no-any-return]

    def status(self) -> admin_pb2.ServiceStatus:
        return self._invoke(self._stub.GetStatus, admin_pb2.GetStatusRequest())  # type: ignore[no-any-return]


_PURPOSES: dict[str, admin_pb2.KeyPurpose] = {
    "encrypt": admin_pb2.KEY_PURPOSE_ENCRYPT,
    "fpe": admin_pb2.KEY_PURPOSE_FPE,
    "vault-token": admin_pb2.KEY_PURPOSE_VAULT_TOKEN,
}


_STATES: dict[str, admin_pb2.VersionState] = {
    "primary": admin_pb2.VERSION_STATE_PRIMARY,
    "active": admin_pb2.VERSION_STATE_ACTIVE,
    "disabled": admin_pb2.VERSION_STATE_DISABLED,
    "scheduled-for-destruction": admin_pb2.VERSION_STATE_SCHEDULED_FOR_DESTRUCTION,
    "destroyed": admin_pb2.VERSION_STATE_DESTROYED,
}


def _state(name: str) -> admin_pb2.VersionState:
    try:
        return _STATES[name]
    except KeyError:
        raise ValueError("state must be one of " + ", ".join(_STATES)) from None


def _purpose(name: str) -> admin_pb2.KeyPurpose:
    try:
        return _PURPOSES[name]
    except KeyError:
        raise ValueError("purpose must be one of encrypt, fpe, vault-token") from None
