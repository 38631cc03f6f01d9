"""Wiring for identities, the guard and the Governance service.

``build_governance(service, admin_servicer)`` opens the governance tables in the store's
database, the audit log and its sink, the policy, and returns the guard interceptor and
the Governance servicer; ``keysvc.server.app.create_server`` installs both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from keysvc.access.identity import Authenticator, TokenEntry, hash_token, new_token
from keysvc.access.policy import PolicySource
from keysvc.audit.log import AuditLog, Sink
from keysvc.audit.store import GovernanceStore, open_governance_store
from keysvc.config import ConfigError, Settings
from keysvc.server.guard import Guard
from keysvc.server.servicers.admin import AdminServicer
from keysvc.server.servicers.governance import GovernanceServicer
from keysvc_client._pb.keysvc.v1 import (
    governance_pb2,
)

if TYPE_CHECKING:  # app imports this module to wire it in; only the type is needed here
    from keysvc.server.app import Service

GOVERNANCE_SERVICE = governance_pb2.DESCRIPTOR.services_by_name["Governance"].full_name


def load_identity(settings: Settings) -> Authenticator:
    """Bearer tokens (the dev token in dev mode, plus ``access.tokens_file`` re-read on change)
    and mTLS identities (SPIFFE ID or DNS SAN of a verified client certificate)."""
    static: dict[str, TokenEntry] = {}
    if settings.dev:
        path = settings.dev_token_path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(new_token() + "\n")
        static[hash_token(path.read_text().strip())] = TokenEntry("dev")
    certificates = bool(settings.tls.client_ca_file)
    if not settings.dev and not settings.access.tokens_file and not certificates:
        raise ConfigError(
            "no credentials configured: set access.tokens_file or tls.client_ca_file (or --dev)"
        )
    try:
        return Authenticator(
            settings.access.tokens_file,
            static=static,
            allow_certificates=certificates,
            check_seconds=settings.access.reload_seconds,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"access.tokens_file: {type(exc).__name__}") from None


def open_sink(settings: Settings) -> Sink:
    audit = settings.audit
    if audit.sink in ("", "none"):
        return Sink("")
    if audit.sink == "stdout":
        return Sink("stdout")
    if audit.sink == "file":
        if not audit.path:
            raise ConfigError("audit.path is required with audit.sink = file")
        return Sink(audit.path)
    raise ConfigError("audit.sink must be none, stdout or file")


@dataclass
class Governance:
    store: GovernanceStore
    audit: AuditLog
    guard: Guard
    servicer: GovernanceServicer

    def close(self) -> None:
        self.audit.close()
        self.store.close()


def build_governance(
    service: Service,
    admin: AdminServicer,
    *,
    store: GovernanceStore | None = None,
    clock: Callable[[], float] | None = None,
) -> Governance:
    settings = service.settings
    store = store or open_governance_store(settings.store_url)
    policy = PolicySource(settings.access.policy_file, check_seconds=settings.access.reload_seconds)
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    audit = AuditLog(store, open_sink(settings), **kwargs)
    guard = Guard(
        store,
        audit,
        policy,
        service.kek,
        dev=settings.dev,
        refresh_seconds=settings.access.refresh_seconds,
        **kwargs,
    )
    servicer = GovernanceServicer(
        store, audit, guard, service.kek, admin, approval_ttl_seconds=settings.access.approval_ttl_seconds
    )
    return Governance(store, audit, guard, servicer)


class CertificateFiles:
    """Server TLS material re-read from its files when they change (no restart): gRPC calls
    ``fetch`` before every new handshake; files are stat'ed at most every ``check_seconds``."""

    def __init__(self, cert_file: str, key_file: str, ca_file: str = "", check_seconds: float = 1.0) -> None:
        self._paths = tuple(p for p in (cert_file, key_file, ca_file) if p)
        self._cert, self._key, self._ca = cert_file, key_file, ca_file
        self._check = check_seconds
        self._next = 0.0
        self._stamp = self._stamps()
        self.initial = self._config()

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        return tuple((os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in self._paths)

    def _config(self) -> grpc.ServerCertificateConfiguration:
        with open(self._cert, "rb") as c, open(self._key, "rb") as k:
            pair = (k.read(), c.read())
        ca = None
        if self._ca:
            with open(self._ca, "rb") as fh:
                ca = fh.read()
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self._check
        try:
            stamp = self._stamps()
            if stamp == self._stamp:
                return None
            config = self._config()
        except (OSError, ValueError):
            return None  # half-written files: keep serving the current certificate
        self._stamp = stamp
        return config


def reloading_server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (mTLS when ``tls.client_ca_file`` is set) whose certificate, key and client CA are
    re-read when the files change, for new connections; None when TLS is not configured."""
    tls = settings.tls
    if not tls.cert_file:
        return None
    files = CertificateFiles(tls.cert_file, tls.key_file, tls.client_ca_file, settings.access.reload_seconds)
    return grpc.dynamic_ssl_server_credentials(
        files.initial,
        files.fetch,  # type: ignore[arg-type]  # the fetcher returns None for "no change"
        require_client_authentication=bool(tls.client_ca_file) and tls.require_client_auth,
    )
