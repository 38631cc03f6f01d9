import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestApprovalRequest(_message.Message):
    __slots__ = ("method", "request", "ttl_seconds")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    method: str
    request: bytes
    ttl_seconds: int
    def __init__(self, method: _Optional[str] = ..., request: _Optional[bytes] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class Approval(_message.Message):
    __slots__ = ("id", "method", "summary", "requested_by", "requested_at", "expires_at", "state", "approved_by", "outcome")
    ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    id: str
    method: str
    summary: str
    requested_by: str
    requested_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    state: str
    approved_by: str
    outcome: str
    def __init__(self, id: _Optional[str] = ..., method: _Optional[str] = ..., summary: _Optional[str] = ..., requested_by: _Optional[str] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., approved_by: _Optional[str] = ..., outcome: _Optional[str] = ...) -> None: ...

class ApproveRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ApproveResponse(_message.Message):
    __slots__ = ("approval", "response")
    APPROVAL_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    approval: Approval
    response: bytes
    def __init__(self, approval: _Optional[_Union[Approval, _Mapping]] = ..., response: _Optional[bytes] = ...) -> None: ...

class ListApprovalsRequest(_message.Message):
    __slots__ = ("include_done",)
    INCLUDE_DONE_FIELD_NUMBER: _ClassVar[int]
    include_done: bool
    def __init__(self, include_done: _Optional[bool] = ...) -> None: ...

class ListApprovalsResponse(_message.Message):
    __slots__ = ("approvals",)
    APPROVALS_FIELD_NUMBER: _ClassVar[int]
    approvals: _containers.RepeatedCompositeFieldContainer[Approval]
    def __init__(self, approvals: _Optional[_Iterable[_Union[Approval, _Mapping]]] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("seq", "time", "request_id", "principal", "peer", "operation", "keys", "versions", "items", "failed_items", "purpose", "result", "detail", "prev_hash", "hash")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    FAILED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: _timestamp_pb2.Timestamp
    request_id: str
    principal: str
    peer: str
    operation: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    versions: _containers.RepeatedScalarFieldContainer[str]
    items: int
    failed_items: int
    purpose: str
    result: str
    detail: str
    prev_hash: str
    hash: str
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., principal: _Optional[str] = ..., peer: _Optional[str] = ..., operation: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., versions: _Optional[_Iterable[str]] = ..., items: _Optional[int] = ..., failed_items: _Optional[int] = ..., purpose: _Optional[str] = ..., result: _Optional[str] = ..., detail: _Optional[str] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class QueryAuditRequest(_message.Message):
    __slots__ = ("principal", "key", "operation", "since", "until", "limit", "after_seq")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    principal: str
    key: str
    operation: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    after_seq: int
    def __init__(self, principal: _Optional[str] = ..., key: _Optional[str] = ..., operation: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., after_seq: _Optional[int] = ...) -> None: ...

class QueryAuditResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[AuditRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[AuditRecord, _Mapping]]] = ...) -> None: ...

class VerifyAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChainProblem(_message.Message):
    __slots__ = ("seq", "kind", "detail")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: str
    detail: str
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class VerifyAuditResponse(_message.Message):
    __slots__ = ("ok", "records", "head_seq", "problems")
    OK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    records: int
    head_seq: int
    problems: _containers.RepeatedCompositeFieldContainer[ChainProblem]
    def __init__(self, ok: _Optional[bool] = ..., records: _Optional[int] = ..., head_seq: _Optional[int] = ..., problems: _Optional[_Iterable[_Union[ChainProblem, _Mapping]]] = ...) -> None: ...

class RevokePrincipalRequest(_message.Message):
    __slots__ = ("principal",)
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    principal: str
    def __init__(self, principal: _Optional[str] = ...) -> None: ...

class RevokePrincipalResponse(_message.Message):
    __slots__ = ("principal", "effective_within_seconds")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_WITHIN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    principal: str
    effective_within_seconds: float
    def __init__(self, principal: _Optional[str] = ..., effective_within_seconds: _Optional[float] = ...) -> None: ...

class FreezeKeyRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class UnfreezeKeyRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class FreezeKeyResponse(_message.Message):
    __slots__ = ("key", "frozen")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    key: str
    frozen: bool
    def __init__(self, key: _Optional[str] = ..., frozen: _Optional[bool] = ...) -> None: ...

class IncidentReportRequest(_message.Message):
    __slots__ = ("principal", "since", "until")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    principal: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    def __init__(self, principal: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IncidentUsage(_message.Message):
    __slots__ = ("key", "operation", "versions", "requests", "items", "denied", "first", "last")
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DENIED_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    key: str
    operation: str
    versions: _containers.RepeatedScalarFieldContainer[int]
    requests: int
    items: int
    denied: int
    first: _timestamp_pb2.Timestamp
    last: _timestamp_pb2.Timestamp
    def __init__(self, key: _Optional[str] = ..., operation: _Optional[str] = ..., versions: _Optional[_Iterable[int]] = ..., requests: _Optional[int] = ..., items: _Optional[int] = ..., denied: _Optional[int] = ..., first: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IncidentReportResponse(_message.Message):
    __slots__ = ("principal", "usage", "records")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    principal: str
    usage: _containers.RepeatedCompositeFieldContainer[IncidentUsage]
    records: int
    def __init__(self, principal: _Optional[str] = ..., usage: _Optional[_Iterable[_Union[IncidentUsage, _Mapping]]] = ..., records: _Optional[int] = ...) -> None: ...

class RotateAllKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateAllKeysResponse(_message.Message):
    __slots__ = ("rotated", "failed")
    ROTATED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    rotated: _containers.RepeatedScalarFieldContainer[str]
    failed: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rotated: _Optional[_Iterable[str]] = ..., failed: _Optional[_Iterable[str]] = ...) -> None: ...

class EnrollOperatorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class EnrollOperatorResponse(_message.Message):
    __slots__ = ("name", "provisioning_uri")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_URI_FIELD_NUMBER: _ClassVar[int]
    name: str
    provisioning_uri: str
    def __init__(self, name: _Optional[str] = ..., provisioning_uri: _Optional[str] = ...) -> None: ...

class RevokeOperatorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeOperatorResponse(_message.Message):
    __slots__ = ("name", "removed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    name: str
    removed: bool
    def __init__(self, name: _Optional[str] = ..., removed: _Optional[bool] = ...) -> None: ...

class ListOperatorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Operator(_message.Message):
    __slots__ = ("name", "enrolled_at", "enrolled_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    enrolled_at: _timestamp_pb2.Timestamp
    enrolled_by: str
    def __init__(self, name: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., enrolled_by: _Optional[str] = ...) -> None: ...

class ListOperatorsResponse(_message.Message):
    __slots__ = ("operators",)
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    operators: _containers.RepeatedCompositeFieldContainer[Operator]
    def __init__(self, operators: _Optional[_Iterable[_Union[Operator, _Mapping]]] = ...) -> None: ...

class CheckPolicyRequest(_message.Message):
    __slots__ = ("principal", "operation", "key", "purpose")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    principal: str
    operation: str
    key: str
    purpose: str
    def __init__(self, principal: _Optional[str] = ..., operation: _Optional[str] = ..., key: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class CheckPolicyResponse(_message.Message):
    __slots__ = ("allowed", "rule", "reason", "roles", "reveal", "quota_per_minute", "require_purpose", "revoked", "operator")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROLES_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    QUOTA_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_PURPOSE_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    rule: str
    reason: str
    roles: _containers.RepeatedScalarFieldContainer[str]
    reveal: str
    quota_per_minute: int
    require_purpose: bool
    revoked: bool
    operator: bool
    def __init__(self, allowed: _Optional[bool] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ..., roles: _Optional[_Iterable[str]] = ..., reveal: _Optional[str] = ..., quota_per_minute: _Optional[int] = ..., require_purpose: _Optional[bool] = ..., revoked: _Optional[bool] = ..., operator: _Optional[bool] = ...) -> None: ...
