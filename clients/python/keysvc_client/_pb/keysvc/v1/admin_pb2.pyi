import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KeyPurpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_PURPOSE_UNSPECIFIED: _ClassVar[KeyPurpose]
    KEY_PURPOSE_ENCRYPT: _ClassVar[KeyPurpose]
    KEY_PURPOSE_FPE: _ClassVar[KeyPurpose]
    KEY_PURPOSE_VAULT_TOKEN: _ClassVar[KeyPurpose]

class VersionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERSION_STATE_UNSPECIFIED: _ClassVar[VersionState]
    VERSION_STATE_PRIMARY: _ClassVar[VersionState]
    VERSION_STATE_ACTIVE: _ClassVar[VersionState]
    VERSION_STATE_DISABLED: _ClassVar[VersionState]
    VERSION_STATE_SCHEDULED_FOR_DESTRUCTION: _ClassVar[VersionState]
    VERSION_STATE_DESTROYED: _ClassVar[VersionState]
KEY_PURPOSE_UNSPECIFIED: KeyPurpose
KEY_PURPOSE_ENCRYPT: KeyPurpose
KEY_PURPOSE_FPE: KeyPurpose
KEY_PURPOSE_VAULT_TOKEN: KeyPurpose
VERSION_STATE_UNSPECIFIED: VersionState
VERSION_STATE_PRIMARY: VersionState
VERSION_STATE_ACTIVE: VersionState
VERSION_STATE_DISABLED: VersionState
VERSION_STATE_SCHEDULED_FOR_DESTRUCTION: VersionState
VERSION_STATE_DESTROYED: VersionState

class KeyPolicy(_message.Message):
    __slots__ = ("rotate_every_seconds", "rotate_after_encryptions", "keep_versions", "retain_for_seconds", "floor_past_in_use")
    ROTATE_EVERY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROTATE_AFTER_ENCRYPTIONS_FIELD_NUMBER: _ClassVar[int]
    KEEP_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    RETAIN_FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FLOOR_PAST_IN_USE_FIELD_NUMBER: _ClassVar[int]
    rotate_every_seconds: int
    rotate_after_encryptions: int
    keep_versions: int
    retain_for_seconds: int
    floor_past_in_use: bool
    def __init__(self, rotate_every_seconds: _Optional[int] = ..., rotate_after_encryptions: _Optional[int] = ..., keep_versions: _Optional[int] = ..., retain_for_seconds: _Optional[int] = ..., floor_past_in_use: _Optional[bool] = ...) -> None: ...

class KeyVersion(_message.Message):
    __slots__ = ("version", "state", "created_at", "encryptions", "state_changed_at", "state_changed_by", "destroy_after", "kek_version", "retired_at", "last_used_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTIONS_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_BY_FIELD_NUMBER: _ClassVar[int]
    DESTROY_AFTER_FIELD_NUMBER: _ClassVar[int]
    KEK_VERSION_FIELD_NUMBER: _ClassVar[int]
    RETIRED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    state: VersionState
    created_at: _timestamp_pb2.Timestamp
    encryptions: int
    state_changed_at: _timestamp_pb2.Timestamp
    state_changed_by: str
    destroy_after: _timestamp_pb2.Timestamp
    kek_version: int
    retired_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., encryptions: _Optional[int] = ..., state_changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_changed_by: _Optional[str] = ..., destroy_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kek_version: _Optional[int] = ..., retired_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Key(_message.Message):
    __slots__ = ("name", "purpose", "created_at", "primary_version", "min_decryption_version", "versions", "policy", "format", "format_options", "last_rotated_at", "next_rotation_at", "created_by", "history")
    class FormatOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_DECRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    LAST_ROTATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_ROTATION_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: KeyPurpose
    created_at: _timestamp_pb2.Timestamp
    primary_version: int
    min_decryption_version: int
    versions: _containers.RepeatedCompositeFieldContainer[KeyVersion]
    policy: KeyPolicy
    format: str
    format_options: _containers.ScalarMap[str, str]
    last_rotated_at: _timestamp_pb2.Timestamp
    next_rotation_at: _timestamp_pb2.Timestamp
    created_by: str
    history: _containers.RepeatedCompositeFieldContainer[VersionEvent]
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[_Union[KeyPurpose, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., primary_version: _Optional[int] = ..., min_decryption_version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[KeyVersion, _Mapping]]] = ..., policy: _Optional[_Union[KeyPolicy, _Mapping]] = ..., format: _Optional[str] = ..., format_options: _Optional[_Mapping[str, str]] = ..., last_rotated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_rotation_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., history: _Optional[_Iterable[_Union[VersionEvent, _Mapping]]] = ...) -> None: ...

