"""Pytest fixtures for Vault Transit: a real Vault when VAULT_ADDR and VAULT_TOKEN are set, else the double.

Load as a plugin (``pytest_plugins = ["tests.fakes.vault_fixtures"]`` in the top-level
conftest or a test module). Tests marked ``@pytest.mark.vault`` use only ``vault`` and so
run against either; tests that inject faults or configure auth roles take ``vault_double``,
which skips when a real Vault is in use. Against a real Vault every key a test creates has
a unique name and is deleted afterwards; the Transit mount (``transit``, or
KEYSVC_TEST_VAULT_MOUNT) is enabled if it is missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import hvac
import pytest

from keysvc.config import VaultSettings
from tests.fakes.vault_transit import VaultTransitDouble


@dataclass
class VaultTarget:
    """Where the tests' Vault is, an hvac client for setting it up, and the double if there is one."""

    addr: str
    token: str
    namespace: str
    mount: str
    client: hvac.Client
    double: VaultTransitDouble | None
    created: list[str] = field(default_factory=list)

    @property
    def real(self) -> bool:
        return self.double is None

    def require_double(self) -> VaultTransitDouble:
        if self.double is None:
            pytest.skip("needs the Transit double (fault injection, auth roles); a real Vault is configured")
        return self.double

    def create_key(self, *, derived: bool = True, **params: Any) -> str:
        """Create a Transit key with a unique name (deleted at teardown) and return the name."""
        name = f"keysvc-test-{uuid.uuid4().hex[:12]}"
        self.client.secrets.transit.create_key(name, derived=derived, mount_point=self.mount, **params)
        self.created.append(name)
        return name

    def settings(self, key: str, **overrides: Any) -> VaultSettings:
        """VaultSettings for the provider under test, with small timeouts."""
        base = VaultSettings(addr=self.addr, token=self.token, namespace=self.namespace, mount=self.mount,
                             key=key, request_timeout_seconds=2.0, max_retries=2, breaker_failures=3,
                             breaker_reset_seconds=0.5)
        return replace(base, **overrides)

    def _cleanup(self) -> None:
        if self.double is not None:
            return
        for name in self.created:
            self.client.secrets.transit.update_key_configuration(name, deletion_allowed=True,
                                                                 mount_point=self.mount)
            self.client.secrets.transit.delete_key(name, mount_point=self.mount)


def _real_vault() -> tuple[str, str] | None:
    addr, token = os.environ.get("VAULT_ADDR", ""), os.environ.get("VAULT_TOKEN", "")
    return (addr, token) if addr and token else None


@pytest.fixture
def vault() -> Iterator[VaultTarget]:
    """The Vault under test: real (VAULT_ADDR + VAULT_TOKEN) or a fresh Transit double."""
    mount = os.environ.get("KEYSVC_TEST_VAULT_MOUNT", "transit")
    real = _real_vault()
    if real is None:
        with VaultTransitDouble(mounts=(mount,)) as double:
            client = hvac.Client(url=double.url, token=double.root_token)
            target = VaultTarget(double.url, double.root_token, "", mount, client, double)
            try:
                yield target
            finally:
                client.adapter.close()
        return
    addr, token = real
    namespace = os.environ.get("VAULT_NAMESPACE", "")
    client = hvac.Client(url=addr, token=token, namespace=namespace or None,
                         verify=os.environ.get("VAULT_CACERT") or True)
    if f"{mount}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("transit", path=mount)
    target = VaultTarget(addr, token, namespace, mount, client, None)
    try:
        yield target
    finally:
        target._cleanup()
        client.adapter.close()


@pytest.fixture
def vault_double(vault: VaultTarget) -> VaultTransitDouble:
    """The Transit double behind ``vault``; skips the test against a real Vault."""
    return vault.require_double()
