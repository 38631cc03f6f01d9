"""GovernanceClient: approvals, audit, incidents, operators and policy (used by keysvc-admin).

Operators send their TOTP code as metadata ``x-keysvc-otp``: pass it with
``KeyServiceClient(..., metadata=[("x-keysvc-otp", code)])`` (one code per call: codes
cannot be replayed, so make a client per call or pass ``otp=`` to each method).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from keysvc_client._pb.keysvc.v1 import admin_pb2, governance_pb2, governance_pb2_grpc

OTP_METADATA_KEY = "x-keysvc-otp"
ADMIN = "/keysvc.v1.Admin/"
GOVERNANCE = "/keysvc.v1.Governance/"


def _ts(when: datetime | float | None) -> Timestamp | None:
    if when is None:
        return None
    ts = Timestamp()
    seconds = when.timestamp() if isinstance(when, datetime) else float(when)
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


class GovernanceClient:
    """Calls on the Governance service; returns the protobuf messages."""

    def __init__(self, stub: governance_pb2_grpc.GovernanceStub, invoke: Callable[..., Any]) -> None:
        self._stub = stub
        self._invoke = invoke

    def _call(self, method: Any, request: Message, timeout: float | None = None) -> Any:
        return self._invoke(method, request, timeout)

    # -- approvals -------------------------------------------------------------------------------

    def request_approval(
        self, method: str, request: Message, ttl_seconds: int = 0
    ) -> governance_pb2.Approval:
        """File ``method`` (full name, e.g. ``/keysvc.v1.Admin/RotateKek``) with ``request`` for approval."""
        message = governance_pb2.RequestApprovalRequest(
            method=method, request=request.SerializeToString(), ttl_seconds=ttl_seconds
        )
        return self._call(self._stub.RequestApproval, message)  # type: ignore[no-any-return]

    def request_destroy_version(
        self, key: str, version: int, grace_seconds: int = 0
    ) -> governance_pb2.Approval:
        inner = admin_pb2.SetVersionStateRequest(
            name=key,
            version=version,
            state=admin_pb2.VERSION_STATE_SCHEDULED_FOR_DESTRUCTION,
            grace_seconds=grace_seconds,
        )
        return self.request_approval(ADMIN + "SetVersionState", inner)

    def approve(self, approval_id: str, timeout: float | None = 600.0) -> governance_pb2.ApproveResponse:
        return self._call(self._stub.Approve, governance_pb2.ApproveRequest(id=approval_id), timeout)  # type: ignore[no-any-return]

    def list_approvals(self, include_done: bool = False) -> list[governance_pb2.Approval]:
        request = governance_pb2.ListApprovalsRequest(include_done=include_done)
        return list(self._call(self._stub.ListApprovals, request).approvals)

    # -- audit -----------------------------------------------------------------------------------

    def query_audit(
        self,
        *,
        principal: str = "",
        key: str = "",
        operation: str = "",
        since: datetime | float | None = None,
        until: datetime | float | None = None,
        limit: int = 1000,
        after_seq: int = 0,
    ) -> list[governance_pb2.AuditRecord]:
        request = governance_pb2.QueryAuditRequest(
            principal=principal,
            key=key,
            operation=operation,
            since=_ts(since),
            until=_ts(until),
            limit=limit,
            after_seq=after_seq,
        )
        return list(self._call(self._stub.QueryAudit, request).records)

    def verify_audit(self, timeout: float | None = 600.0) -> governance_pb2.VerifyAuditResponse:
        return self._call(self._stub.VerifyAudit, governance_pb2.VerifyAuditRequest(), timeout)  # type: ignore[no-any-return]

    # -- incidents -------------------------------------------------------------------------------

    def revoke_principal(self, principal: str) -> governance_pb2.RevokePrincipalResponse:
        request = governance_pb2.RevokePrincipalRequest(principal=principal)
        return self._call(self._stub.RevokePrincipal, request)  # type: ignore[no-any-return]

    def request_unrevoke(self, principal: str) -> governance_pb2.Approval:
        """File the dual-controlled lifting of a revocation."""
        request = governance_pb2.RevokePrincipalRequest(principal=principal)
        return self.request_approval(GOVERNANCE + "UnrevokePrincipal", request)

    def freeze_key(self, key: str) -> governance_pb2.FreezeKeyResponse:
        return self._call(self._stub.FreezeKey, governance_pb2.FreezeKeyRequest(key=key))  # type: ignore[no-any-return]

    def request_unfreeze(self, key: str) -> governance_pb2.Approval:
        return self.request_approval(GOVERNANCE + "UnfreezeKey", governance_pb2.UnfreezeKeyRequest(key=key))

    def incident_report(
        self, principal: str, since: datetime | float | None = None, until: datetime | float | None = None
    ) -> governance_pb2.IncidentReportResponse:
        request = governance_pb2.IncidentReportRequest(
            principal=principal, since=_ts(since), until=_ts(until)
        )
        return self._call(self._stub.IncidentReport, request, 600.0)  # type: ignore[no-any-return]

    def rotate_all_keys(self) -> governance_pb2.RotateAllKeysResponse:
        return self._call(self._stub.RotateAllKeys, governance_pb2.RotateAllKeysRequest(), 600.0)  # type: ignore[no-any-return]

    # -- operators -------------------------------------------------------------------------------

    def enroll_operator(self, name: str) -> governance_pb2.EnrollOperatorResponse:
        request = governance_pb2.EnrollOperatorRequest(name=name)
        return self._call(self._stub.EnrollOperator, request)  # type: ignore[no-any-return]

    def request_revoke_operator(self, name: str) -> governance_pb2.Approval:
        return self.request_approval(
            GOVERNANCE + "RevokeOperator", governance_pb2.RevokeOperatorRequest(name=name)
        )

    def list_operators(self) -> list[governance_pb2.Operator]:
        return list(self._call(self._stub.ListOperators, governance_pb2.ListOperatorsRequest()).operators)

    # -- policy ----------------------------------------------------------------------------------

    def check_policy(
        self, principal: str, operation: str, key: str = "", purpose: str = ""
    ) -> governance_pb2.CheckPolicyResponse:
        request = governance_pb2.CheckPolicyRequest(
            principal=principal, operation=operation, key=key, purpose=purpose
        )
        return self._call(self._stub.CheckPolicy, request)  # type: ignore[no-any-return]
