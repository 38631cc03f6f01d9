from keysvc_client._pb.keysvc.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EncryptItem(_message.Message):
    __slots__ = ("plaintext", "context", "reference")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    context: _containers.ScalarMap[str, str]
    reference: str
    def __init__(self, plaintext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., reference: _Optional[str] = ...) -> None: ...

class EncryptRequest(_message.Message):
    __slots__ = ("key", "items", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    key: str
    items: _containers.RepeatedCompositeFieldContainer[EncryptItem]
    context: _containers.ScalarMap[str, str]
    def __init__(self, key: _Optional[str] = ..., items: _Optional[_Iterable[_Union[EncryptItem, _Mapping]]] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EncryptResult(_message.Message):
    __slots__ = ("ciphertext", "key_version", "reference", "error")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_version: int
    reference: str
    error: _common_pb2.Status
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ...) -> None: ...

class EncryptResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[EncryptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[EncryptResult, _Mapping]]] = ...) -> None: ...

class DecryptItem(_message.Message):
    __slots__ = ("ciphertext", "context", "reference")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    context: _containers.ScalarMap[str, str]
    reference: str
    def __init__(self, ciphertext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., reference: _Optional[str] = ...) -> None: ...

class DecryptRequest(_message.Message):
    __slots__ = ("items", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[DecryptItem]
    context: _containers.ScalarMap[str, str]
    def __init__(self, items: _Optional[_Iterable[_Union[DecryptItem, _Mapping]]] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class DecryptResult(_message.Message):
    __slots__ = ("plaintext", "key_version", "reference", "error")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    key_version: int
    reference: str
    error: _common_pb2.Status
    def __init__(self, plaintext: _Optional[bytes] = ..., key_version: _Optional[int] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ...) -> None: ...

class DecryptResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DecryptResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DecryptResult, _Mapping]]] = ...) -> None: ...

class RewrapItem(_message.Message):
    __slots__ = ("ciphertext", "context", "reference")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    context: _containers.ScalarMap[str, str]
    reference: str
    def __init__(self, ciphertext: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., reference: _Optional[str] = ...) -> None: ...

class RewrapRequest(_message.Message):
    __slots__ = ("items", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RewrapItem]
    context: _containers.ScalarMap[str, str]
    def __init__(self, items: _Optional[_Iterable[_Union[RewrapItem, _Mapping]]] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RewrapResult(_message.Message):
    __slots__ = ("ciphertext", "key_version", "reference", "error")
    CIPHERTEXT_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ciphertext: bytes
    key_version: int
    reference: str
    error: _common_pb2.Status
    def __init__(self, ciphertext: _Optional[bytes] = ..., key_version: _Optional[int] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ...) -> None: ...

class RewrapResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RewrapResult]
    def __init__(self, results: _Optional[_Iterable[_Union[RewrapResult, _Mapping]]] = ...) -> None: ...

class DataKeySpec(_message.Message):
    __slots__ = ("context", "reference")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    context: _containers.ScalarMap[str, str]
    reference: str
    def __init__(self, context: _Optional[_Mapping[str, str]] = ..., reference: _Optional[str] = ...) -> None: ...

class GenerateDataKeyRequest(_message.Message):
    __slots__ = ("key", "items", "bits")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    key: str
    items: _containers.RepeatedCompositeFieldContainer[DataKeySpec]
    bits: int
    def __init__(self, key: _Optional[str] = ..., items: _Optional[_Iterable[_Union[DataKeySpec, _Mapping]]] = ..., bits: _Optional[int] = ...) -> None: ...

class DataKeyResult(_message.Message):
    __slots__ = ("plaintext", "encrypted", "key_version", "reference", "error")
    PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    plaintext: bytes
    encrypted: bytes
    key_version: int
    reference: str
    error: _common_pb2.Status
    def __init__(self, plaintext: _Optional[bytes] = ..., encrypted: _Optional[bytes] = ..., key_version: _Optional[int] = ..., reference: _Optional[str] = ..., error: _Optional[_Union[_common_pb2.Status, _Mapping]] = ...) -> None: ...

class GenerateDataKeyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DataKeyResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DataKeyResult, _Mapping]]] = ...) -> None: ...

class DecryptDataKeyItem(_message.Message):
    __slots__ = ("encrypted", "context", "reference")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENCRYPTED_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    encrypted: bytes
    context: _containers.ScalarMap[str, str]
    reference: str
    def __init__(self, encrypted: _Optional[bytes] = ..., context: _Optional[_Mapping[str, str]] = ..., reference: _Optional[str] = ...) -> None: ...

class DecryptDataKeyRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[DecryptDataKeyItem]
    def __init__(self, items: _Optional[_Iterable[_Union[DecryptDataKeyItem, _Mapping]]] = ...) -> None: ...

class DecryptDataKeyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[DataKeyResult]
    def __init__(self, results: _Optional[_Iterable[_Union[DataKeyResult, _Mapping]]] = ...) -> None: ...
