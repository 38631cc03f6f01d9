"""``keysvc serve --workers N``: one supervisor process, N forked gRPC workers on one port.

The supervisor (the process ``keysvc serve`` started):

1. creates everything shared before any worker exists: the SQLite schema, the local KEK
   file, the dev token (so no two workers race to create them), and checks Vault;
2. reserves the port (binds, never listens, ``SO_REUSEPORT``), so ``--listen HOST:0``
   works: every worker binds the same chosen port with ``grpc.so_reuseport`` and the
   kernel spreads connections across them;
3. sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh temporary directory, or the configured one,
   wiped) before forking, so workers write their metric values there;
4. forks the workers *before* creating any gRPC object (gRPC Python cannot fork once its
   core is running) and prints ``keysvc listening on HOST:PORT`` once every worker has
   reported that its server accepts calls;
5. serves the aggregate of all workers' metrics on ``server.metrics_listen``
   (``MultiProcessCollector``), replaces a worker that dies (``mark_process_dead`` first,
   so its live gauges go away), and on SIGTERM/SIGINT asks every worker to drain for
   ``server.grace_seconds`` (SIGKILL after that plus a margin).

Background jobs (``start_jobs``) and the per-key gauges run in worker 0 only; when worker 0
dies its replacement takes them over. Linux only (``SO_REUSEPORT``, ``fork``).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from keysvc.config import ConfigError, Settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_KILL_MARGIN_SECONDS = 5.0
_RESPAWN_BACKOFF_SECONDS = 0.5


@dataclass
class _Worker:
    index: int
    pid: int
    started: float
    ready: bool = False


def prepare_multiproc_dir(environ: dict[str, str] | None = None) -> tuple[str, bool]:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory; returns (path, created here)."""
    env = os.environ if environ is None else environ
    path = env.get(MULTIPROC_ENV, "")
    if not path:
        path = tempfile.mkdtemp(prefix="keysvc-metrics-")
        env[MULTIPROC_ENV] = path
        return path, True
    os.makedirs(path, exist_ok=True)
    for stale in glob.glob(os.path.join(path, "*.db")):
        os.remove(stale)
    return path, False


def use_multiprocess_values() -> None:
    """Make metrics created from now on write to PROMETHEUS_MULTIPROC_DIR.

    prometheus_client picks its value class when it is first imported; the supervisor may
    have imported it before setting the directory, so each worker switches explicitly.
    """
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        setattr(values, "ValueClass", values.MultiProcessValue())  # type: ignore[no-untyped-call]  # noqa: B010


def reserve_port(listen: str) -> tuple[socket.socket, str, int]:
    """Bind (not listen) ``listen`` with SO_REUSEPORT; returns (socket, host, chosen port)."""
    from keysvc.server.app import parse_address

    host, port = parse_address(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host or "0.0.0.0", port))  # noqa: S104
    except OSError:
        sock.close()
        raise ConfigError("could not listen on the configured address") from None
    return sock, host, int(sock.getsockname()[1])


