"""Shared fixtures: a real server on port 0 (embedded default) and the real client."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


# -- PostgreSQL: one database per test session, one schema per test --------------------------------

PG_ADMIN_DSN = os.environ.get("KEYSVC_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_db(dsn: str, db: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database for this session (dropped at the end); skip locally, fail in CI, if no server."""
    import psycopg

    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI (CI=true) but is not reachable at 127.0.0.1:5432")
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432 (set KEYSVC_TEST_PG_DSN)")
    name = f"keysvc_test_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        _drop_stale_databases(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(PG_ADMIN_DSN, name)
    finally:  # a new connection: a test may have restarted the server meanwhile
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=10) as again:
            again.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_stale_databases(admin: Any) -> None:
    """Databases of earlier sessions that were killed before they could drop their own."""
    rows = admin.execute("SELECT datname FROM pg_database WHERE datname LIKE 'keysvc_test_%'").fetchall()
    for (datname,) in rows:
        pid = datname.split("_")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            admin.execute(f'DROP DATABASE IF EXISTS "{datname}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A store URL whose search_path is a schema of its own (dropped after the test)."""
    import psycopg

    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{pg_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request: pytest.FixtureRequest) -> str:
    """Service tests run once per store: embedded SQLite and shared PostgreSQL."""
    return str(request.param)


@pytest.fixture
def store_overrides(store_backend: str, request: pytest.FixtureRequest) -> dict[str, object]:
    if store_backend == "sqlite":
        return {}
    return {"store.url": request.getfixturevalue("pg_url")}


@pytest.fixture
def settings(
    tmp_path: Path, kek_provider: str, store_overrides: dict[str, object], request: pytest.FixtureRequest
) -> Settings:
    if kek_provider == "local":
        return dev_settings(tmp_path / "data", **store_overrides)
    vault: VaultTarget = request.getfixturevalue("vault")
    return dev_settings(
        tmp_path / "data", **store_overrides, **vault_overrides(vault, vault.create_key(derived=True))
    )


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
