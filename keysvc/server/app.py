"""Wiring: the only place that builds concrete stores, KEK providers and servicers."""

from __future__ import annotations

import logging
import os
import signal
import threading
import tomllib
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from keysvc import __version__
from keysvc.access.identity import TokenAuthenticator, TokenEntry, hash_token, new_token
from keysvc.config import ConfigError, Settings
from keysvc.errors import KeysvcError
from keysvc.kek.base import KekProvider
from keysvc.kek.local import LocalKekProvider
from keysvc.kek.vault_transit import VaultTransitProvider
from keysvc.keys.cache import DekCache
from keysvc.keys.fields import FieldCrypto
from keysvc.keys.keyring import Keyring, KeyringSettings
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
    tokenization_pb2,
    tokenization_pb2_grpc,
)

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    crypto_pb2.DESCRIPTOR.services_by_name["Crypto"].full_name,
    tokenization_pb2.DESCRIPTOR.services_by_name["Tokenization"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)


@dataclass
class Service:
    """The domain objects of one server process."""

    settings: Settings
    store: Store
    kek: KekProvider
    keyring: Keyring
    authenticator: TokenAuthenticator

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


def load_authenticator(settings: Settings) -> TokenAuthenticator:
    """The dev token in dev mode (created on first start, mode 0600), else the tokens file."""
    if settings.dev:
        path = settings.dev_token_path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(new_token() + "\n")
        return TokenAuthenticator({hash_token(path.read_text().strip()): TokenEntry("dev")})
    if not settings.access.tokens_file:
        raise ConfigError("no credentials configured: set access.tokens_file (or run with --dev)")
    with open(settings.access.tokens_file, "rb") as fh:
        doc = tomllib.load(fh)
    entries = {}
    for item in doc.get("tokens", []):
        expires = item.get("expires_at")
        expires_at = datetime.fromisoformat(str(expires)).timestamp() if expires else None
        entries[str(item["sha256"])] = TokenEntry(str(item["principal"]), expires_at)
    return TokenAuthenticator(entries)


def build_service(settings: Settings) -> Service:
    store = open_store(settings.store_url)
    kek = open_kek(settings)
    cache = DekCache(settings.cache.dek_max_entries, settings.cache.dek_ttl_seconds)
    keyring = Keyring(
        store,
        kek,
        cache,
        KeyringSettings(
            nonce_limit=settings.crypto.nonce_limit, reservation_block=settings.crypto.reservation_block
        ),
    )
    return Service(settings, store, kek, keyring, load_authenticator(settings))


def _server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    tls = settings.tls
    if not tls.cert_file:
        return None
    chain = Path(tls.cert_file).read_bytes()
    key = Path(tls.key_file).read_bytes()
    ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=bool(ca) and tls.require_client_auth
    )


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

    def stop(self, grace: float | None) -> None:
        self.kek_monitor.stop()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def create_server(service: Service, listen: str | None = None) -> RunningServer:
    """Build and start the gRPC server for ``service``; ``listen`` overrides the configured address."""
    settings = service.settings.server
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.threads),
        interceptors=[CallPipeline(service.authenticator, settings.max_call_seconds)],
        options=options,
    )
    crypto_pb2_grpc.add_CryptoServicer_to_server(CryptoServicer(FieldCrypto(service.keyring)), server)
    tokenization_pb2_grpc.add_TokenizationServicer_to_server(
        TokenizationServicer(Tokenizer(service.keyring, service.store)), server
    )
    admin_pb2_grpc.add_AdminServicer_to_server(
        AdminServicer(service.keyring, service.store, __version__), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if settings.reflection:
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = listen or settings.listen
    credentials = _server_credentials(service.settings)
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise ConfigError("could not listen on the configured address")
    server.start()
    monitor = KekHealthMonitor(service.kek, health_servicer)
    monitor.start()
    return RunningServer(server, port, health_servicer, monitor)


class Job(Protocol):
    """A background job started with the server (scheduler, health pollers)."""

    def stop(self) -> None: ...


def start_jobs(service: Service) -> list[Job]:
    """Background jobs for this process. Multi-process serving runs them in one worker only."""
    return []


def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls for ``server.grace_seconds``."""
    service = build_service(settings)
    try:
        warmed = service.keyring.warm_up()
        log.info("warmed DEK cache", extra={"deks": warmed})
        running = create_server(service)
        jobs = start_jobs(service)
        stopping = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        host = settings.server.listen.rsplit(":", 1)[0]
        announce(f"keysvc listening on {host}:{running.port}")
        stopping.wait()
        log.info("shutting down")
        for job in jobs:
            job.stop()
        running.stop(settings.server.grace_seconds)
    finally:
        service.close()
