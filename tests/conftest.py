"""Shared fixtures: a real server on port 0 (embedded default) and the real client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from keysvc_client import KeyServiceClient

if TYPE_CHECKING:
    from tests.fakes.vault_fixtures import VaultTarget

from keysvc.config import Settings, load_settings
from keysvc.server.app import RunningServer, Service, build_service, create_server

pytest_plugins = ["tests.fakes.vault_fixtures"]


def dev_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(None, env={}, overrides={"dev": True, "data_dir": str(data_dir), **overrides})


def vault_overrides(vault: VaultTarget, key: str) -> dict[str, object]:
    return {
        "kek.provider": "vault-transit",
        "vault.addr": vault.addr,
        "vault.token": vault.token,
        "vault.mount": vault.mount,
        "vault.namespace": vault.namespace,
        "vault.key": key,
        "vault.request_timeout_seconds": 2.0,
        "vault.breaker_reset_seconds": 0.5,
    }


@pytest.fixture(params=["local", "vault-transit"])
def kek_provider(request: pytest.FixtureRequest) -> str:
    """Service tests run once per KEK provider: the local file and Vault Transit."""
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, kek_provider: str, request: pytest.FixtureRequest) -> Settings:
    if kek_provider == "local":
        return dev_settings(tmp_path / "data")
    vault: VaultTarget = request.getfixturevalue("vault")
    return dev_settings(tmp_path / "data", **vault_overrides(vault, vault.create_key(derived=True)))


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    svc = build_service(settings)
    yield svc
    svc.close()


@pytest.fixture
def server(service: Service) -> Iterator[RunningServer]:
    running = create_server(service, "127.0.0.1:0")
    yield running
    running.stop(None)


@pytest.fixture
def token(settings: Settings, server: RunningServer) -> str:
    return settings.dev_token_path.read_text().strip()


@pytest.fixture
def client(server: RunningServer, token: str) -> Iterator[KeyServiceClient]:
    with KeyServiceClient(f"127.0.0.1:{server.port}", token=token) as c:
        yield c
