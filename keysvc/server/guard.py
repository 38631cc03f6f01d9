"""The second interceptor: authorization, operator second factor, dual control, freezes,
quotas, revocations and the audit trail. It runs inside :class:`CallPipeline`, which has
already authenticated the caller (``pipeline.principal()``) and translates the domain
errors raised here (PermissionDenied, Unauthenticated, ResourceExhausted,
FailedPrecondition, AuditUnavailable) into status codes.

Per call, in order:

1. a revoked principal is refused (UNAUTHENTICATED);
2. Admin and Governance calls from an operator need a fresh TOTP in ``x-keysvc-otp``
   (UNAUTHENTICATED when missing, wrong, expired or replayed); a principal that is not an
   enrolled operator may not call them at all (PERMISSION_DENIED), except the dev
   principal in ``--dev`` mode and the very first ``EnrollOperator`` (bootstrap);
3. the policy decides per key named by the request (default deny, PERMISSION_DENIED);
   for Decrypt, Rewrap and DecryptDataKey the key is read from each ciphertext header.
   An item whose header does not parse names no key and authorizes nothing: it is let
   through and fails with the one opaque decryption error, like any forged ciphertext;
4. dual-controlled calls made directly are refused: they run only through an approval;
5. decrypt-type calls on a frozen key fail (FAILED_PRECONDITION "key is frozen");
6. the rule's quota (items per minute, per process) is taken (RESOURCE_EXHAUSTED);
7. a detokenize rule with ``reveal = "masked"`` rewrites the request's ``reveal`` field to
   REVEAL_MASKED before the handler runs, so the caller gets masked values whatever it asked;
8. the handler runs; sensitive calls (decrypt, rewrap, data keys, detokenize, retokenize,
   admin and governance changes) and every denial are appended to the audit chain before
   the response leaves. If the audit write fails the call fails (UNAVAILABLE, fail closed);
   admin changes also write a STARTED record first, so a change never runs unaudited.
"""

from __future__ import annotations

import contextvars
import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any, NoReturn

import grpc

from keysvc import errors
from keysvc.access import totp
from keysvc.access.identity import Principal
from keysvc.access.policy import Decision, PolicySource, Quotas
from keysvc.audit.log import AuditLog
from keysvc.audit.store import AuditRecord, GovernanceStore
from keysvc.kek.base import KekProvider
from keysvc.server import pipeline, status
from keysvc_client._pb.keysvc.v1 import admin_pb2, tokenization_pb2

log = logging.getLogger(__name__)

Behavior = Callable[[Any, grpc.ServicerContext], Any]
KeyCounts = dict[str, int]

DEV_PRINCIPAL = "dev"
_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
CRYPTO = "/keysvc.v1.Crypto/"
TOKENIZATION = "/keysvc.v1.Tokenization/"
ADMIN = "/keysvc.v1.Admin/"
GOVERNANCE = "/keysvc.v1.Governance/"

# Set while an approved request executes, so the guard lets the dual-controlled call through.
executing_approval: contextvars.ContextVar[str] = contextvars.ContextVar("keysvc_approval", default="")

_DESTROY_STATES = (
    admin_pb2.VERSION_STATE_SCHEDULED_FOR_DESTRUCTION,
    admin_pb2.VERSION_STATE_DESTROYED,
)


def _prefix(ct: bytes) -> bytes:
    return ct[: 7 + ct[2]] if len(ct) >= 3 else b""


def _parse_prefix(prefix: bytes) -> tuple[str, int] | None:
    """(key name, version) from a header prefix, with the checks of ``envelope.parse_header``
    except the body length (a too-short body fails decryption anyway)."""
    if len(prefix) < 8 or prefix[0] != 1 or prefix[1] not in (1, 2) or prefix[2] == 0:
        return None
    if len(prefix) != 7 + prefix[2]:
        return None
    try:
        name = prefix[3:-4].decode()
    except UnicodeDecodeError:
        return None
    return name, int.from_bytes(prefix[-4:], "big")


