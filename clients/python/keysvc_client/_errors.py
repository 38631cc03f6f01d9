"""Exceptions raised by the client, mapped from gRPC status codes (in one place).

KeysvcError                      every error the client raises
├── InvalidArgumentError         INVALID_ARGUMENT
│   ├── DecryptionError          the one opaque decryption failure
│   │   └── StreamDecryptionError  a recording that does not authenticate
│   └── CiphertextFormatError    a record field is not a ks1 text-form ciphertext
├── NotFoundError                NOT_FOUND
├── AlreadyExistsError           ALREADY_EXISTS
├── FailedPreconditionError      FAILED_PRECONDITION
│   └── KeyVersionDestroyedError "key version destroyed" (crypto-shredded)
├── UnauthenticatedError         UNAUTHENTICATED (no or bad credentials)
├── PermissionDeniedError        PERMISSION_DENIED
├── ResourceExhaustedError       RESOURCE_EXHAUSTED (quota, message size)
├── UnavailableError             UNAVAILABLE, retryable (server or key provider down)
├── DeadlineExceededError        DEADLINE_EXCEEDED
├── UnimplementedError           UNIMPLEMENTED
├── InternalError                INTERNAL / UNKNOWN (the message carries an error id)
└── BatchError                   some items of a batch failed; ``.results`` has every item
    └── RecordBatchError         fields of some records failed; ``.fields`` names them
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

import grpc

T = TypeVar("T")


class KeysvcError(Exception):
    """Base class. ``code`` is the gRPC status code name, ``reason`` a stable machine-readable tag."""

    code = "UNKNOWN"

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class InvalidArgumentError(KeysvcError):
    code = "INVALID_ARGUMENT"


class DecryptionError(InvalidArgumentError):
    """The ciphertext, key or context did not authenticate (no further detail, by design)."""


class StreamDecryptionError(DecryptionError):
    """An encrypted recording is truncated, reordered, spliced, edited or under the wrong key."""


class NotFoundError(KeysvcError):
    code = "NOT_FOUND"


class AlreadyExistsError(KeysvcError):
    code = "ALREADY_EXISTS"


class FailedPreconditionError(KeysvcError):
    code = "FAILED_PRECONDITION"


class KeyVersionDestroyedError(FailedPreconditionError):
    """The key version was crypto-shredded: the data is gone for good."""


class UnauthenticatedError(KeysvcError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(KeysvcError):
    code = "PERMISSION_DENIED"


class ResourceExhaustedError(KeysvcError):
    code = "RESOURCE_EXHAUSTED"


class UnavailableError(KeysvcError):
    code = "UNAVAILABLE"


class DeadlineExceededError(KeysvcError):
    code = "DEADLINE_EXCEEDED"


class UnimplementedError(KeysvcError):
    code = "UNIMPLEMENTED"


class InternalError(KeysvcError):
    code = "INTERNAL"


class ItemResult(Generic[T]):
    """One item of a batch: ``value`` when it succeeded, else ``error``."""

    __slots__ = ("error", "reference", "value")

    def __init__(self, value: T | None, error: KeysvcError | None, reference: str = "") -> None:
        self.value = value
        self.error = error
        self.reference = reference

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        state = "ok" if self.error is None else type(self.error).__name__
        return f"ItemResult({state}, reference={self.reference!r})"


class BatchError(KeysvcError, Generic[T]):
    """Raised when at least one item of a batch failed; ``results`` holds every item in order."""

    code = "BATCH"

    def __init__(self, results: Sequence[ItemResult[T]]) -> None:
        failed = sum(1 for r in results if r.error is not None)
        super().__init__(f"{failed} of {len(results)} items failed")
        self.results = list(results)

    @property
    def errors(self) -> list[tuple[int, KeysvcError]]:
        """(index, error) of every failed item."""
        return [(i, r.error) for i, r in enumerate(self.results) if r.error is not None]


_BY_CODE: dict[grpc.StatusCode, type[KeysvcError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
}
_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}
_BY_REASON: dict[str, type[KeysvcError]] = {
    "DECRYPTION_FAILED": DecryptionError,
    "KEY_VERSION_DESTROYED": KeyVersionDestroyedError,
}


def error_for(code: grpc.StatusCode | int, message: str, reason: str = "") -> KeysvcError:
    """The exception for a status code (enum or number) and the server's error reason."""
    status = _CODE_BY_NUMBER.get(code, grpc.StatusCode.UNKNOWN) if isinstance(code, int) else code
    cls = _BY_REASON.get(reason) or _BY_CODE.get(status, KeysvcError)
    return cls(message, reason)


def from_rpc_error(err: grpc.RpcError) -> KeysvcError:
    """Translate a failed call into its typed exception."""
    code = err.code() if isinstance(err, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (err.details() if isinstance(err, grpc.Call) else "") or ""
    reason = ""
    if isinstance(err, grpc.Call):
        for key, value in err.trailing_metadata() or ():
            if key == "keysvc-error-reason" and isinstance(value, str):
                reason = value
    return error_for(code, details, reason)
