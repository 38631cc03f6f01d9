"""The current request's deadline, visible to lower layers without importing grpc.

The server sets it per call (clamped: gRPC Python reports ~9e18 s when the client
sent no deadline); KEK providers and stores use :func:`timeout` for their own I/O.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("keysvc_deadline", default=None)


@contextlib.contextmanager
def bounded(remaining_seconds: float | None, ceiling: float) -> Iterator[None]:
    """Run the block with a deadline of min(remaining_seconds, ceiling) from now."""
    limit = ceiling if remaining_seconds is None else min(max(remaining_seconds, 0.0), ceiling)
    token = _deadline.set(time.monotonic() + limit)
    try:
        yield
    finally:
        _deadline.reset(token)


def timeout(default: float) -> float:
    """Seconds left for one I/O call: the smaller of ``default`` and the deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(0.0, min(default, deadline - time.monotonic()))
