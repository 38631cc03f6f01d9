"""The local KEK provider: a key file in the data directory, for single-node use only.

The file (mode 0600) is JSON ``{"format": "keysvc-local-kek-v1", "current": N,
"versions": {"1": base64(32 bytes), ...}}``. Wrapped DEKs are
``local:v<N>:`` + base64(nonce12 || AES-256-GCM(dek) || tag16) with the binding as AAD,
the same shape as Vault Transit's ``vault:v<N>:``. Anyone who can read the file can
unwrap every DEK: production deployments use Vault Transit.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keysvc.errors import DecryptionFailed
from keysvc.kek.base import KekHealth

log = logging.getLogger(__name__)
_FORMAT = "keysvc-local-kek-v1"


class LocalKekProvider:
    """KEK versions kept in a local file; wraps with AES-256-GCM."""

    name = "local"

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        if not path.exists():
            self._write({1: AESGCM.generate_key(256)}, 1)
            log.warning(
                "generated a local KEK file; it is for single-node use only, use Vault Transit in production"
            )
        self._keys, self._current = self._read()
        self._aeads = {v: AESGCM(k) for v, k in self._keys.items()}

    def _read(self) -> tuple[dict[int, bytes], int]:
        doc = json.loads(self._path.read_text())
        if doc.get("format") != _FORMAT:
            raise ValueError(f"{self._path} is not a keysvc local KEK file")
        return {int(v): base64.b64decode(k) for v, k in doc["versions"].items()}, int(doc["current"])

    def _write(self, keys: dict[int, bytes], current: int) -> None:
        doc = {
            "format": _FORMAT,
            "current": current,
            "versions": {str(v): base64.b64encode(k).decode() for v, k in keys.items()},
        }
        tmp = self._path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path)

    def wrap(self, dek: bytes, binding: bytes) -> bytes:
        version = self._current
        nonce = os.urandom(12)
        body = nonce + self._aeads[version].encrypt(nonce, dek, binding)
        return b"local:v%d:" % version + base64.b64encode(body)

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        aead = self._aeads.get(self.kek_version(wrapped))
        if aead is None:
            raise DecryptionFailed()
        try:
            body = base64.b64decode(wrapped.split(b":", 2)[2], validate=True)
            return aead.decrypt(body[:12], body[12:], binding)
        except (InvalidTag, ValueError):
            raise DecryptionFailed() from None

    def unwrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        return [self.unwrap(wrapped, binding) for wrapped, binding in items]

    def rewrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        return [self.wrap(self.unwrap(wrapped, binding), binding) for wrapped, binding in items]

    def rotate(self) -> int:
        with self._lock:
            keys = dict(self._keys)
            current = max(keys) + 1
            keys[current] = AESGCM.generate_key(256)
            self._write(keys, current)
            self._keys, self._current = keys, current
            self._aeads = {v: AESGCM(k) for v, k in keys.items()}
        return current

    def current_version(self) -> int:
        return self._current

    def kek_version(self, wrapped: bytes) -> int:
        parts = wrapped.split(b":", 2)
        if (
            len(parts) != 3
            or parts[0] != b"local"
            or not parts[1].startswith(b"v")
            or not parts[1][1:].isdigit()
        ):
            raise DecryptionFailed()
        return int(parts[1][1:])

    def health(self) -> KekHealth:
        return KekHealth(ok=True)

    def close(self) -> None:
        """Nothing to release."""
