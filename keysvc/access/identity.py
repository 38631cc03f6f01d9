"""Caller identities. Bearer tokens are kept only as SHA-256 hashes.

Tokens are 256-bit random strings, so an unsalted fast hash is enough: there is no
dictionary to attack. Lookup is by hash, so no comparison timing depends on the token.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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


class TokenAuthenticator:
    """Resolves ``authorization: Bearer <token>`` metadata to a principal."""

    def __init__(self, entries: Mapping[str, TokenEntry], clock: Callable[[], float] = time.time) -> None:
        self._entries = dict(entries)
        self._clock = clock

    def authenticate(self, metadata: Mapping[str, str]) -> Principal:
        header = metadata.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated()
        entry = self._entries.get(hash_token(token.strip()))
        if entry is None or (entry.expires_at is not None and entry.expires_at <= self._clock()):
            raise Unauthenticated()
        return Principal(entry.principal, "token")
