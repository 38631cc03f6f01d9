"""Shared benchmark plumbing: run a keysvc server in a subprocess and drive calls at it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc


@contextmanager
def keysvc_server(*extra: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Start ``keysvc serve --dev`` on a free port; yield (address, dev token)."""
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keysvc.cli.serve", "serve", "--dev", "--data-dir", data,
             "--listen", "127.0.0.1:0", "--log-level", "WARNING", *extra],
            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line.startswith("keysvc listening on"):
                raise RuntimeError("server did not start")
            address = line.strip().rsplit(" ", 1)[1]
            yield address, (Path(data) / "dev-token").read_text().strip()
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def pipelined(call: Callable[[Any], grpc.Future], request: Any, seconds: float, in_flight: int) -> float:
    """Calls per second keeping ``in_flight`` futures outstanding for ``seconds``."""
    deadline = time.perf_counter() + seconds
    done = 0
    pending = [call(request) for _ in range(in_flight)]
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for i, fut in enumerate(pending):
            fut.result()
            done += 1
            pending[i] = call(request)
    for fut in pending:
        fut.result()
        done += 1
    return done / (time.perf_counter() - start)
