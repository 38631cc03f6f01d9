"""Vault Transit as the KEK provider: start-up checks, outages, recovery, KEK rotation."""

import os
import subprocess
import sys
import time

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keysvc.config import load_settings
from keysvc.crypto.context import dek_binding
from keysvc.errors import DecryptionFailed
from keysvc.server.app import build_service, create_server
from keysvc_client import BatchError, KeyServiceClient, UnavailableError
from tests.conftest import dev_settings, vault_overrides

pytestmark = pytest.mark.vault


@pytest.fixture
def vault_settings(tmp_path, vault):
    return dev_settings(tmp_path / "data", **vault_overrides(vault, vault.create_key(derived=True)))


@pytest.fixture
def running(vault_settings):
    service = build_service(vault_settings)
    server = create_server(service, "127.0.0.1:0")
    token = vault_settings.dev_token_path.read_text().strip()
    with KeyServiceClient(f"127.0.0.1:{server.port}", token=token, timeout=5) as client:
        yield service, server, client
    server.stop(None)
    service.close()


def test_wrapped_deks_are_vault_ciphertexts_bound_to_their_key(running):
    service, _, client = running
    client.admin.create_key("pii", "encrypt")
    client.admin.create_key("other", "encrypt")
    rows = {name: wrapped for name, _, _, wrapped in service.store.wrapped_deks()}
    assert all(w.startswith(b"vault:v1:") for w in rows.values())
    with pytest.raises(DecryptionFailed):
        service.kek.unwrap(rows["pii"], dek_binding("other", 1, "encrypt"))
    dek = service.kek.unwrap(rows["pii"], dek_binding("pii", 1, "encrypt"))
    assert dek not in b"".join(rows.values())


def test_warm_cache_serves_while_vault_is_down_and_service_recovers(running, vault_double):
    service, server, client = running
    client.admin.create_key("pii", "encrypt")
    sealed = client.encrypt("pii", [b"a", b"b"], context={"f": "x"})
    vault_double.down()
    try:
        assert client.decrypt(sealed, context={"f": "x"}) == [b"a", b"b"]
        assert client.decrypt(client.encrypt("pii", [b"c"]), context=None) == [b"c"]
        with pytest.raises(UnavailableError) as info:
            client.admin.create_key("cold", "encrypt")  # needs a new wrap: nothing cached can help
        assert str(info.value) == "key provider unavailable"
        service.keyring._cache.clear()
        with pytest.raises(BatchError) as batch:
            client.decrypt(sealed, context={"f": "x"})
        assert {str(r.error) for r in batch.value.results} == {"key provider unavailable"}
        assert not server.kek_monitor.check()
        with _health(server) as stub:
            status = stub.Check(health_pb2.HealthCheckRequest(service="keysvc.kek")).status
            assert status == health_pb2.HealthCheckResponse.NOT_SERVING
            overall = stub.Check(health_pb2.HealthCheckRequest(service="")).status
            assert overall == health_pb2.HealthCheckResponse.SERVING
    finally:
        vault_double.up()
    deadline = time.monotonic() + 3.0
    while True:
        try:
            assert client.decrypt(sealed, context={"f": "x"}) == [b"a", b"b"]
            break
        except (BatchError, UnavailableError):
            assert time.monotonic() < deadline, "did not recover within 3 s of Vault coming back"
            time.sleep(0.1)
    assert server.kek_monitor.check()


def _health(server):
    import contextlib

    import grpc

    @contextlib.contextmanager
    def stub():
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield health_pb2_grpc.HealthStub(channel)

    return stub()


def test_kek_rotation_over_many_versions_keeps_everything_readable(running, vault_double):
    service, _, client = running
    ciphertexts = []
    for k in range(10):
        client.admin.create_key(f"k{k}", "encrypt")
        for _ in range(3):
            ciphertexts.append(client.encrypt(f"k{k}", [b"value %d" % len(ciphertexts)])[0])
            client.admin.rotate_key(f"k{k}")
    assert client.admin.kek_status().wrapped_by_version == {1: 40}
    status = client.admin.rotate_kek()
    assert status.current_version == 2 and dict(status.rewrapped_from) == {1: 40}
    assert dict(client.admin.kek_status().wrapped_by_version) == {2: 40}
    assert vault_double.requests_to("rewrap") == 1  # one batched call, plaintext DEKs never left Vault
    service.keyring._cache.clear()
    assert client.decrypt(ciphertexts) == [b"value %d" % i for i in range(30)]


@pytest.mark.slow
def test_kek_rotation_of_a_thousand_dek_versions(tmp_path, vault):
    settings = dev_settings(tmp_path / "data", **vault_overrides(vault, vault.create_key(derived=True)))
    service = build_service(settings)
    try:
        ring = service.keyring
        from keysvc.keys.fields import FieldCrypto
        from keysvc.keys.kek_rotation import rotate_kek
        from keysvc.store.models import Purpose

        fields = FieldCrypto(ring)
        sealed = []
        for k in range(20):
            ring.create(f"k{k}", Purpose.ENCRYPT, "test")
            for v in range(50):
                sealed.append(fields.encrypt(f"k{k}", [(b"%d-%d" % (k, v), None)])[0].ciphertext)
                if v < 49:
                    ring.rotate(f"k{k}", "test")
        report = rotate_kek(service.store, service.kek)
        assert report.rewrapped == 1000 and report.wrapped_by_version == {2: 1000}
        ring._cache.clear()
        assert ring.warm_up() == 1000
        assert [o.plaintext for o in fields.decrypt([(c, None) for c in sealed])] == [
            b"%d-%d" % (k, v) for k in range(20) for v in range(50)]
    finally:
        service.close()


def test_dev_serve_with_vault_transit_from_env(tmp_path, vault):
    key = vault.create_key(derived=True)
    env = {**os.environ, "VAULT_ADDR": vault.addr, "VAULT_TOKEN": vault.token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keysvc.cli.serve", "serve", "--dev", "--data-dir", str(tmp_path / "d"),
         "--listen", "127.0.0.1:0", "--kek-provider", "vault-transit", "--vault-key", key,
         "--vault-mount", vault.mount],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("keysvc listening on"), proc.stderr.read()
        token = (tmp_path / "d" / "dev-token").read_text().strip()
        with KeyServiceClient(line.strip().rsplit(" ", 1)[1], token=token) as client:
            client.admin.create_key("pii", "encrypt")
            assert client.decrypt(client.encrypt("pii", [b"x"])) == [b"x"]
            assert client.admin.status().kek_provider == "vault"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert vault.token not in err


def test_refuses_to_start_without_a_derived_key(tmp_path, vault):
    not_derived = vault.create_key(derived=False)
    env = {**os.environ, "VAULT_ADDR": vault.addr, "VAULT_TOKEN": vault.token}
    result = subprocess.run(
        [sys.executable, "-m", "keysvc.cli.serve", "serve", "--dev", "--data-dir", str(tmp_path / "d"),
         "--listen", "127.0.0.1:0", "--kek-provider", "vault-transit", "--vault-key", not_derived,
         "--vault-mount", vault.mount],
        capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0 and "keysvc listening" not in result.stdout
    assert "is not derived" in result.stderr and f"vault write -f {vault.mount}/keys/" in result.stderr
    missing = load_settings(None, env={}, overrides={
        "dev": True, "data_dir": str(tmp_path / "e"), **vault_overrides(vault, "no-such-key")})
    from keysvc.config import ConfigError
    with pytest.raises(ConfigError, match="vault write -f"):
        build_service(missing)
