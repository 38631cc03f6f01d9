"""Wiring: the only place that builds concrete stores, KEK providers and servicers."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from keysvc import __version__
from keysvc.access.identity import Authenticator
from keysvc.config import ConfigError, Settings
from keysvc.errors import KeysvcError
from keysvc.kek.base import KekProvider
from keysvc.kek.local import LocalKekProvider
from keysvc.kek.vault_transit import VaultTransitProvider
from keysvc.keys.cache import DekCache
from keysvc.keys.fields import FieldCrypto
from keysvc.keys.keyring import Keyring, KeyringSettings
from keysvc.server.access_app import (
    GOVERNANCE_SERVICE,
    Governance,
    build_governance,
    load_identity,
    reloading_server_credentials,
)
from keysvc.server.metrics import Metrics, Sampler
from keysvc.server.pipeline import CallPipeline
from keysvc.server.servicers.admin import AdminServicer
from keysvc.server.servicers.crypto import CryptoServicer
from keysvc.server.servicers.tokenization import TokenizationServicer
from keysvc.store.base import Store
from keysvc.store.sqlite import SqliteStore
from keysvc.tokens.engine import Tokenizer
from keysvc_client._pb.keysvc.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    crypto_pb2,
    crypto_pb2_grpc,
    governance_pb2_grpc,
    tokenization_pb2,
    tokenization_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    crypto_pb2.DESCRIPTOR.services_by_name["Crypto"].full_name,
    tokenization_pb2.DESCRIPTOR.services_by_name["Tokenization"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
    GOVERNANCE_SERVICE,
)


@dataclass
class Service:
    """The domain objects of one server process."""

    settings: Settings
    store: Store
    kek: KekProvider
    keyring: Keyring
    authenticator: Authenticator
    # Metrics of this process; background jobs report runs with ``metrics.job_run(job, outcome, s)``.
    metrics: Metrics = field(default_factory=Metrics)

    def close(self) -> None:
        self.kek.close()
        self.store.close()


def open_store(url: str) -> Store:
    """``sqlite:///PATH`` (embedded, one process) or ``postgresql://...`` (shared by replicas)."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from keysvc.store.postgres import PostgresStore

        try:
            return PostgresStore(url)
        except KeysvcError:
            raise ConfigError("store.url: PostgreSQL is not reachable") from None
    raise ConfigError("store.url must be sqlite:///PATH or postgresql://...")


def open_kek(settings: Settings) -> KekProvider:
    """The configured KEK provider; Vault's Transit key is checked before the server starts."""
    if settings.kek.provider == "local":
        path = settings.local_kek_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return LocalKekProvider(path)
    if settings.kek.provider == "vault-transit":
        provider = VaultTransitProvider(settings.vault)
        try:
            provider.check()
        except KeysvcError as exc:
            provider.close()
            raise ConfigError(f"vault transit: {exc.message}") from None
        return provider
    raise ConfigError("kek.provider must be local or vault-transit")


def build_service(settings: Settings, metrics: Metrics | None = None) -> Service:
    metrics = metrics or Metrics()
    store = open_store(settings.store_url)
    kek = metrics.instrument_kek(open_kek(settings))
    cache = DekCache(settings.cache.dek_max_entries, settings.cache.dek_ttl_seconds)
    metrics.watch_cache(cache)
    keyring = Keyring(
        store,
        kek,
        cache,
        KeyringSettings(
            nonce_limit=settings.crypto.nonce_limit, reservation_block=settings.crypto.reservation_block
        ),
    )
    return Service(settings, store, kek, keyring, load_identity(settings), metrics)


KEK_HEALTH_SERVICE = "keysvc.kek"


class KekHealthMonitor:
    """Publishes whether new DEK unwraps are possible as health service ``keysvc.kek``.

    Liveness should watch the overall service ("") only: it stays SERVING while the KEK
    provider is down, because cached DEKs keep serving traffic.
    """

    def __init__(self, kek: KekProvider, servicer: health.HealthServicer, interval: float = 2.0) -> None:
        self._kek = kek
        self._servicer = servicer
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kek-health", daemon=True)

    def start(self) -> None:
        self.check()
        self._thread.start()

    def check(self) -> bool:
        ok = self._kek.health().ok
        status = health_pb2.HealthCheckResponse.SERVING if ok else health_pb2.HealthCheckResponse.NOT_SERVING
        self._servicer.set(KEK_HEALTH_SERVICE, status)
        return ok

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    kek_monitor: KekHealthMonitor
    governance: Governance
    # The plaintext health-only server on ``server.health_listen`` (probes when the API is mTLS).
    health_server: grpc.Server | None = None
    health_port: int = 0

    def stop(self, grace: float | None) -> None:
        self.kek_monitor.stop()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.health_server is not None:
            self.health_server.stop(None).wait()
        self.governance.close()


