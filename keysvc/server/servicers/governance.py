"""Governance service: approvals, audit, incidents, operators, policy (proto <-> domain).

Authorization, the operator's second factor and auditing of these calls happen in
:mod:`keysvc.server.guard`; this servicer adds what is specific to each call, e.g. that an
approver is not the requester and holds the rights the approved call needs.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message
from google.protobuf.timestamp_pb2 import Timestamp

from keysvc import errors
from keysvc.access import totp
from keysvc.audit.log import AuditLog
from keysvc.audit.store import Approval, GovernanceStore, Operator, StoredRecord
from keysvc.kek.base import KekProvider
from keysvc.server import guard as guard_mod
from keysvc.server.guard import ADMIN, GOVERNANCE, CallInfo, Guard, spec_for
from keysvc.server.pipeline import principal
from keysvc_client._pb.keysvc.v1 import admin_pb2, admin_pb2_grpc, governance_pb2_grpc
from keysvc_client._pb.keysvc.v1 import governance_pb2 as pb

log = logging.getLogger(__name__)

MAX_APPROVAL_TTL = 7 * 86_400.0
_OPERATOR_NAME = re.compile(r"[A-Za-z0-9._:/@\-]{1,200}")
_DONE = frozenset({"OK", "STARTED"})


def _ts(seconds: float) -> Timestamp | None:
    if not seconds:
        return None
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def _seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


@dataclass(frozen=True)
class Approvable:
    request_type: type[Message]
    handler: Callable[[Any, grpc.ServicerContext], Any]


def approval_to_pb(a: Approval) -> pb.Approval:
    return pb.Approval(
        id=a.id,
        method=a.method,
        summary=a.summary,
        requested_by=a.requested_by,
        requested_at=_ts(a.requested_at),
        expires_at=_ts(a.expires_at),
        state=a.state,
        approved_by=a.approved_by,
        outcome=a.outcome,
    )


def record_to_pb(s: StoredRecord) -> pb.AuditRecord:
    r = s.record
    return pb.AuditRecord(
        seq=s.seq,
        time=_ts(r.at),
        request_id=r.request_id,
        principal=r.principal,
        peer=r.peer,
        operation=r.operation,
        keys=list(r.keys),
        versions=[f"{k}:{','.join(str(v) for v in vs)}" for k, vs in sorted(r.versions.items())],
        items=r.items,
        failed_items=r.failed_items,
        purpose=r.purpose,
        result=r.result,
        detail=r.detail,
        prev_hash=s.prev_hash,
        hash=s.hash,
    )


class GovernanceServicer(governance_pb2_grpc.GovernanceServicer):  # type: ignore[misc]
    def __init__(
        self,
        store: GovernanceStore,
        audit: AuditLog,
        guard: Guard,
        kek: KekProvider,
        admin: admin_pb2_grpc.AdminServicer,
        *,
        approval_ttl_seconds: float = 86_400.0,
    ) -> None:
        self._store = store
        self._audit = audit
        self._guard = guard
        self._kek = kek
        self._admin = admin
        self._ttl = approval_ttl_seconds
        self._approvable: dict[str, Approvable] = {}
        for name, request_type in (
            ("SetVersionState", admin_pb2.SetVersionStateRequest),
            ("ApplyRetention", admin_pb2.RetentionRequest),
            ("RotateKek", admin_pb2.RotateKekRequest),
            ("UpdateKeyPolicy", admin_pb2.UpdateKeyPolicyRequest),
        ):
            handler = getattr(type(admin), name, None)
            if handler is not None and handler is not getattr(admin_pb2_grpc.AdminServicer, name, None):
                self._approvable[ADMIN + name] = Approvable(request_type, getattr(admin, name))
        self._approvable[GOVERNANCE + "RevokeOperator"] = Approvable(
            pb.RevokeOperatorRequest, self._revoke_operator
        )
        self._approvable[GOVERNANCE + "UnfreezeKey"] = Approvable(pb.UnfreezeKeyRequest, self._unfreeze)
        self._approvable[GOVERNANCE + "UnrevokePrincipal"] = Approvable(
            pb.RevokePrincipalRequest, self._unrevoke
        )

    @property
    def _now(self) -> float:
        return self._guard.clock()

    # -- approvals -------------------------------------------------------------------------------

    def RequestApproval(
        self, request: pb.RequestApprovalRequest, context: grpc.ServicerContext
    ) -> pb.Approval:
        target = self._approvable.get(request.method)
        if target is None:
            raise errors.InvalidArgument("this method is not run through approvals")
        try:
            inner = target.request_type.FromString(request.request)
        except DecodeError:
            raise errors.InvalidArgument("the request does not parse as the method's request") from None
        who = principal()
        self._guard.require(who, request.method, inner)
        ttl = float(request.ttl_seconds) if request.ttl_seconds else self._ttl
        now = self._now
        approval = Approval(
            id=secrets.token_hex(8),
            method=request.method,
            request=inner.SerializeToString(deterministic=True),
            summary=_summary(request.method, inner),
            requested_by=who.name,
            requested_at=now,
            expires_at=now + min(ttl, MAX_APPROVAL_TTL),
            state="pending",
        )
        self._store.add_approval(approval)
        return approval_to_pb(approval)

    def Approve(self, request: pb.ApproveRequest, context: grpc.ServicerContext) -> pb.ApproveResponse:
        approval = self._store.get_approval(request.id)
        if approval is None:
            raise errors.NotFound("no such approval request")
        who = principal()
        now = self._now
        if approval.state == "pending" and approval.expires_at <= now:
            self._store.finish_approval(approval.id, "expired", "")
            raise errors.FailedPrecondition("approval request expired")
        if approval.state != "pending":
            raise errors.FailedPrecondition(f"approval request is {approval.state}")
        if approval.requested_by == who.name:
            raise errors.PermissionDenied("an operator cannot approve their own request")
        target = self._approvable.get(approval.method)
        if target is None:
            raise errors.FailedPrecondition("the approved method is no longer available")
        inner = target.request_type.FromString(approval.request)
        self._guard.require(who, approval.method, inner)
        if not self._store.claim_approval(approval.id, who.name, now):
            raise errors.FailedPrecondition("approval request was already decided or has expired")
        spec = spec_for(approval.method)
        info = CallInfo(
            approval.method,
            spec,
            who,
            guard_mod._request_id({k: v for k, v in context.invocation_metadata() if isinstance(v, str)}),
            context.peer() or "",
            guard_mod._safe_keys(spec.keys(inner)),
            "",
            detail=f"approval {approval.id} requested by {approval.requested_by}",
            operation=spec.operation_of(inner),
        )
        token = guard_mod.executing_approval.set(approval.id)
        try:
            response = self._guard.run(info, target.handler, inner, context)
        except errors.KeysvcError as exc:
            self._store.finish_approval(approval.id, "failed", exc.reason)
            raise
        except Exception:
            self._store.finish_approval(approval.id, "failed", "INTERNAL")
            raise
        finally:
            guard_mod.executing_approval.reset(token)
        self._store.finish_approval(approval.id, "executed", "OK")
        done = self._store.get_approval(approval.id) or approval
        return pb.ApproveResponse(approval=approval_to_pb(done), response=response.SerializeToString())

    def ListApprovals(
        self, request: pb.ListApprovalsRequest, context: grpc.ServicerContext
    ) -> pb.ListApprovalsResponse:
        now = self._now
        found = []
        for a in self._store.list_approvals(include_done=request.include_done):
            if a.state == "pending" and a.expires_at <= now:
                a = Approval(**{**a.__dict__, "state": "expired"})
                if not request.include_done:
                    continue
            found.append(approval_to_pb(a))
        return pb.ListApprovalsResponse(approvals=found)

    # -- audit -----------------------------------------------------------------------------------

    def QueryAudit(
        self, request: pb.QueryAuditRequest, context: grpc.ServicerContext
    ) -> pb.QueryAuditResponse:
        records = self._store.query(
            principal=request.principal,
            key=request.key,
            operation=request.operation,
            since=_seconds(request.since) if request.HasField("since") else 0.0,
            until=_seconds(request.until) if request.HasField("until") else 0.0,
            limit=min(request.limit or 1000, 10_000),
            after_seq=request.after_seq,
        )
        return pb.QueryAuditResponse(records=[record_to_pb(r) for r in records])

    def VerifyAudit(
        self, request: pb.VerifyAuditRequest, context: grpc.ServicerContext
    ) -> pb.VerifyAuditResponse:
        report = self._store.verify()
        return pb.VerifyAuditResponse(
            ok=report.ok,
            records=report.records,
            head_seq=report.head_seq,
            problems=[pb.ChainProblem(seq=p.seq, kind=p.kind, detail=p.detail) for p in report.problems],
        )

    # -- incidents -------------------------------------------------------------------------------

    def RevokePrincipal(
        self, request: pb.RevokePrincipalRequest, context: grpc.ServicerContext
    ) -> pb.RevokePrincipalResponse:
        if not request.principal.strip():
            raise errors.InvalidArgument("principal is required")
        self._store.revoke(request.principal, principal().name, self._now)
        self._guard.revoked.invalidate()
        return pb.RevokePrincipalResponse(
            principal=request.principal, effective_within_seconds=self._guard.refresh_seconds
        )

    def UnrevokePrincipal(
        self, request: pb.RevokePrincipalRequest, context: grpc.ServicerContext
    ) -> pb.RevokePrincipalResponse:
        # Reached directly only by the dev principal; operators go through an approval.
        return self._unrevoke(request, context)

    def _unrevoke(
        self, request: pb.RevokePrincipalRequest, context: grpc.ServicerContext
    ) -> pb.RevokePrincipalResponse:
        if not self._store.unrevoke(request.principal):
            raise errors.NotFound("principal is not revoked")
        self._guard.revoked.invalidate()
        return pb.RevokePrincipalResponse(
            principal=request.principal, effective_within_seconds=self._guard.refresh_seconds
        )

    def FreezeKey(self, request: pb.FreezeKeyRequest, context: grpc.ServicerContext) -> pb.FreezeKeyResponse:
        if not request.key:
            raise errors.InvalidArgument("key is required")
        self._store.freeze(request.key, principal().name, self._now)
        self._guard.frozen.invalidate()
        return pb.FreezeKeyResponse(key=request.key, frozen=True)

    def UnfreezeKey(
        self, request: pb.UnfreezeKeyRequest, context: grpc.ServicerContext
    ) -> pb.FreezeKeyResponse:
        # Reached directly only by the dev principal; operators go through an approval.
        return self._unfreeze(request, context)

    def _unfreeze(
        self, request: pb.UnfreezeKeyRequest, context: grpc.ServicerContext
    ) -> pb.FreezeKeyResponse:
        if not self._store.unfreeze(request.key):
            raise errors.NotFound("key is not frozen")
        self._guard.frozen.invalidate()
        return pb.FreezeKeyResponse(key=request.key, frozen=False)

    def IncidentReport(
        self, request: pb.IncidentReportRequest, context: grpc.ServicerContext
    ) -> pb.IncidentReportResponse:
        if not request.principal:
            raise errors.InvalidArgument("principal is required")
        since = _seconds(request.since) if request.HasField("since") else 0.0
        until = _seconds(request.until) if request.HasField("until") else 0.0
        usage: dict[tuple[str, str], dict[str, Any]] = {}
        after, total = 0, 0
        while True:
            page = self._store.query(
                principal=request.principal, since=since, until=until, limit=5000, after_seq=after
            )
            if not page:
                break
            for s in page:
                after = s.seq
                r = s.record
                if r.result == "STARTED":
                    continue
                total += 1
                for key in r.keys or ("",):
                    u = usage.setdefault(
                        (key, r.operation),
                        {
                            "versions": set(),
                            "requests": 0,
                            "items": 0,
                            "denied": 0,
                            "first": r.at,
                            "last": r.at,
                        },
                    )
                    u["requests"] += 1
                    if r.result == "OK":
                        # a record naming several keys counts all its items under each
                        u["items"] += r.items - r.failed_items
                        u["versions"].update(r.versions.get(key, ()))
                    else:
                        u["denied"] += 1
                    u["first"] = min(u["first"], r.at)
                    u["last"] = max(u["last"], r.at)
        return pb.IncidentReportResponse(
            principal=request.principal,
            records=total,
            usage=[
                pb.IncidentUsage(
                    key=key,
                    operation=op,
                    versions=sorted(u["versions"]),
                    requests=u["requests"],
                    items=u["items"],
                    denied=u["denied"],
                    first=_ts(u["first"]),
                    last=_ts(u["last"]),
                )
                for (key, op), u in sorted(usage.items())
            ],
        )

    def RotateAllKeys(
        self, request: pb.RotateAllKeysRequest, context: grpc.ServicerContext
    ) -> pb.RotateAllKeysResponse:
        keys = self._admin.ListKeys(admin_pb2.ListKeysRequest(), context).keys
        rotated, failed = [], []
        for key in keys:
            try:
                self._admin.RotateKey(admin_pb2.RotateKeyRequest(name=key.name), context)
                rotated.append(key.name)
            except errors.KeysvcError as exc:
                failed.append(f"{key.name}: {exc.message}")
        return pb.RotateAllKeysResponse(rotated=rotated, failed=failed)

    # -- operators -------------------------------------------------------------------------------

    def EnrollOperator(
        self, request: pb.EnrollOperatorRequest, context: grpc.ServicerContext
    ) -> pb.EnrollOperatorResponse:
        if not _OPERATOR_NAME.fullmatch(request.name):
            raise errors.InvalidArgument("operator name must be 1..200 of [A-Za-z0-9._:/@-]")
        if self._store.get_operator(request.name) is not None:
            raise errors.AlreadyExists("operator already enrolled (revoke it first, with dual control)")
        secret = totp.new_secret()
        wrapped = self._kek.wrap(secret, totp.totp_binding(request.name))
        self._store.put_operator(Operator(request.name, wrapped, self._now, principal().name, 0))
        uri = totp.provisioning_uri(secret, request.name)
        del secret
        return pb.EnrollOperatorResponse(name=request.name, provisioning_uri=uri)

    def RevokeOperator(
        self, request: pb.RevokeOperatorRequest, context: grpc.ServicerContext
    ) -> pb.RevokeOperatorResponse:
        return self._revoke_operator(request, context)

    def _revoke_operator(
        self, request: pb.RevokeOperatorRequest, context: grpc.ServicerContext
    ) -> pb.RevokeOperatorResponse:
        return pb.RevokeOperatorResponse(name=request.name, removed=self._store.delete_operator(request.name))

    def ListOperators(
        self, request: pb.ListOperatorsRequest, context: grpc.ServicerContext
    ) -> pb.ListOperatorsResponse:
        return pb.ListOperatorsResponse(
            operators=[
                pb.Operator(name=o.name, enrolled_at=_ts(o.enrolled_at), enrolled_by=o.enrolled_by)
                for o in self._store.list_operators()
            ]
        )

    # -- policy ----------------------------------------------------------------------------------

    def CheckPolicy(
        self, request: pb.CheckPolicyRequest, context: grpc.ServicerContext
    ) -> pb.CheckPolicyResponse:
        from keysvc.access.policy import OPERATIONS

        if request.operation not in OPERATIONS:
            raise errors.InvalidArgument(f"operation must be one of {', '.join(sorted(OPERATIONS))}")
        revoked = request.principal in self._store.revoked()
        is_operator = self._store.get_operator(request.principal) is not None
        if self._guard.dev and request.principal == guard_mod.DEV_PRINCIPAL:
            return pb.CheckPolicyResponse(
                allowed=not revoked,
                rule="dev",
                reason="the dev principal holds every right in --dev mode",
                reveal="full",
                revoked=revoked,
                operator=is_operator,
            )
        decision = self._guard.policy.current().decide(
            request.principal, request.operation, request.key, request.purpose
        )
        rule = decision.rule
        reason = decision.reason
        if revoked:
            reason = f"principal is revoked (incident revoke); otherwise: {reason}"
        return pb.CheckPolicyResponse(
            allowed=decision.allowed and not revoked,
            rule=rule.name if rule else "",
            reason=reason,
            roles=list(decision.roles),
            reveal=decision.reveal if request.operation == "detokenize" else "",
            quota_per_minute=rule.quota_per_minute if rule else 0,
            require_purpose=rule.require_purpose if rule else False,
            revoked=revoked,
            operator=is_operator,
        )


def _summary(method: str, request: Message) -> str:
    body = MessageToDict(request, preserving_proto_field_name=True)
    return f"{method.rsplit('/', 1)[-1]} {json.dumps(body, sort_keys=True, separators=(',', ':'))}"[:500]
