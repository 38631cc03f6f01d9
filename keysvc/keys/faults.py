"""Crash-test hooks: named points where a test can freeze the process and ``kill -9`` it.

Inert unless the environment names the point: ``KEYSVC_TEST_CRASH_AT=<point>`` makes the
process write ``KEYSVC_TEST_CRASH_MARKER`` (a path) and then sleep forever the
``KEYSVC_TEST_CRASH_SKIP``-th + 1 time it reaches that point. Points:

``rotate.wrapped``        a new DEK is wrapped, its version not yet stored
``rotate.stored``         the new version is committed, caches not yet updated
``retention.applied``     one retention action is committed, the rest not yet
``rewrap.sealed``         a Rewrap batch is re-encrypted, not yet returned
"""

from __future__ import annotations

import os
import threading
import time

_hits: dict[str, int] = {}
_lock = threading.Lock()


def checkpoint(point: str) -> None:
    if os.environ.get("KEYSVC_TEST_CRASH_AT") != point:
        return
    with _lock:
        seen = _hits.get(point, 0)
        _hits[point] = seen + 1
    if seen < int(os.environ.get("KEYSVC_TEST_CRASH_SKIP", "0")):
        return
    marker = os.environ.get("KEYSVC_TEST_CRASH_MARKER")
    if marker:
        with open(marker, "w") as fh:
            fh.write(point)
    while True:  # wait for SIGKILL
        time.sleep(60)
