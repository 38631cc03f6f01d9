"""Plain records the store persists; the keyring gives them meaning."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Purpose(StrEnum):
    ENCRYPT = "encrypt"
    FPE = "fpe"
    VAULT_TOKEN = "vault-token"  # noqa: S105 - a purpose name, not a secret


class VersionState(StrEnum):
    PRIMARY = "primary"
    ACTIVE = "active"
    DISABLED = "disabled"
    SCHEDULED_FOR_DESTRUCTION = "scheduled-for-destruction"
    DESTROYED = "destroyed"


@dataclass(frozen=True)
class KeyPolicy:
    """Rotation and retention settings of one key (0 means "not set")."""

    rotate_every_seconds: int = 0
    rotate_after_encryptions: int = 0
    keep_versions: int = 0
    retain_for_seconds: int = 0
    # keep_versions may advance min_decryption_version past versions still in use
    floor_past_in_use: bool = False


@dataclass(frozen=True)
class VersionRecord:
    version: int
    state: VersionState
    created_at: float
    wrapped_dek: bytes | None = field(repr=False)
    kek_version: int
    encryptions: int = 0
    state_changed_at: float = 0.0
    state_changed_by: str = ""
    destroy_after: float | None = None
    # when the version stopped being primary (retention counts from here); None while primary
    retired_at: float | None = None
    # last encryption reservation or (flushed) decryption under this version, on any replica
    last_used_at: float = 0.0


@dataclass(frozen=True)
class VersionEvent:
    """One recorded state change of a key version (``from_state`` None: the version was created)."""

    key_name: str
    version: int
    at: float
    actor: str
    from_state: VersionState | None
    to_state: VersionState


@dataclass(frozen=True)
class KeyRecord:
    name: str
    purpose: Purpose
    created_at: float
    created_by: str
    policy: KeyPolicy
    format: str = ""
    format_options: dict[str, str] = field(default_factory=dict)
    min_decryption_version: int = 1
    last_rotated_at: float = 0.0
    versions: tuple[VersionRecord, ...] = ()

    @property
    def primary(self) -> VersionRecord:
        return next(v for v in self.versions if v.state is VersionState.PRIMARY)

    def version(self, number: int) -> VersionRecord | None:
        return next((v for v in self.versions if v.version == number), None)


@dataclass(frozen=True)
class TokenRecord:
    """One vaulted token: the value is envelope-encrypted under a key version (opaque here)."""

    key_name: str
    token: str = field(repr=False)
    ciphertext: bytes = field(repr=False)
    key_version: int
    fingerprint: bytes | None = field(repr=False)  # keyed-HMAC index for convergent mode, else None
    created_at: float
    expires_at: float | None
    metadata: dict[str, str] = field(default_factory=dict, repr=False)
