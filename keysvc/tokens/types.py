"""Inputs and outputs of the tokenization engine (tuples: they are built per item on the hot path).

Values never appear in their reprs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

NO_METADATA: Mapping[str, str] = MappingProxyType({})


class TokenizeInput(NamedTuple):
    value: str
    tweak: bytes = b""
    ttl_seconds: int = 0
    metadata: Mapping[str, str] = NO_METADATA

    def __repr__(self) -> str:
        return f"TokenizeInput(<{len(self.value)} chars>, ttl_seconds={self.ttl_seconds})"


class DetokenizeInput(NamedTuple):
    token: str
    tweak: bytes = b""
    key_version: int = 0

    def __repr__(self) -> str:
        return f"DetokenizeInput(<{len(self.token)} chars>, key_version={self.key_version})"


class Issued(NamedTuple):
    token: str
    key_version: int

    def __repr__(self) -> str:
        return f"Issued(<{len(self.token)} chars>, key_version={self.key_version})"


class Revealed(NamedTuple):
    value: str
    key_version: int
    masked: bool

    def __repr__(self) -> str:
        return f"Revealed(<{len(self.value)} chars>, key_version={self.key_version}, masked={self.masked})"