class Supervisor:
    """Forks, watches and drains the workers of ``keysvc serve --workers N``."""

    def __init__(
        self, settings: Settings, announce: Callable[[str], None] = print, ready_timeout: float = 120.0
    ) -> None:
        self._settings = settings
        self._announce = announce
        self._ready_timeout = ready_timeout
        self._count = settings.server.workers
        self._workers: dict[int, _Worker] = {}
        self._stopping = False
        self._ready_r = -1
        self._ready_w = -1
        self._sock: socket.socket | None = None
        self._listen = ""

    # -- parent -------------------------------------------------------------------------------

    def run(self) -> None:
        from keysvc.server import access_app, app

        settings = self._settings
        # Shared state first, in one process: schema, KEK file, dev token, Vault check.
        app.open_store(settings.store_url).close()
        app.open_kek(settings).close()
        access_app.load_identity(settings)
        path, created = prepare_multiproc_dir()
        httpd = None
        self._sock, host, port = reserve_port(settings.server.listen)
        self._listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._ready_r, self._ready_w = os.pipe()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self._count):
                self._spawn(index)
            self._wait_ready()
            if settings.server.metrics_listen:
                from prometheus_client import CollectorRegistry
                from prometheus_client.multiprocess import MultiProcessCollector

                registry = CollectorRegistry()
                MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
                httpd, metrics_port = app.start_metrics_http(settings.server.metrics_listen, registry)
            shown = settings.server.listen.rsplit(":", 1)[0]
            self._announce(f"keysvc listening on {shown}:{port}")
            if httpd is not None:
                metrics_host = settings.server.metrics_listen.rsplit(":", 1)[0]
                self._announce(f"keysvc metrics on {metrics_host}:{metrics_port}")
            log.info("workers ready", extra={"count": self._count})
            while not self._stopping:
                self._drain_ready(0.2)
                self._reap()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if httpd is not None:
                httpd.shutdown()
                httpd.server_close()
            for fd in (self._ready_r, self._ready_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._sock.close()
            if created:
                shutil.rmtree(path, ignore_errors=True)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self._ready_timeout
        while not all(w.ready for w in self._workers.values()):
            if self._stopping:
                raise ConfigError("stopped before the workers were ready")
            if time.monotonic() > deadline:
                raise ConfigError("workers did not start in time")
            self._drain_ready(0.1)
            for pid, code in self._exited():
                worker = self._forget(pid)
                if worker is not None:
                    log.error("worker failed to start", extra={"worker": worker.index, "code": code})
                    raise ConfigError("a worker failed to start; see the log")

    def _drain_ready(self, timeout: float) -> None:
        try:
            readable, _, _ = select.select([self._ready_r], [], [], timeout)
        except InterruptedError:
            return
        if not readable:
            return
        for line in os.read(self._ready_r, 4096).decode().split():
            pid = int(line)
            for worker in self._workers.values():
                if worker.pid == pid:
                    worker.ready = True

    def _exited(self) -> list[tuple[int, int]]:
        done = []
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            done.append((pid, os.waitstatus_to_exitcode(status)))
        return done

    def _forget(self, pid: int) -> _Worker | None:
        from prometheus_client import multiprocess

        for index, worker in list(self._workers.items()):
            if worker.pid == pid:
                del self._workers[index]
                multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
                return worker
        return None

    def _reap(self) -> None:
        for pid, code in self._exited():
            worker = self._forget(pid)
            if worker is None or self._stopping:
                continue
            log.warning(
                "worker exited; starting a replacement",
                extra={"worker": worker.index, "pid": pid, "code": code},
            )
            if time.monotonic() - worker.started < 1.0:
                time.sleep(_RESPAWN_BACKOFF_SECONDS)
            self._spawn(worker.index)

    def _stop_all(self) -> None:
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._settings.server.grace_seconds + _KILL_MARGIN_SECONDS
        while self._workers and time.monotonic() < deadline:
            for pid, _ in self._exited():
                self._forget(pid)
            time.sleep(0.05)
        for worker in list(self._workers.values()):
            log.warning("worker did not drain in time; killing it", extra={"worker": worker.index})
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)
            self._forget(worker.pid)

    # -- child --------------------------------------------------------------------------------

    def _spawn(self, index: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self._workers[index] = _Worker(index, pid, time.monotonic())
            return
        code = 1
        try:
            code = self._child(index)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _child(self, index: int) -> int:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.close(self._ready_r)
        if self._sock is not None:
            self._sock.close()
        from keysvc.server import app, logs
        from keysvc.server.metrics import Metrics

        logs.set_worker(index)
        use_multiprocess_values()
        ready_w = self._ready_w

        def ready(port: int) -> None:
            os.write(ready_w, f"{os.getpid()}\n".encode())

        try:
            metrics = Metrics(sample_on_scrape=False)
            app.serve_process(self._settings, metrics, ready=ready, jobs=index == 0, listen=self._listen)
        except Exception as exc:
            log.error("worker failed", extra={"worker": index, "error_type": type(exc).__name__})
            return 1
        return 0
