"""Domain errors: the only vocabulary the server maps to gRPC status codes.

Every message passed to these classes must be safe to show to a caller: a static
sentence, optionally with a key *name* or version number. Never a plaintext, a
token, key material or text copied from a request. ``keysvc.server.status`` is
the single place that turns them into gRPC codes.

    KeysvcError
    ├── InvalidArgument        malformed input (INVALID_ARGUMENT)
    ├── NotFound               no such key / version / object (NOT_FOUND)
    ├── AlreadyExists          (ALREADY_EXISTS)
    ├── FailedPrecondition     state forbids the call (FAILED_PRECONDITION)
    │   └── KeyVersionDestroyed  "key version destroyed"
    ├── DecryptionFailed       the one opaque decrypt error (INVALID_ARGUMENT)
    ├── Unauthenticated        (UNAUTHENTICATED)
    ├── PermissionDenied       (PERMISSION_DENIED)
    ├── ResourceExhausted      quota or limit (RESOURCE_EXHAUSTED)
    ├── Unavailable            retryable outage (UNAVAILABLE)
    │   └── KekUnavailable     "key provider unavailable"
    └── AuditUnavailable       audit could not be written: fail closed (UNAVAILABLE)
"""

from __future__ import annotations


class KeysvcError(Exception):
    """Base of all domain errors; ``str(err)`` is safe to return to a caller."""

    default_message = "request failed"
    reason = "ERROR"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidArgument(KeysvcError):
    default_message = "invalid argument"
    reason = "INVALID_ARGUMENT"


class NotFound(KeysvcError):
    default_message = "not found"
    reason = "NOT_FOUND"


class AlreadyExists(KeysvcError):
    default_message = "already exists"
    reason = "ALREADY_EXISTS"


class FailedPrecondition(KeysvcError):
    default_message = "failed precondition"
    reason = "FAILED_PRECONDITION"


class KeyVersionDestroyed(FailedPrecondition):
    default_message = "key version destroyed"
    reason = "KEY_VERSION_DESTROYED"


class DecryptionFailed(KeysvcError):
    """The single opaque decryption error: says nothing about why."""

    default_message = "decryption failed"
    reason = "DECRYPTION_FAILED"

    def __init__(self) -> None:
        super().__init__(self.default_message)


class Unauthenticated(KeysvcError):
    default_message = "missing or invalid credentials"
    reason = "UNAUTHENTICATED"


class PermissionDenied(KeysvcError):
    default_message = "permission denied"
    reason = "PERMISSION_DENIED"


class ResourceExhausted(KeysvcError):
    default_message = "resource exhausted"
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(KeysvcError):
    default_message = "service unavailable"
    reason = "UNAVAILABLE"


class KekUnavailable(Unavailable):
    default_message = "key provider unavailable"
    reason = "KEK_UNAVAILABLE"


class AuditUnavailable(Unavailable):
    default_message = "audit log unavailable"
    reason = "AUDIT_UNAVAILABLE"
