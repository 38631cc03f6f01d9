"""The interceptor every RPC passes through: errors (outermost), then authentication.

Domain errors become their gRPC status (via :mod:`keysvc.server.status`); any other
exception becomes INTERNAL with an opaque error id, and only its type and stack frames
(never its message, which might hold request data) reach the server log.
"""

from __future__ import annotations

import contextvars
import logging
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from keysvc import deadlines, errors
from keysvc.access.identity import Principal, TokenAuthenticator
from keysvc.server import status

log = logging.getLogger(__name__)

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("keysvc_principal")

# Calls that need no credentials: k8s probes use the health service.
_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

Behavior = Callable[[Any, grpc.ServicerContext], Any]


def principal() -> Principal:
    """The authenticated caller of the current RPC."""
    return current_principal.get()


class CallPipeline(grpc.ServerInterceptor):
    """Wraps unary handlers with error translation, deadline bounding and authentication."""

    def __init__(self, authenticator: TokenAuthenticator, max_call_seconds: float = 30.0) -> None:
        self._authenticator = authenticator
        self._max_call_seconds = max_call_seconds
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}

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
        if handler is None or handler.unary_unary is None:
            return handler
        public = method.startswith(_PUBLIC_PREFIXES)
        wrapped = grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary, method, public),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(self, behavior: Behavior, method: str, public: bool) -> Behavior:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                with deadlines.bounded(context.time_remaining(), self._max_call_seconds):
                    if not public:
                        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
                        current_principal.set(self._authenticator.authenticate(metadata))
                    return behavior(request, context)
            except errors.KeysvcError as exc:
                code, message, reason = status.code_for(exc), exc.message, exc.reason
            except NotImplementedError:
                code, message, reason = (
                    grpc.StatusCode.UNIMPLEMENTED,
                    "method not implemented",
                    "UNIMPLEMENTED",
                )
            except Exception as exc:
                error_id = uuid.uuid4().hex[:12]
                log.error(
                    "unexpected error",
                    extra={
                        "error_id": error_id,
                        "method": method,
                        "error_type": type(exc).__name__,
                        "frames": _frames(exc),
                    },
                )
                code, message, reason = (
                    grpc.StatusCode.INTERNAL,
                    f"internal error (id {error_id})",
                    "INTERNAL",
                )
            context.set_trailing_metadata(((status.REASON_METADATA_KEY, reason),))
            context.abort(code, message)

        return call


def _frames(exc: BaseException) -> list[str]:
    """Where the exception came from, without its message."""
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)]
