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


def _purpose(name: str) -> admin_pb2.KeyPurpose:
    try:
        return _PURPOSES[name]
    except KeyError:
        raise ValueError("purpose must be one of encrypt, fpe, vault-token") from None