def scan_headers(items: Any, field: str) -> tuple[KeyCounts, dict[str, list[int]]]:
    """Items per key name and the versions named, from the ciphertext headers.

    Batches almost always share one header (key and version): that case is checked with
    C-level calls only; otherwise each distinct header prefix is parsed once."""
    cts = list(map(attrgetter(field), items))
    if not cts:
        return {}, {}
    first = cts[0]
    head = _prefix(first)
    if len(head) > 3 and all(map(bytes.startswith, cts, repeat(head))):
        prefixes: Mapping[bytes, int] = {head: len(cts)}
    else:
        prefixes = Counter([ct[: 7 + ct[2]] if len(ct) >= 3 else b"" for ct in cts])
    counts: KeyCounts = {}
    versions: dict[str, set[int]] = {}
    for prefix, n in prefixes.items():
        parsed = _parse_prefix(prefix)
        if parsed is None:
            continue  # names no key: authorizes nothing, fails with the opaque error
        name, version = parsed
        counts[name] = counts.get(name, 0) + n
        versions.setdefault(name, set()).add(version)
    return counts, {k: sorted(v) for k, v in versions.items()}


@dataclass(frozen=True)
class Spec:
    """How the guard treats one method."""

    operation: str
    keys: Callable[[Any], KeyCounts]
    audited: bool = False
    change: bool = False  # an admin/governance change: audit STARTED before, outcome after
    frozen_check: bool = False
    operator_call: bool = False
    dual: Callable[[Any], bool] | None = None
    purpose: Callable[[Any], str] | None = None
    # The policy operation when it depends on the request (destroying a version: admin.destroy).
    op_for: Callable[[Any], str] | None = None
    # For ciphertext-carrying calls: the item field whose header names key and version.
    headers: str = ""

    def operation_of(self, request: Any) -> str:
        return self.op_for(request) if self.op_for is not None else self.operation


def _one(field: str) -> Callable[[Any], KeyCounts]:
    def keys(request: Any) -> KeyCounts:
        name = getattr(request, field, "")
        return {name: max(1, len(getattr(request, "items", ())))} if name else {"": 1}

    return keys


def _none(request: Any) -> KeyCounts:
    return {"": max(1, len(getattr(request, "items", ())))}


def _headers(field: str) -> Callable[[Any], KeyCounts]:
    def keys(request: Any) -> KeyCounts:
        counts, _ = scan_headers(request.items, field)
        return counts or {"": len(request.items)}

    return keys


def _redact_keys(request: Any) -> KeyCounts:
    return {"": max(1, len(request.items))}


def _always(request: Any) -> bool:
    return True


def _destroys(request: Any) -> bool:
    return request.state in _DESTROY_STATES


def _admin(op: str, key: str = "name", **kw: Any) -> Spec:
    keys = _one(key) if key else _none
    return Spec(op, keys, operator_call=True, **kw)


SPECS: dict[str, Spec] = {
    CRYPTO + "Encrypt": Spec("encrypt", _one("key")),
    CRYPTO + "Decrypt": Spec(
        "decrypt", _headers("ciphertext"), audited=True, frozen_check=True, headers="ciphertext"
    ),
    CRYPTO + "Rewrap": Spec(
        "rewrap", _headers("ciphertext"), audited=True, frozen_check=True, headers="ciphertext"
    ),
    CRYPTO + "GenerateDataKey": Spec("datakey", _one("key"), audited=True),
    CRYPTO + "DecryptDataKey": Spec(
        "datakey", _headers("encrypted"), audited=True, frozen_check=True, headers="encrypted"
    ),
    TOKENIZATION + "Tokenize": Spec("tokenize", _one("key")),
    TOKENIZATION + "Detokenize": Spec(
        "detokenize", _one("key"), audited=True, frozen_check=True, purpose=lambda r: str(r.purpose)
    ),
    TOKENIZATION + "Retokenize": Spec("retokenize", _one("key"), audited=True, frozen_check=True),
    TOKENIZATION + "Redact": Spec("redact", _redact_keys),
    ADMIN + "CreateKey": _admin("admin.write", audited=True, change=True),
    ADMIN + "GetKey": _admin("admin.read"),
    ADMIN + "ListKeys": _admin("admin.read", ""),
    ADMIN + "RotateKey": _admin("admin.write", audited=True, change=True),
    ADMIN + "UpdateKeyPolicy": _admin("admin.write", audited=True, change=True, dual=_always),
    ADMIN + "SetVersionState": _admin(
        "admin.write",
        audited=True,
        change=True,
        dual=_destroys,
        op_for=lambda r: "admin.destroy" if _destroys(r) else "admin.write",
    ),
    ADMIN + "RotateDueKeys": _admin("admin.write", "", audited=True, change=True),
    ADMIN + "PlanRetention": _admin("admin.read", ""),
    ADMIN + "ApplyRetention": _admin("admin.destroy", "", audited=True, change=True, dual=_always),
    ADMIN + "PurgeExpiredTokens": _admin("admin.write", "", audited=True, change=True),
    ADMIN + "RotateKek": _admin("admin.write", "", audited=True, change=True, dual=_always),
    ADMIN + "GetKekStatus": _admin("admin.read", ""),
    ADMIN + "GetStatus": _admin("admin.read", ""),
    GOVERNANCE + "RequestApproval": _admin("governance.approve", "", audited=True, change=True),
    GOVERNANCE + "Approve": _admin("governance.approve", "", audited=True, change=True),
    GOVERNANCE + "ListApprovals": _admin("governance.read", ""),
    GOVERNANCE + "QueryAudit": _admin("governance.read", "", audited=True),
    GOVERNANCE + "VerifyAudit": _admin("governance.read", "", audited=True),
    GOVERNANCE + "RevokePrincipal": _admin("governance.incident", "", audited=True, change=True),
    GOVERNANCE + "UnrevokePrincipal": _admin(
        "governance.incident", "", audited=True, change=True, dual=_always
    ),
    GOVERNANCE + "FreezeKey": _admin("governance.incident", "key", audited=True, change=True),
    GOVERNANCE + "UnfreezeKey": _admin("governance.incident", "key", audited=True, change=True, dual=_always),
    GOVERNANCE + "IncidentReport": _admin("governance.read", "", audited=True),
    GOVERNANCE + "RotateAllKeys": _admin("governance.incident", "", audited=True, change=True),
    GOVERNANCE + "EnrollOperator": _admin("governance.operators", "", audited=True, change=True),
    GOVERNANCE + "RevokeOperator": _admin(
        "governance.operators", "", audited=True, change=True, dual=_always
    ),
    GOVERNANCE + "ListOperators": _admin("governance.read", ""),
    GOVERNANCE + "CheckPolicy": _admin("governance.read", ""),
}


