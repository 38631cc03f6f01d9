"""JSON log lines with an allow-list of fields: nothing else a record carries is written.

Exception messages are never written (they may quote request data): only the
exception type and the stack frames.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback

ALLOWED_FIELDS = frozenset(
    {
        "key",
        "version",
        "versions",
        "error_id",
        "method",
        "error_type",
        "frames",
        "deks",
        "principal",
        "code",
        "latency_ms",
        "request_id",
        "items",
        "provider",
        "kek_version",
        "count",
        "peer",
        "path",
        "worker",
        "pid",
    }
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.msg if isinstance(record.msg, str) else type(record.msg).__name__,
        }
        for name in ALLOWED_FIELDS.intersection(record.__dict__):
            line[name] = record.__dict__[name]
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["error_type"] = type(exc).__name__
            line["frames"] = [
                f"{f.filename}:{f.lineno} {f.name}" for f in traceback.extract_tb(exc.__traceback__)
            ]
        return json.dumps(line, default=str)


class _ProcessFields(logging.Filter):
    """Adds ``worker`` (index) and ``pid`` to every record of a worker process."""

    def __init__(self, worker: int) -> None:
        super().__init__()
        self._worker = worker
        self._pid = os.getpid()

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self._worker
        record.pid = self._pid
        return True


def set_worker(index: int) -> None:
    """Tag this process's log lines with its worker index and pid (multi-process serving)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, _ProcessFields)]:
            handler.removeFilter(old)
        handler.addFilter(_ProcessFields(index))


def configure(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines.

    A line is written for every RPC, so the record fields nobody reads are switched off (the
    "Optimization" section of the logging HOWTO): caller lookup walks the stack per record.
    """
    logging._srcfile = None  # no findCaller() stack walk
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
