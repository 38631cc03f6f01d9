"""Typed settings: built once at start (TOML file + KEYSVC_* env + flags), passed down.

Nothing imports a global settings object; ``keysvc.server.app`` receives a
``Settings`` and hands each part the section it needs.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VaultSettings:
    """How to reach Vault's Transit engine (the production KEK provider).

    ``auth`` is ``token`` (VAULT_TOKEN or ``token_file``; renewed while renewable),
    ``approle`` (``role_id`` + ``secret_id_file``) or ``kubernetes`` (``role`` +
    the service-account JWT at ``jwt_file``).
    """

    addr: str = "http://127.0.0.1:8200"
    namespace: str = ""
    mount: str = "transit"
    key: str = "keysvc-kek"
    cacert: str = ""
    client_cert: str = ""
    client_key: str = ""
    auth: str = "token"
    token: str = field(default="", repr=False)
    token_file: str = ""
    role: str = ""
    role_id: str = ""
    secret_id_file: str = ""
    jwt_file: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    auth_mount: str = ""
    request_timeout_seconds: float = 5.0
    max_retries: int = 3
    breaker_failures: int = 5
    breaker_reset_seconds: float = 1.0


@dataclass(frozen=True)
class ServerSettings:
    listen: str = "127.0.0.1:50051"
    health_listen: str = ""
    metrics_listen: str = ""
    workers: int = 1
    threads: int = 16
    reflection: bool = False
    max_message_bytes: int = 4 * 1024 * 1024
    max_call_seconds: float = 30.0
    grace_seconds: float = 10.0
    # How often each process copies DEK cache and key state into its metrics.
    metrics_interval_seconds: float = 5.0


@dataclass(frozen=True)
class TlsSettings:
    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""
    require_client_auth: bool = True


@dataclass(frozen=True)
class StoreSettings:
    url: str = ""


@dataclass(frozen=True)
class KekSettings:
    provider: str = "local"
    local_path: str = ""


@dataclass(frozen=True)
class AccessSettings:
    policy_file: str = ""
    tokens_file: str = ""
    # Dual-control approval requests expire after this long (default 24 h).
    approval_ttl_seconds: float = 86_400.0
    # Revocations and key freezes are re-read from the store at most this often, so every
    # replica enforces them within this bound (<= 5 s required).
    refresh_seconds: float = 2.0
    # The tokens and policy files are checked for changes at most this often.
    reload_seconds: float = 1.0


@dataclass(frozen=True)
class CacheSettings:
    dek_max_entries: int = 10_000
    dek_ttl_seconds: float = 300.0


@dataclass(frozen=True)
class CryptoSettings:
    nonce_limit: int = 2**32
    reservation_block: int = 65_536


@dataclass(frozen=True)
class SchedulerSettings:
    """The in-server lifecycle scheduler (rotation, retention, token expiry); see OPERATIONS.md."""

    enabled: bool = True
    interval_seconds: float = 30.0
    # a version that encrypted or decrypted within this long is "in use" (keep-last-K stops there)
    in_use_seconds: float = 7 * 86_400.0
    # grace period of versions that retention schedules for destruction
    destroy_grace_seconds: float = 7 * 86_400.0
    purge_expired_tokens: bool = True


@dataclass(frozen=True)
class AuditSettings:
    """Where audit records go besides the hash chain in the store: ``sink`` is ``""`` (none),
    ``stdout`` or ``file`` (JSON lines appended to ``path``)."""

    sink: str = ""
    path: str = ""


@dataclass(frozen=True)
class Settings:
    """Everything a server process needs, from defaults < TOML < VAULT_* < KEYSVC_* < flags."""

    dev: bool = False
    data_dir: str = ".keysvc"
    server: ServerSettings = field(default_factory=ServerSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    kek: KekSettings = field(default_factory=KekSettings)
    vault: VaultSettings = field(default_factory=VaultSettings)
    access: AccessSettings = field(default_factory=AccessSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    crypto: CryptoSettings = field(default_factory=CryptoSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{Path(self.data_dir) / 'keysvc.db'}"

    @property
    def local_kek_path(self) -> Path:
        return Path(self.kek.local_path or Path(self.data_dir) / "kek.json")

    @property
    def dev_token_path(self) -> Path:
        return Path(self.data_dir) / "dev-token"


class ConfigError(ValueError):
    """A setting is unknown or has the wrong type; the message names it."""


_VAULT_ENV = {
    "VAULT_ADDR": "addr",
    "VAULT_TOKEN": "token",
    "VAULT_NAMESPACE": "namespace",
    "VAULT_CACERT": "cacert",
    "VAULT_CLIENT_CERT": "client_cert",
    "VAULT_CLIENT_KEY": "client_key",
}


def load_settings(
    path: Path | None = None, env: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Build settings from a TOML file, the environment and flag overrides (``"section.key": value``).

    Raises:
        ConfigError: unknown section or key, or a value of the wrong type.
    """
    env = os.environ if env is None else env
    layers: dict[str, dict[str, Any]] = {}
    if path is not None:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        for section, values in doc.items():
            if isinstance(values, dict):
                layers.setdefault(section, {}).update(values)
            else:
                layers.setdefault("", {})[section] = values
    for var, name in _VAULT_ENV.items():
        if env.get(var):
            layers.setdefault("vault", {})[name] = env[var]
    for var, value in env.items():
        if var.startswith("KEYSVC_") and var.count("_") >= 2:
            section, _, name = var[len("KEYSVC_") :].lower().partition("_")
            if section in _SECTIONS:
                layers.setdefault(section, {})[name] = value
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, _, name = dotted.rpartition(".")
        layers.setdefault(section, {})[name] = value
    top = {name: _coerce("", name, value, Settings) for name, value in layers.pop("", {}).items()}
    for section, values in layers.items():
        cls = _SECTIONS.get(section)
        if cls is None:
            raise ConfigError(f"unknown config section [{section}]")
        top[section] = cls(**{k: _coerce(section, k, v, cls) for k, v in values.items()})
    return Settings(**top)


def _coerce(section: str, name: str, value: Any, cls: type) -> Any:
    hints = {f.name: f.type for f in fields(cls)}
    where = f"{section}.{name}" if section else name
    if name not in hints or name in _SECTIONS:
        raise ConfigError(f"unknown setting {where}")
    kind = hints[name]
    try:
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        return str(value)
    except ValueError:
        raise ConfigError(f"setting {where} must be a {kind}") from None


_SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "tls": TlsSettings,
    "store": StoreSettings,
    "kek": KekSettings,
    "vault": VaultSettings,
    "access": AccessSettings,
    "cache": CacheSettings,
    "crypto": CryptoSettings,
    "scheduler": SchedulerSettings,
    "audit": AuditSettings,
}