def create_server(
    service: Service,
    listen: str | None = None,
    *,
    credentials: grpc.ServerCredentials | None = None,
    clock: Callable[[], float] | None = None,
) -> RunningServer:
    """Build and start the gRPC server for ``service``.

    Args:
        service: the domain objects (``build_service``).
        listen: overrides the configured address.
        credentials: overrides the TLS credentials built from ``[tls]``.
        clock: the governance clock (TOTP, approvals, audit times); tests inject one.
    """
    settings = service.settings.server
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
    ]
    tokenizer = Tokenizer(service.keyring, service.store)
    admin = AdminServicer(service.keyring, service.store, tokenizer, __version__)
    governance = build_governance(service, admin, clock=clock)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads),
        interceptors=[
            CallPipeline(
                service.authenticator,
                settings.max_call_seconds,
                service.metrics,
                on_unauthenticated=governance.guard.record_unauthenticated,
            ),
            governance.guard,
        ],
        options=options,
    )
    crypto_pb2_grpc.add_CryptoServicer_to_server(CryptoServicer(FieldCrypto(service.keyring)), server)
    tokenization_pb2_grpc.add_TokenizationServicer_to_server(TokenizationServicer(tokenizer), server)
    admin_pb2_grpc.add_AdminServicer_to_server(admin, server)
    governance_pb2_grpc.add_GovernanceServicer_to_server(governance.servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if settings.reflection:
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = listen or settings.listen
    credentials = credentials or reloading_server_credentials(service.settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise ConfigError("could not listen on the configured address")
    health_server, health_port = None, 0
    if settings.health_listen:
        health_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options[2:])
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, health_server)
        health_port = health_server.add_insecure_port(settings.health_listen)
        if health_port == 0:
            raise ConfigError("could not listen on server.health_listen")
    server.start()
    if health_server is not None:
        health_server.start()
    monitor = KekHealthMonitor(service.kek, health_servicer)
    monitor.start()
    return RunningServer(server, port, health_servicer, monitor, governance, health_server, health_port)


class Job(Protocol):
    """A background job started with the server (scheduler, health pollers)."""

    def stop(self) -> None: ...


def start_jobs(service: Service) -> list[Job]:
    """Background jobs for this process. Multi-process serving runs them in one worker only.

    The lifecycle scheduler ticks on every replica but runs its jobs on one at a time
    (the store's job lock); ``[scheduler] enabled = false`` turns it off here.
    """
    from keysvc.keys.scheduler import Scheduler

    cfg = service.settings.scheduler
    if not cfg.enabled:
        return []
    scheduler = Scheduler(
        service.keyring,
        service.store,
        interval_seconds=cfg.interval_seconds,
        in_use_seconds=cfg.in_use_seconds,
        destroy_grace_seconds=cfg.destroy_grace_seconds,
        purge_tokens=cfg.purge_expired_tokens,
        on_run=service.metrics.job_run,
    )
    return [scheduler.start()]


def check_protobuf() -> bool:
    """Warn unless protobuf runs on upb (the pure-Python backend is ~20x slower)."""
    from google.protobuf.internal import api_implementation

    kind = api_implementation.Type()
    if kind != "upb":
        log.warning(
            "protobuf is not using the upb backend; expect much slower calls", extra={"provider": kind}
        )
    return kind == "upb"


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) -> (host without brackets, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError("addresses must be HOST:PORT")
    return host.strip("[]"), int(port)


def start_metrics_http(address: str, registry: Any) -> tuple[Any, int]:
    """Serve ``registry`` on ``http://address/metrics``; returns (server, bound port)."""
    from prometheus_client import start_http_server

    host, port = parse_address(address)
    try:
        httpd, _ = start_http_server(port, addr=host or "0.0.0.0", registry=registry)  # noqa: S104
    except OSError:
        raise ConfigError("could not listen on server.metrics_listen") from None
    return httpd, int(httpd.server_port)


def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls for ``server.grace_seconds``.

    With ``server.workers > 1`` the calling process becomes the supervisor of that many
    forked workers (:mod:`keysvc.server.workers`); otherwise it serves in-process.
    """
    check_protobuf()
    if settings.server.workers > 1:
        from keysvc.server.workers import Supervisor

        Supervisor(settings, announce).run()
        return
    metrics = Metrics()
    httpd = None
    lines: list[str] = []
    try:
        if settings.server.metrics_listen:
            httpd, metrics_port = start_metrics_http(settings.server.metrics_listen, metrics.registry)
            metrics_host = settings.server.metrics_listen.rsplit(":", 1)[0]
            lines.append(f"keysvc metrics on {metrics_host}:{metrics_port}")
        host = settings.server.listen.rsplit(":", 1)[0]

        def ready(port: int) -> None:
            for line in (f"keysvc listening on {host}:{port}", *lines):
                announce(line)

        serve_process(settings, metrics, ready=ready, jobs=True)
    finally:
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()


def serve_process(
    settings: Settings,
    metrics: Metrics,
    *,
    ready: Callable[[int], None],
    jobs: bool,
    listen: str | None = None,
) -> None:
    """One serving process (the only one, or a worker): build, serve, drain on SIGTERM/SIGINT.

    ``jobs``: run :func:`start_jobs` and export per-key gauges here (exactly one process does).
    ``ready(port)`` is called once the server accepts calls.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service = build_service(settings, metrics)
    try:
        warmed = service.keyring.warm_up()
        log.info("warmed DEK cache", extra={"deks": warmed})
        if jobs:
            metrics.watch_keys(service.keyring)
        sampler = Sampler(metrics, service.keyring, settings.server.metrics_interval_seconds).start()
        try:
            running = create_server(service, listen)
            background = start_jobs(service) if jobs else []
            if jobs:
                log.info("started background jobs", extra={"count": len(background)})
            ready(running.port)
            stopping.wait()
            log.info("shutting down")
            for job in background:
                job.stop()
            running.stop(settings.server.grace_seconds)
        finally:
            sampler.stop()
    finally:
        service.close()
