"""The interceptor every RPC passes through: errors (outermost), then authentication.

Domain errors become their gRPC status (via :mod:`keysvc.server.status`); any other
exception becomes INTERNAL with an opaque error id, and only its type and stack frames
(never its message, which might hold request data) reach the server log.

Every unary call also gets a request id (the caller's ``x-request-id`` if it is a short
token of ``[A-Za-z0-9._:-]``, else a fresh one), returned in trailing metadata as
``x-request-id``; one JSON access line (logger ``keysvc.access``: request id, method,
principal, code, latency; never the request or response) when INFO is enabled; and the
gRPC and item metrics of :mod:`keysvc.server.metrics`. Per-method state (the wrapped
handler, bound metric children) is built once, on the method's first call.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import re
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from keysvc import deadlines, errors
from keysvc.access.identity import Authenticator, Principal
from keysvc.server import status
from keysvc.server.metrics import Metrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("keysvc.access")

current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("keysvc_principal")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("keysvc_request_id")

# Calls that need no credentials: k8s probes use the health service.
_PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")

REQUEST_ID_KEY = "x-request-id"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_OK = grpc.StatusCode.OK

Behavior = Callable[[Any, grpc.ServicerContext], Any]


def principal() -> Principal:
    """The authenticated caller of the current RPC."""
    return current_principal.get()


class RequestIds:
    """Fresh request ids: a random per-process prefix and a counter (unique, cheap, not secret)."""

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex()
        self._next = itertools.count(1).__next__

    def __call__(self, value: str | None = None) -> str:
        """The caller's request id when it is safe to log and echo, else a fresh one."""
        if value is not None and _REQUEST_ID.fullmatch(value):
            return value
        return f"{self._prefix}-{self._next():x}"


class CallPipeline(grpc.ServerInterceptor):
    """Wraps unary handlers with error translation, deadline bounding, authentication,
    request ids, access logs and metrics."""

    def __init__(
        self,
        authenticator: Authenticator,
        max_call_seconds: float = 30.0,
        metrics: Metrics | None = None,
        on_unauthenticated: Callable[[str, str, str], None] | None = None,
    ) -> None:
        """``on_unauthenticated(method, request_id, peer)`` records calls refused for missing or
        unknown credentials (they never reach the inner interceptors); it may raise KeysvcError."""
        self._on_unauthenticated = on_unauthenticated
        self._authenticator = authenticator
        self._max_call_seconds = max_call_seconds
        self._metrics = metrics or Metrics(sample_on_scrape=False)
        self._wrapped: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        self._request_ids = RequestIds()

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
        # The request is parsed inside the pipeline, so a malformed message (bad wire format,
        # invalid UTF-8 in a string field) is INVALID_ARGUMENT, not gRPC's own INTERNAL.
        wrapped: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
            self._wrap(handler.unary_unary, method, public, handler.request_deserializer),
            request_deserializer=None,
            response_serializer=handler.response_serializer,
        )
        self._wrapped[method] = wrapped
        return wrapped

    def _wrap(
        self, behavior: Behavior, method: str, public: bool, parse: Callable[[bytes], Any] | None
    ) -> Behavior:
        observe = self._metrics.method(method)
        authenticate = self._authenticator.authenticate
        max_seconds = self._max_call_seconds
        perf_counter = time.perf_counter
        request_id_from = self._request_ids

        def finish(
            context: grpc.ServicerContext,
            request_id: str,
            who: str,
            code: grpc.StatusCode,
            start: float,
            extra: tuple[tuple[str, str], ...] = (),
            error_id: str = "",
        ) -> None:
            context.set_trailing_metadata(((REQUEST_ID_KEY, request_id), *extra))
            elapsed = perf_counter() - start
            observe.handled(code, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                fields: dict[str, object] = {
                    "request_id": request_id,
                    "method": method,
                    "principal": who,
                    "code": code.name,
                    "latency_ms": round(elapsed * 1000, 3),
                }
                if error_id:
                    fields["error_id"] = error_id
                access_log.info("rpc", extra=fields)

        def call(raw: Any, context: grpc.ServicerContext) -> Any:
            start = perf_counter()
            observe.started()
            request_id = ""
            who = ""
            request = raw
            try:
                metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
                request_id = request_id_from(metadata.get(REQUEST_ID_KEY))
                current_request_id.set(request_id)
                with deadlines.bounded(context.time_remaining(), max_seconds):
                    if not public:
                        # The certificate identity is read only when no bearer token was sent; grpc's
                        # stubs say Mapping[str, bytes] but the values are lists of bytes.
                        peer: Any = None if "authorization" in metadata else context.auth_context()
                        caller = authenticate(metadata, peer)
                        current_principal.set(caller)
                        who = caller.name
                    if parse is not None:
                        try:
                            request = parse(raw)
                        except Exception:
                            raise errors.InvalidArgument("the request is not a valid message") from None
                    response = behavior(request, context)
                set_code = context.code()  # type: ignore[attr-defined]
                code = _OK if set_code is None else set_code
                if code is _OK:
                    observe.items(request, response, who)
                finish(context, request_id, who, code, start)
                return response
            except errors.KeysvcError as exc:
                code, message, reason = status.code_for(exc), exc.message, exc.reason
                error_id = ""
                if not who and isinstance(exc, errors.Unauthenticated) and self._on_unauthenticated:
                    try:
                        self._on_unauthenticated(method, request_id or request_id_from(None), context.peer())
                    except errors.KeysvcError:
                        log.error("could not audit a refused call", extra={"method": method})
            except NotImplementedError:
                code, message, reason = (
                    grpc.StatusCode.UNIMPLEMENTED,
                    "method not implemented",
                    "UNIMPLEMENTED",
                )
                error_id = ""
            except Exception as exc:
                aborted = context.code()  # type: ignore[attr-defined]
                if aborted is not None and aborted is not _OK:
                    # The servicer called context.abort() itself: its status stands.
                    finish(context, request_id or request_id_from(None), who, aborted, start)
                    raise
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
            finish(
                context,
                request_id or request_id_from(None),
                who,
                code,
                start,
                ((status.REASON_METADATA_KEY, reason),),
                error_id,
            )
            context.abort(code, message)

        return call


def _frames(exc: BaseException) -> list[str]:
    """Where the exception came from, without its message."""
    return [f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)]