def spec_for(method: str) -> Spec:
    """A method the guard does not know is treated as an audited admin change (fail closed)."""
    spec = SPECS.get(method)
    if spec is not None:
        return spec
    if method.startswith(CRYPTO) or method.startswith(TOKENIZATION):
        return Spec("admin.write", _one("key"), audited=True, change=True)
    return _admin("admin.write", audited=True, change=True)


def _redact_token_keys(request: Any) -> list[str]:
    if request.style != tokenization_pb2.REDACTION_STYLE_TOKEN:
        return []
    return sorted(set(_safe_keys(dict.fromkeys(request.token_keys.values(), 1))))


INVALID_KEY = "?invalid-key-name"
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _safe_keys(keys: KeyCounts) -> KeyCounts:
    """Key names as the caller sent them may hold anything (even a planted secret): a name that is
    not a valid key name is replaced before it reaches the policy, an audit record or a message."""
    if all(not k or (len(k) <= 128 and set(k) <= _KEY_CHARS) for k in keys):
        return keys
    safe: KeyCounts = {}
    for k, n in keys.items():
        name = k if not k or (len(k) <= 128 and set(k) <= _KEY_CHARS) else INVALID_KEY
        safe[name] = safe.get(name, 0) + n
    return safe


class _Refreshing:
    """A set re-read from the store at most every ``seconds`` (the replica propagation bound)."""

    def __init__(self, load: Callable[[], frozenset[str]], seconds: float) -> None:
        self._load = load
        self._seconds = seconds
        self._lock = threading.Lock()
        self._value: frozenset[str] = frozenset()
        self._next = 0.0

    def get(self) -> frozenset[str]:
        now = time.monotonic()
        if now < self._next:
            return self._value
        with self._lock:
            if time.monotonic() >= self._next:
                try:
                    self._value = self._load()
                except errors.KeysvcError:
                    # Cannot read the governance tables: keep the last known set, retry soon.
                    log.error("could not refresh revocations/freezes")
                    self._next = time.monotonic() + 0.2
                    return self._value
                self._next = time.monotonic() + self._seconds
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._next = 0.0


@dataclass
class CallInfo:
    method: str
    spec: Spec
    principal: Principal
    request_id: str
    peer: str
    keys: KeyCounts
    purpose: str
    detail: str = ""
    items: int = 1
    operation: str = ""
    header_versions: dict[str, list[int]] | None = None


