"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2

from keysvc import errors
from keysvc_client._pb.keysvc.v1 import common_pb2

REASON_METADATA_KEY = "keysvc-error-reason"

_CODES: tuple[tuple[type[errors.KeysvcError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.DecryptionFailed, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def code_for(exc: errors.KeysvcError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def item_status(exc: errors.KeysvcError) -> common_pb2.Status:
    """A per-item error for a batch result: code, safe message and the reason as an ErrorReason detail."""
    detail = any_pb2.Any()
    detail.Pack(common_pb2.ErrorReason(reason=exc.reason))
    return common_pb2.Status(code=code_for(exc).value[0], message=exc.message, details=[detail])
