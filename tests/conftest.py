"""Shared fixtures: a real server on port 0 (embedded default) and the real client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from keysvc_client import KeyServiceClient

from keysvc.config import Settings, load_settings
from keysvc.server.app import RunningServer, Service, build_service, create_server


def dev_settings(data_dir: Path, **overrides: object) -> Settings:
    return load_settings(None, env={}, overrides={"dev": True, "data_dir": str(data_dir), **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dev_settings(tmp_path / "data")


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