class VersionEvent(_message.Message):
    __slots__ = ("version", "from_state", "to_state", "at", "actor")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    version: int
    from_state: VersionState
    to_state: VersionState
    at: _timestamp_pb2.Timestamp
    actor: str
    def __init__(self, version: _Optional[int] = ..., from_state: _Optional[_Union[VersionState, str]] = ..., to_state: _Optional[_Union[VersionState, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("name", "purpose", "policy", "format", "format_options")
    class FormatOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: KeyPurpose
    policy: KeyPolicy
    format: str
    format_options: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[_Union[KeyPurpose, str]] = ..., policy: _Optional[_Union[KeyPolicy, _Mapping]] = ..., format: _Optional[str] = ..., format_options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[Key]
    def __init__(self, keys: _Optional[_Iterable[_Union[Key, _Mapping]]] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateKeyPolicyRequest(_message.Message):
    __slots__ = ("name", "policy", "min_decryption_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MIN_DECRYPTION_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    policy: KeyPolicy
    min_decryption_version: int
    def __init__(self, name: _Optional[str] = ..., policy: _Optional[_Union[KeyPolicy, _Mapping]] = ..., min_decryption_version: _Optional[int] = ...) -> None: ...

class SetVersionStateRequest(_message.Message):
    __slots__ = ("name", "version", "state", "grace_seconds", "expected_state")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    state: VersionState
    grace_seconds: int
    expected_state: VersionState
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[_Union[VersionState, str]] = ..., grace_seconds: _Optional[int] = ..., expected_state: _Optional[_Union[VersionState, str]] = ...) -> None: ...

class RotateDueKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RotateDueKeysResponse(_message.Message):
    __slots__ = ("rotated", "floors")
    class FloorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ROTATED_FIELD_NUMBER: _ClassVar[int]
    FLOORS_FIELD_NUMBER: _ClassVar[int]
    rotated: _containers.RepeatedScalarFieldContainer[str]
    floors: _containers.ScalarMap[str, int]
    def __init__(self, rotated: _Optional[_Iterable[str]] = ..., floors: _Optional[_Mapping[str, int]] = ...) -> None: ...

class RetentionRequest(_message.Message):
    __slots__ = ("grace_seconds",)
    GRACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    grace_seconds: int
    def __init__(self, grace_seconds: _Optional[int] = ...) -> None: ...

class RetentionAction(_message.Message):
    __slots__ = ("key", "version", "destroy_after", "action")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESTROY_AFTER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    key: str
    version: int
    destroy_after: _timestamp_pb2.Timestamp
    action: str
    def __init__(self, key: _Optional[str] = ..., version: _Optional[int] = ..., destroy_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[str] = ...) -> None: ...

class RetentionPlan(_message.Message):
    __slots__ = ("actions",)
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    actions: _containers.RepeatedCompositeFieldContainer[RetentionAction]
    def __init__(self, actions: _Optional[_Iterable[_Union[RetentionAction, _Mapping]]] = ...) -> None: ...

class PurgeExpiredTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PurgeExpiredTokensResponse(_message.Message):
    __slots__ = ("purged",)
    PURGED_FIELD_NUMBER: _ClassVar[int]
    purged: int
    def __init__(self, purged: _Optional[int] = ...) -> None: ...

class RotateKekRequest(_message.Message):
    __slots__ = ("resume_only",)
    RESUME_ONLY_FIELD_NUMBER: _ClassVar[int]
    resume_only: bool
    def __init__(self, resume_only: _Optional[bool] = ...) -> None: ...

class GetKekStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KekStatus(_message.Message):
    __slots__ = ("provider", "wrapped_by_version", "rewrapped", "current_version", "rewrapped_from", "healthy")
    class WrappedByVersionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class RewrappedFromEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    WRAPPED_BY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_FROM_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    provider: str
    wrapped_by_version: _containers.ScalarMap[int, int]
    rewrapped: int
    current_version: int
    rewrapped_from: _containers.ScalarMap[int, int]
    healthy: bool
    def __init__(self, provider: _Optional[str] = ..., wrapped_by_version: _Optional[_Mapping[int, int]] = ..., rewrapped: _Optional[int] = ..., current_version: _Optional[int] = ..., rewrapped_from: _Optional[_Mapping[int, int]] = ..., healthy: _Optional[bool] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServiceStatus(_message.Message):
    __slots__ = ("version", "store", "kek_provider", "kek_healthy", "keys")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    KEK_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    KEK_HEALTHY_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    version: str
    store: str
    kek_provider: str
    kek_healthy: bool
    keys: int
    def __init__(self, version: _Optional[str] = ..., store: _Optional[str] = ..., kek_provider: _Optional[str] = ..., kek_healthy: _Optional[bool] = ..., keys: _Optional[int] = ...) -> None: ...
