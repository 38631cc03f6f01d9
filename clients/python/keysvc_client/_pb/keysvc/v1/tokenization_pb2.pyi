from keysvc_client._pb.keysvc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Reveal(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REVEAL_UNSPECIFIED: _ClassVar[Reveal]
    REVEAL_FULL: _ClassVar[Reveal]
    REVEAL_MASKED: _ClassVar[Reveal]

class RedactionStyle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REDACTION_STYLE_UNSPECIFIED: _ClassVar[RedactionStyle]
    REDACTION_STYLE_LABEL: _ClassVar[RedactionStyle]
    REDACTION_STYLE_MASK: _ClassVar[RedactionStyle]
    REDACTION_STYLE_TOKEN: _ClassVar[RedactionStyle]
REVEAL_UNSPECIFIED: Reveal
REVEAL_FULL: Reveal
REVEAL_MASKED: Reveal
REDACTION_STYLE_UNSPECIFIED: RedactionStyle
REDACTION_STYLE_LABEL: RedactionStyle
REDACTION_STYLE_MASK: RedactionStyle
REDACTION_STYLE_TOKEN: RedactionStyle

class TokenizeItem(_message.Message):
    __slots__ = ("value", "tweak", "reference", "ttl_seconds", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TWEAK_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    value: str
    tweak: bytes
    reference: str
    ttl_seconds: int
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, value: _Optional[str] = ..., tweak: _Optional[bytes] = ..., reference: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TokenizeRequest(_message.Message):
    __slots__ = ("key", "items", "tweak")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TWEAK_FIELD_NUMBER: _ClassVar[int]
    key: str
    items: _containers.RepeatedCompositeFieldContainer[TokenizeItem]
    tweak: bytes
    def __init__(self, key: _Optional[str] = ..., items: _Optional[_Iterable[_Union[TokenizeItem, _Mapping]]] = ..., tweak: _Optional[bytes] = ...) -> None: ...

class TokenizeResult(_message.Message):
    __slots__ = ("token", "key_version", "reference", "error")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    token: str
    key_version: int
    reference: str
    error: _common_pb2.Status
    def __init__(self, token: _Optional[str] = ..., key_version: _Optional[int] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ...) -> None: ...

class TokenizeResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TokenizeResult]
    def __init__(self, results: _Optional[_Iterable[_Union[TokenizeResult, _Mapping]]] = ...) -> None: ...

class DetokenizeItem(_message.Message):
    __slots__ = ("token", "tweak", "reference", "key_version")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TWEAK_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    token: str
    tweak: bytes
    reference: str
    key_version: int
    def __init__(self, token: _Optional[str] = ..., tweak: _Optional[bytes] = ..., reference: _Optional[str] = ..., key_version: _Optional[int] = ...) -> None: ...

class DetokenizeRequest(_message.Message):
    __slots__ = ("key", "items", "tweak", "purpose", "reveal")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TWEAK_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    REVEAL_FIELD_NUMBER: _ClassVar[int]
    key: str
    items: _containers.RepeatedCompositeFieldContainer[DetokenizeItem]
    tweak: bytes
    purpose: str
    reveal: Reveal
    def __init__(self, key: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DetokenizeItem, _Mapping]]] = ..., tweak: _Optional[bytes] = ..., purpose: _Optional[str] = ..., reveal: _Optional[_Union[Reveal, str]] = ...) -> None: ...

class DetokenizeResult(_message.Message):
    __slots__ = ("value", "key_version", "reference", "error", "masked")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    MASKED_FIELD_NUMBER: _ClassVar[int]
    value: str
    key_version: int
    reference: str
    error: _common_pb2.Status
    masked: bool
    def __init__(self, value: _Optional[str] = ..., key_version: _Optional[int] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ..., masked: _Optional[bool] = ...) -> None: ...

class DetokenizeResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DetokenizeResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DetokenizeResult, _Mapping]]] = ...) -> None: ...

class RetokenizeRequest(_message.Message):
    __slots__ = ("key", "items", "tweak")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    TWEAK_FIELD_NUMBER: _ClassVar[int]
    key: str
    items: _containers.RepeatedCompositeFieldContainer[DetokenizeItem]
    tweak: bytes
    def __init__(self, key: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DetokenizeItem, _Mapping]]] = ..., tweak: _Optional[bytes] = ...) -> None: ...

class RetokenizeResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TokenizeResult]
    def __init__(self, results: _Optional[_Iterable[_Union[TokenizeResult, _Mapping]]] = ...) -> None: ...

class Word(_message.Message):
    __slots__ = ("text", "start_ms", "end_ms")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    text: str
    start_ms: int
    end_ms: int
    def __init__(self, text: _Optional[str] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ...) -> None: ...

class RedactItem(_message.Message):
    __slots__ = ("text", "words", "reference")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    text: str
    words: _containers.RepeatedCompositeFieldContainer[Word]
    reference: str
    def __init__(self, text: _Optional[str] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ..., reference: _Optional[str] = ...) -> None: ...

class RedactRequest(_message.Message):
    __slots__ = ("items", "style", "token_keys", "region")
    class TokenKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_KEYS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RedactItem]
    style: RedactionStyle
    token_keys: _containers.ScalarMap[str, str]
    region: str
    def __init__(self, items: _Optional[_Iterable[_Union[RedactItem, _Mapping]]] = ..., style: _Optional[_Union[RedactionStyle, str]] = ..., token_keys: _Optional[_Mapping[str, str]] = ..., region: _Optional[str] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("kind", "start", "end", "word_start", "word_end", "start_ms", "end_ms")
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    WORD_START_FIELD_NUMBER: _ClassVar[int]
    WORD_END_FIELD_NUMBER: _ClassVar[int]
    START_MS_FIELD_NUMBER: _ClassVar[int]
    END_MS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    start: int
    end: int
    word_start: int
    word_end: int
    start_ms: int
    end_ms: int
    def __init__(self, kind: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., word_start: _Optional[int] = ..., word_end: _Optional[int] = ..., start_ms: _Optional[int] = ..., end_ms: _Optional[int] = ...) -> None: ...

class RedactResult(_message.Message):
    __slots__ = ("text", "spans", "reference", "error", "words")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    spans: _containers.RepeatedCompositeFieldContainer[Span]
    reference: str
    error: _common_pb2.Status
    words: _containers.RepeatedCompositeFieldContainer[Word]
    def __init__(self, text: _Optional[str] = ..., spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ..., words: _Optional[_Iterable[_Union[Word, _Mapping]]] = ...) -> None: ...

class RedactResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RedactResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RedactResult, _Mapping]]] = ...) -> None: ...
