"""The audit log: group-committed appends to the hash chain, then JSON lines to a sink.

``AuditLog.append(record)`` returns only once the record is committed to the chain, or
raises :class:`keysvc.errors.AuditUnavailable` (callers fail closed). Concurrent callers
are batched: whoever arrives while no commit is running becomes the leader and commits
everything queued so far in one transaction; the others wait for that commit. So a
busy server does one database commit per group of requests, not one per request.

After the commit each record is written as one JSON line to the sink (``stdout`` or a
file, opened for append). The database is the record of truth; a sink failure is logged
and counted (``sink_errors``) but does not fail the request.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO

from keysvc.audit.store import AuditRecord, GovernanceStore, StoredRecord
from keysvc.errors import AuditUnavailable

log = logging.getLogger(__name__)


class Sink:
    """Where JSON lines go: ``stdout``, a file path, or nowhere (``""``)."""

    def __init__(self, target: str = "") -> None:
        self._lock = threading.Lock()
        self._target = target
        self._fh: IO[str] | None = None
        if target == "stdout":
            self._fh = sys.stdout
        elif target:
            self._fh = open(target, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, stored: Sequence[StoredRecord]) -> None:
        if self._fh is None:
            return
        lines = "".join(json.dumps(s.to_dict(), sort_keys=True) + "\n" for s in stored)
        with self._lock:
            self._fh.write(lines)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None and self._fh is not sys.stdout:
                self._fh.close()
            self._fh = None


class _Pending:
    __slots__ = ("done", "error", "record", "stored")

    def __init__(self, record: AuditRecord) -> None:
        self.record = record
        self.done = False
        self.error = False
        self.stored: StoredRecord | None = None


class AuditLog:
    """Appends audit records with group commit; fail closed on any store error."""

    def __init__(
        self,
        store: GovernanceStore,
        sink: Sink | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_wait_seconds: float = 10.0,
        max_group: int = 512,
    ) -> None:
        self.store = store
        self._sink = sink or Sink("")
        self.clock = clock
        self._max_wait = max_wait_seconds
        self._max_group = max_group
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self.commits = 0
        self.sink_errors = 0

    def append(self, record: AuditRecord) -> StoredRecord:
        entry = _Pending(record)
        deadline = time.monotonic() + self._max_wait
        with self._cond:
            self._queue.append(entry)
            while not entry.done:
                if not self._writing:
                    self._lead()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AuditUnavailable()
                self._cond.wait(remaining)
        if entry.error or entry.stored is None:
            raise AuditUnavailable()
        return entry.stored

    def _lead(self) -> None:
        """Commit the queued group (called holding the condition; releases it while writing)."""
        group, self._queue = self._queue[: self._max_group], self._queue[self._max_group :]
        self._writing = True
        self._cond.release()
        stored: list[StoredRecord] = []
        failed = False
        try:
            stored = self.store.append([p.record for p in group])
        except Exception as exc:
            failed = True
            log.error("audit append failed", extra={"error_type": type(exc).__name__})
        finally:
            self._cond.acquire()
            self._writing = False
            for i, pending in enumerate(group):
                pending.done = True
                pending.error = failed
                pending.stored = None if failed else stored[i]
            self.commits += 1
            self._cond.notify_all()
        if not failed:
            try:
                self._sink.write(stored)
            except Exception as exc:
                self.sink_errors += 1
                log.error("audit sink write failed", extra={"error_type": type(exc).__name__})

    def close(self) -> None:
        self._sink.close()
