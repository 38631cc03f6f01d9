"""The KEK provider interface: the only thing the keyring knows about key wrapping.

A provider wraps and unwraps data keys (DEKs) under a key-encryption key it owns.
``binding`` is the canonical encoding of (key name, version, purpose) produced by
``keysvc.crypto.binding``; a wrapped DEK only unwraps under the same binding, so it
cannot be moved onto another key (PCI DSS 3.7.7). Wrapped values are opaque ASCII
bytes of the form ``<provider>:v<kek version>:<base64>``.

Providers raise ``keysvc.errors.DecryptionFailed`` for a wrapped value that does
not authenticate, ``keysvc.errors.KekUnavailable`` when the KEK cannot be reached,
and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class KekHealth:
    """Whether new wraps/unwraps are possible right now, and a safe one-line reason."""

    ok: bool
    detail: str = ""


class KekProvider(Protocol):
    """Wraps DEKs under a KEK. Implementations: local (file), vault_transit (hvac)."""

    name: str

    def wrap(self, dek: bytes, binding: bytes) -> bytes:
        """Return ``dek`` wrapped under the current KEK version, bound to ``binding``."""
        ...

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        """Return the DEK inside ``wrapped``; DecryptionFailed if it does not authenticate."""
        ...

    def unwrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Unwrap many (wrapped, binding) pairs at once, in order (one batched call)."""
        ...

    def rewrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Re-wrap (wrapped, binding) pairs under the newest KEK version without exposing DEKs."""
        ...

    def rotate(self) -> int:
        """Create a new KEK version, make it current, and return its number."""
        ...

    def current_version(self) -> int:
        """The KEK version new wraps use."""
        ...

    def kek_version(self, wrapped: bytes) -> int:
        """The KEK version a wrapped value was made with (parsed from its prefix)."""
        ...

    def health(self) -> KekHealth:
        """Report whether the provider can wrap and unwrap now."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...