class Guard(grpc.ServerInterceptor):
    """Authorization, second factor, dual control, freezes, quotas and audit (see module doc)."""

    def __init__(
        self,
        store: GovernanceStore,
        audit: AuditLog,
        policy: PolicySource,
        kek: KekProvider,
        *,
        dev: bool = False,
        refresh_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
        quotas: Quotas | None = None,
    ) -> None:
        self.store = store
        self.audit = audit
        self.policy = policy
        self.kek = kek
        self.dev = dev
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self.quotas = quotas or Quotas()
        self.revoked = _Refreshing(store.revoked, refresh_seconds)
        self.frozen = _Refreshing(store.frozen, refresh_seconds)
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

    # -- the interceptor -------------------------------------------------------------------------

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = continuation(details)
        if handler is None or handler.unary_unary is None or method.startswith(_PUBLIC_PREFIXES):
            return handler
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, behavior: Behavior, method: str) -> Behavior:
        spec = spec_for(method)

        def call(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                caller = pipeline.principal()
            except LookupError:
                raise errors.Unauthenticated() from None
            metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            info = CallInfo(
                method,
                spec,
                caller,
                _request_id(metadata),
                context.peer() or "",
                {},
                "",
            )
            try:
                if spec.headers:
                    counts, info.header_versions = scan_headers(request.items, spec.headers)
                    info.keys = _safe_keys(counts or {"": len(request.items)})
                else:
                    info.keys = _safe_keys(spec.keys(request))
            except Exception:
                info.keys = {"": 1}
            info.items = len(getattr(request, "items", ())) or 1
            info.operation = spec.operation_of(request)
            info.purpose = spec.purpose(request) if spec.purpose else metadata.get("x-keysvc-purpose", "")
            self.check(info, request, metadata)
            return self.run(info, behavior, request, context)

        return call

    # -- checks ----------------------------------------------------------------------------------

    def is_dev(self, principal: Principal) -> bool:
        return self.dev and principal.name == DEV_PRINCIPAL

    def check(self, info: CallInfo, request: Any, metadata: Mapping[str, str]) -> None:
        """Every check before the handler; raises (after auditing the denial) when one fails."""
        spec, who = info.spec, info.principal
        if who.name in self.revoked.get():
            self._deny(info, errors.Unauthenticated("credentials revoked"))
        if spec.operator_call and not self.is_dev(who):
            self._second_factor(info, metadata)
        operation = info.operation or spec.operation
        decisions = self.authorize(who, operation, info.keys, info.purpose)
        token_keys = _redact_token_keys(request) if operation == "redact" else []
        if token_keys:  # redaction with STYLE_TOKEN tokenizes under these keys
            decisions += self.authorize(who, "tokenize", dict.fromkeys(token_keys, 1), "")
        denied = next((d for _, d in decisions if not d.allowed), None)
        if denied is not None:
            self._deny(info, errors.PermissionDenied(), denied.reason)
        if (
            spec.dual is not None
            and not executing_approval.get()
            and not self.is_dev(who)
            and spec.dual(request)
        ):
            self._deny(
                info,
                errors.PermissionDenied(
                    "this operation needs dual control: file it with `approvals request`"
                ),
            )
        if spec.frozen_check:
            frozen = self.frozen.get()
            if any(k in frozen for k in info.keys):
                self._deny(info, errors.FailedPrecondition("key is frozen"))
        for key, decision in decisions:
            rule = decision.rule
            if rule is None or rule.quota_per_minute <= 0:
                continue
            if not self.quotas.take(who.name, rule, info.keys.get(key, 1)):
                self._deny(info, errors.ResourceExhausted("quota exceeded"), decision.reason)
        if operation == "detokenize" and any(d.reveal == "masked" for _, d in decisions):
            request.reveal = tokenization_pb2.REVEAL_MASKED

    def authorize(
        self, who: Principal, operation: str, keys: Mapping[str, int], purpose: str
    ) -> list[tuple[str, Decision]]:
        """(key, decision) per key; empty for the dev principal in dev mode (every right)."""
        if self.is_dev(who):
            return []
        policy = self.policy.current()
        return [(k, policy.decide(who.name, operation, k, purpose)) for k in (keys or {"": 1})]

    def require(self, who: Principal, method: str, request: Any) -> None:
        """Raise PermissionDenied unless ``who`` may make ``method`` with ``request`` (for approvals)."""
        spec = spec_for(method)
        keys = _safe_keys(spec.keys(request))
        purpose = spec.purpose(request) if spec.purpose else ""
        for _, decision in self.authorize(who, spec.operation_of(request), keys, purpose):
            if not decision.allowed:
                raise errors.PermissionDenied()

    def _second_factor(self, info: CallInfo, metadata: Mapping[str, str]) -> None:
        name = info.principal.name
        operator = self.store.get_operator(name)
        if operator is None:
            if info.method == GOVERNANCE + "EnrollOperator" and not self.store.list_operators():
                return  # bootstrap: the first operator is enrolled without a second factor
            self._deny(
                info, errors.PermissionDenied("admin calls need an enrolled operator (operators enroll)")
            )
        code = metadata.get(totp.OTP_METADATA_KEY, "").strip()
        if not code:
            self._deny(info, errors.Unauthenticated("a one-time code is required (x-keysvc-otp)"))
        secret = self.kek.unwrap(operator.wrapped_secret, totp.totp_binding(name))
        step = totp.verify(secret, code, self.clock())
        del secret
        if step is None:
            self._deny(info, errors.Unauthenticated("invalid one-time code"))
        if not self.store.advance_step(name, step):
            self._deny(info, errors.Unauthenticated("one-time code already used"))

    def _deny(self, info: CallInfo, exc: errors.KeysvcError, reason: str = "") -> NoReturn:
        self.record(info, status.code_for(exc).name, detail=(reason or exc.message)[:300])
        raise exc

    # -- running and auditing --------------------------------------------------------------------

    def run(self, info: CallInfo, behavior: Behavior, request: Any, context: grpc.ServicerContext) -> Any:
        spec = info.spec
        if not spec.audited:
            return behavior(request, context)
        if spec.change:
            self.record(info, "STARTED")
        try:
            response = behavior(request, context)
        except errors.KeysvcError as exc:
            self.record(info, status.code_for(exc).name)
            raise
        except Exception:
            aborted = context.code()  # type: ignore[attr-defined]
            code = aborted.name if aborted is not None else "INTERNAL"
            self.record(info, code)
            raise
        versions, failed = _outcome(info, request, response)
        self.record(info, "OK", versions=versions, failed=failed)
        return response

    def record_unauthenticated(self, method: str, request_id: str, peer: str) -> None:
        """Audit a call the pipeline refused for missing or unknown credentials."""
        self.audit.append(
            AuditRecord(
                at=self.clock(),
                request_id=request_id,
                principal="",
                peer=peer,
                operation=f"unauthenticated:{method.rsplit('/', 1)[-1]}",
                result="UNAUTHENTICATED",
            )
        )

    def record(
        self,
        info: CallInfo,
        result: str,
        *,
        versions: dict[str, list[int]] | None = None,
        failed: int = 0,
        detail: str = "",
        operation: str = "",
    ) -> None:
        keys = tuple(sorted(k for k in info.keys if k))
        self.audit.append(
            AuditRecord(
                at=self.clock(),
                request_id=info.request_id,
                principal=info.principal.name,
                peer=info.peer,
                operation=operation or _operation_name(info),
                keys=keys,
                versions=versions or {},
                items=info.items,
                failed_items=failed,
                purpose=info.purpose[:200],
                result=result,
                detail=detail or info.detail,
            )
        )


def _operation_name(info: CallInfo) -> str:
    return f"{info.operation or info.spec.operation}:{info.method.rsplit('/', 1)[-1]}"


_KEY_VERSION = attrgetter("key_version")


def _outcome(info: CallInfo, request: Any, response: Any) -> tuple[dict[str, list[int]], int]:
    """Versions per key and the number of failed items.

    Ciphertext calls take the versions from the headers (the versions asked for); others from
    the response. A failed item carries no key version (0), so one pass counts the failures."""
    results = getattr(response, "results", None)
    if results is None or not results or "key_version" not in results[0].DESCRIPTOR.fields_by_name:
        return {}, 0
    found = list(map(_KEY_VERSION, results))
    failed = found.count(0)
    if info.header_versions is not None:
        return {k: v for k, v in info.header_versions.items() if k in info.keys}, failed
    if len(info.keys) != 1:
        return {}, failed
    key = next(iter(info.keys))
    return ({key: sorted(set(found) - {0})} if key and failed < len(found) else {}), failed


def _request_id(metadata: Mapping[str, str]) -> str:
    var = getattr(pipeline, "current_request_id", None)
    if var is not None:
        try:
            return str(var.get())
        except LookupError:
            pass
    value = metadata.get(pipeline.REQUEST_ID_KEY)
    if value is not None and _REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex
