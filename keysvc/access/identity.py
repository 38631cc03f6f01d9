"""Caller identities. Bearer tokens are kept only as SHA-256 hashes.

Tokens are 256-bit random strings, so an unsalted fast hash is enough: there is no
dictionary to attack. Lookup is by hash, so no comparison timing depends on the token.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from keysvc.errors import Unauthenticated


@dataclass(frozen=True)
class Principal:
    """Who is calling: a name from the token table or a certificate SAN."""

    name: str
    via: str


@dataclass(frozen=True)
class TokenEntry:
    principal: str
    expires_at: float | None = None


def new_token() -> str:
    """A fresh bearer token (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- Bearer tokens from a file that is re-read when it changes, and mTLS identities -------------

log = logging.getLogger(__name__)

TLS_SECURITY_TYPE = b"ssl"

def load_tokens_file(path: str) -> dict[str, TokenEntry]:
    """``[[tokens]]`` entries with ``principal``, ``sha256`` (hex) and optional ``expires_at`` (ISO 8601)."""
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    entries: dict[str, TokenEntry] = {}
    for item in doc.get("tokens", []):
        digest = str(item["sha256"]).strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("tokens file: sha256 must be 64 hex digits")
        expires = item.get("expires_at")
        expires_at = datetime.fromisoformat(str(expires)).timestamp() if expires else None
        entries[digest] = TokenEntry(str(item["principal"]), expires_at)
    return entries


def principal_from_certificate(auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
    """The principal a verified client certificate names: its SPIFFE ID (URI SAN), else its first
    DNS SAN as ``dns:<name>``. Never the subject CN. None when there is no usable SAN."""
    if auth_context.get("transport_security_type", [b""])[0] != TLS_SECURITY_TYPE:
        return None
    if not auth_context.get("x509_pem_cert"):
        return None  # TLS without a client certificate
    for value in auth_context.get("peer_spiffe_id", ()):
        text = value.decode("utf-8", "replace")
        if text.startswith("spiffe://"):
            return text
    sans = [v.decode("utf-8", "replace") for v in auth_context.get("x509_subject_alternative_name", ())]
    uris = [v.decode("utf-8", "replace") for v in auth_context.get("peer_uri", ())]
    for text in (*uris, *sans):
        if text.startswith("spiffe://"):
            return text
    dns = [v.decode("utf-8", "replace") for v in auth_context.get("peer_dns", ())]
    for text in (*dns, *sans):
        if text and "://" not in text and "@" not in text and ":" not in text and _dns_like(text):
            return f"dns:{text.lower()}"
    return None


def _dns_like(text: str) -> bool:
    labels = text.split(".")
    if all(label.isdigit() for label in labels):
        return False  # an IP address SAN
    return all(label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels)


class Authenticator:
    """Bearer tokens (hashes from the tokens file, re-read when it changes) and mTLS identities.

    ``authenticate(metadata, auth_context)``: an ``authorization: Bearer`` header decides when
    present (a bad or expired token is UNAUTHENTICATED, with no fallback to the certificate);
    otherwise a verified client certificate's SPIFFE ID or DNS SAN is the principal. A client
    without a certificate on a port that requires one never gets here: the TLS handshake fails
    and gRPC reports UNAVAILABLE to the client.
    """

    def __init__(
        self,
        tokens_file: str = "",
        *,
        static: Mapping[str, TokenEntry] | None = None,
        allow_certificates: bool = True,
        check_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = tokens_file
        self._static = dict(static or {})
        self._allow_certificates = allow_certificates
        self._check = check_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next = 0.0
        self._stamp: tuple[int, int] | None = None
        self._entries: dict[str, TokenEntry] = dict(self._static)
        if tokens_file:
            self._entries = {**load_tokens_file(tokens_file), **self._static}
            self._stamp = _file_stamp(tokens_file)

    def _current(self) -> dict[str, TokenEntry]:
        if not self._path or self._monotonic() < self._next:
            return self._entries
        with self._lock:
            now = self._monotonic()
            if now >= self._next:
                self._next = now + self._check
                try:
                    stamp = _file_stamp(self._path)
                    if stamp != self._stamp:
                        self._entries = {**load_tokens_file(self._path), **self._static}
                        self._stamp = stamp
                        log.info("tokens file reloaded")
                except (OSError, ValueError, KeyError, tomllib.TOMLDecodeError) as exc:
                    log.error(
                        "tokens file reload failed; keeping the previous tokens",
                        extra={"error_type": type(exc).__name__},
                    )
            return self._entries

    def authenticate(
        self, metadata: Mapping[str, str], auth_context: Mapping[str, Sequence[bytes]] | None = None
    ) -> Principal:
        header = metadata.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated()
            entry = self._current().get(hash_token(token.strip()))
            if entry is None or (entry.expires_at is not None and entry.expires_at <= self._clock()):
                raise Unauthenticated()
            return Principal(entry.principal, "token")
        if self._allow_certificates and auth_context:
            name = principal_from_certificate(auth_context)
            if name is not None:
                return Principal(name, "mtls")
        raise Unauthenticated()


def _file_stamp(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size)
