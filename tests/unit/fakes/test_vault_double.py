"""The Transit double answers as Vault documents it, driven through hvac 2.4 over real HTTP.

Tests marked ``vault`` also run against a real Vault (VAULT_ADDR + VAULT_TOKEN): the same
assertions then check that the double and Vault agree.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING

import hvac
import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.fakes.vault_transit import VaultTransitDouble

if TYPE_CHECKING:
    from tests.fakes.vault_fixtures import VaultTarget

pytest_plugins = ["tests.fakes.vault_fixtures"]

AUTH_FAILED = "cipher: message authentication failed"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encrypt(vault: VaultTarget, key: str, plaintext: bytes, **kwargs: str) -> str:
    doc = vault.client.secrets.transit.encrypt_data(key, plaintext=b64(plaintext), mount_point=vault.mount,
                                                    **kwargs)
    return str(doc["data"]["ciphertext"])


def decrypt(vault: VaultTarget, key: str, ciphertext: str, **kwargs: str) -> bytes:
    doc = vault.client.secrets.transit.decrypt_data(key, ciphertext=ciphertext, mount_point=vault.mount,
                                                    **kwargs)
    return base64.b64decode(doc["data"]["plaintext"])


def vault_error(call: object, exc_type: type[hvac.exceptions.VaultError] = hvac.exceptions.InvalidRequest,
                ) -> hvac.exceptions.VaultError:
    with pytest.raises(exc_type) as info:
        call()  # type: ignore[operator]
    return info.value


# keys ---------------------------------------------------------------------------------------------


@pytest.mark.vault
def test_create_and_read_key_body(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    data = vault.client.secrets.transit.read_key(key, mount_point=vault.mount)["data"]
    assert data["name"] == key
    assert data["type"] == "aes256-gcm96"
    assert data["derived"] is True
    assert list(data["keys"]) == ["1"] and isinstance(data["keys"]["1"], int)
    assert abs(data["keys"]["1"] - time.time()) < 120
    versions = (data["latest_version"], data["min_decryption_version"], data["min_encryption_version"])
    assert versions == (1, 1, 0)
    assert data["deletion_allowed"] is False and data["exportable"] is False
    assert data["supports_encryption"] and data["supports_decryption"] and data["supports_derivation"]


@pytest.mark.vault
def test_missing_key_is_404_with_empty_errors(vault: VaultTarget) -> None:
    err = vault_error(lambda: vault.client.secrets.transit.read_key("no-such-key", mount_point=vault.mount),
                      hvac.exceptions.InvalidPath)
    assert err.json == {"errors": []}


@pytest.mark.vault
def test_rotate_missing_key_and_decrypt_missing_key(vault: VaultTarget) -> None:
    transit = vault.client.secrets.transit
    err = vault_error(lambda: transit.rotate_key("no-such-key", mount_point=vault.mount))
    assert err.errors == ["key not found"]
    err = vault_error(lambda: transit.decrypt_data("no-such-key", ciphertext="vault:v1:AAAA",
                                                   mount_point=vault.mount))
    assert err.errors == ["encryption key not found"]


@pytest.mark.vault
def test_rotate_and_config_return_the_key_body(vault: VaultTarget) -> None:
    key = vault.create_key()
    transit = vault.client.secrets.transit
    rotated = transit.rotate_key(key, mount_point=vault.mount)
    assert rotated["data"]["latest_version"] == 2 and set(rotated["data"]["keys"]) == {"1", "2"}
    configured = transit.update_key_configuration(key, min_decryption_version=2, mount_point=vault.mount)
    assert configured["data"]["min_decryption_version"] == 2
    err = vault_error(lambda: transit.update_key_configuration(key, min_decryption_version=5,
                                                               mount_point=vault.mount))
    assert err.errors == ["cannot set min decryption version of 5, latest key version is 2"]


@pytest.mark.vault
def test_min_decryption_version_refuses_older_ciphertexts(vault: VaultTarget) -> None:
    key = vault.create_key(derived=False)
    old = encrypt(vault, key, b"old")
    vault.client.secrets.transit.rotate_key(key, mount_point=vault.mount)
    new = encrypt(vault, key, b"new")
    assert new.startswith("vault:v2:")
    vault.client.secrets.transit.update_key_configuration(key, min_decryption_version=2,
                                                          mount_point=vault.mount)
    assert vault_error(lambda: decrypt(vault, key, old)).errors == [
        "ciphertext or signature version is disallowed by policy (too old)"]
    assert decrypt(vault, key, new) == b"new"


@pytest.mark.vault
def test_delete_needs_deletion_allowed(vault: VaultTarget) -> None:
    transit = vault.client.secrets.transit
    name = f"{vault.create_key()}"
    err = vault_error(lambda: transit.delete_key(name, mount_point=vault.mount))
    assert err.errors == [f"error deleting policy {name}: deletion is not allowed for this key"]
    transit.update_key_configuration(name, deletion_allowed=True, mount_point=vault.mount)
    assert transit.delete_key(name, mount_point=vault.mount).status_code == 204
    vault.created.remove(name)


# encrypt / decrypt ---------------------------------------------------------------------------------


@pytest.mark.vault
def test_ciphertext_shape_and_round_trip(vault: VaultTarget) -> None:
    key = vault.create_key(derived=False)
    ciphertext = encrypt(vault, key, b"4111111111111111")
    prefix, body = ciphertext.rsplit(":", 1)
    assert prefix == "vault:v1"
    assert len(base64.b64decode(body)) == 12 + 16 + 16  # nonce || ct || tag
    assert decrypt(vault, key, ciphertext) == b"4111111111111111"
    assert decrypt(vault, key, ciphertext.replace("vault:v1:", "vault:v0:")) == b"4111111111111111"


@pytest.mark.vault
def test_derived_key_binds_the_context(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    ciphertext = encrypt(vault, key, b"dek", context=b64(b"key=a"))
    assert decrypt(vault, key, ciphertext, context=b64(b"key=a")) == b"dek"
    assert vault_error(lambda: decrypt(vault, key, ciphertext, context=b64(b"key=b"))).errors == [AUTH_FAILED]
    missing = vault_error(lambda: decrypt(vault, key, ciphertext))
    assert missing.errors[0].startswith("missing 'context' for key derivation;")


def test_derivation_is_hkdf_sha256_of_the_version_key(vault_double: VaultTransitDouble,
                                                      vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    ciphertext = encrypt(vault, key, b"dek", context=b64(b"ctx"))
    raw = vault_double._keys[("", vault.mount)][key].versions[1]
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"ctx").derive(raw)
    sealed = base64.b64decode(ciphertext.split(":", 2)[2])
    assert AESGCM(derived).decrypt(sealed[:12], sealed[12:], None) == b"dek"


@pytest.mark.vault
def test_convergent_encryption_is_deterministic_per_context(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True, convergent_encryption=True)
    first = encrypt(vault, key, b"same", context=b64(b"c1"))
    assert encrypt(vault, key, b"same", context=b64(b"c1")) == first
    assert encrypt(vault, key, b"same", context=b64(b"c2")) != first
    assert decrypt(vault, key, first, context=b64(b"c1")) == b"same"


@pytest.mark.vault
def test_associated_data_is_authenticated(vault: VaultTarget) -> None:
    key = vault.create_key(derived=False)
    ciphertext = encrypt(vault, key, b"pan", associated_data=b64(b"row-1"))
    assert decrypt(vault, key, ciphertext, associated_data=b64(b"row-1")) == b"pan"
    assert vault_error(lambda: decrypt(vault, key, ciphertext, associated_data=b64(b"row-2"))).errors == [
        AUTH_FAILED]
    assert vault_error(lambda: decrypt(vault, key, ciphertext)).errors == [AUTH_FAILED]


@pytest.mark.vault
@pytest.mark.parametrize(("ciphertext", "message"), [
    ("AAAA", "invalid ciphertext: no prefix"),
    ("vault:v1", "invalid ciphertext: wrong number of fields"),
    ("vault:vx:AAAA", "invalid ciphertext: version number could not be decoded"),
    ("vault:v9:AAAA", "invalid ciphertext: version is too new"),
    ("vault:v1:%%%%", "invalid ciphertext: could not decode base64"),
    ("vault:v1:AAAA", "invalid ciphertext length"),
    ("vault:v1:" + b64(bytes(40)), AUTH_FAILED),
])
def test_decrypt_errors(vault: VaultTarget, ciphertext: str, message: str) -> None:
    key = vault.create_key(derived=False)
    assert vault_error(lambda: decrypt(vault, key, ciphertext)).errors == [message]


@pytest.mark.vault
def test_encrypt_errors(vault: VaultTarget) -> None:
    key = vault.create_key(derived=False)
    transit = vault.client.secrets.transit
    err = vault_error(lambda: transit.encrypt_data(key, plaintext="ab$d", mount_point=vault.mount))
    assert err.errors == ["illegal base64 data at input byte 2"]
    err = vault_error(lambda: transit.encrypt_data(key, plaintext=b64(b"x"), key_version=3,
                                                   mount_point=vault.mount))
    assert err.errors == ["requested version for encryption is higher than the latest key version"]


@pytest.mark.vault
def test_encrypt_to_a_missing_key_creates_it(vault: VaultTarget) -> None:
    name = f"keysvc-test-upsert-{time.time_ns()}"
    vault.created.append(name)
    ciphertext = encrypt(vault, name, b"x")
    assert decrypt(vault, name, ciphertext) == b"x"
    assert vault.client.secrets.transit.read_key(name, mount_point=vault.mount)["data"]["derived"] is False


# batches -------------------------------------------------------------------------------------------


@pytest.mark.vault
def test_decrypt_batch_with_a_bad_item_is_400_with_the_full_body(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    good = encrypt(vault, key, b"one", context=b64(b"a"))
    batch = [{"ciphertext": good, "context": b64(b"a"), "reference": "r1"},
             {"ciphertext": good, "context": b64(b"b"), "reference": "r2"}]
    err = vault_error(lambda: vault.client.secrets.transit.decrypt_data(key, batch_input=batch,
                                                                        mount_point=vault.mount))
    assert err.errors is None and "errors" not in err.json
    results = err.json["data"]["batch_results"]
    assert base64.b64decode(results[0]["plaintext"]) == b"one" and results[0]["reference"] == "r1"
    assert results[1]["error"] == AUTH_FAILED and results[1]["reference"] == "r2"


@pytest.mark.vault
def test_partial_failure_response_code_replaces_the_400(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    good = encrypt(vault, key, b"one", context=b64(b"a"))
    batch = [{"ciphertext": good, "context": b64(b"a")}, {"ciphertext": good, "context": b64(b"b")}]
    body = {"batch_input": batch, "partial_failure_response_code": 207}
    response = vault.client.adapter.post(f"/v1/{vault.mount}/decrypt/{key}", json=body)
    assert response.status_code == 207
    assert [("error" in r) for r in response.json()["data"]["batch_results"]] == [False, True]
    body["batch_input"] = batch[1:]  # nothing succeeded: still 400
    err = vault_error(lambda: vault.client.adapter.post(f"/v1/{vault.mount}/decrypt/{key}", json=body))
    assert err.json["data"]["batch_results"][0]["error"] == AUTH_FAILED


@pytest.mark.vault
def test_encrypt_batch_keeps_order_and_references(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    batch = [{"plaintext": b64(bytes([i])), "context": b64(b"c"), "reference": str(i)} for i in range(5)]
    results = vault.client.secrets.transit.encrypt_data(key, batch_input=batch,
                                                        mount_point=vault.mount)["data"]["batch_results"]
    assert [r["reference"] for r in results] == ["0", "1", "2", "3", "4"]
    assert all(r["key_version"] == 1 and r["ciphertext"].startswith("vault:v1:") for r in results)


@pytest.mark.vault
def test_batch_request_level_errors(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    transit = vault.client.secrets.transit
    mixed = [{"plaintext": b64(b"a"), "context": b64(b"c")}, {"plaintext": b64(b"b")}]
    err = vault_error(lambda: transit.encrypt_data(key, batch_input=mixed, mount_point=vault.mount))
    assert err.errors == ["context should be set either in all the request blocks or in none"]
    err = vault_error(lambda: transit.encrypt_data(key, batch_input=[], mount_point=vault.mount))
    assert err.errors == ["missing batch input to process"]


@pytest.mark.vault
def test_rewrap_moves_to_the_latest_version_and_batches_return_200(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    transit = vault.client.secrets.transit
    ciphertext = encrypt(vault, key, b"dek", context=b64(b"c"))
    transit.rotate_key(key, mount_point=vault.mount)
    batch = [{"ciphertext": ciphertext, "context": b64(b"c")},
             {"ciphertext": ciphertext, "context": b64(b"x")}]
    results = transit.rewrap_data(key, ciphertext=None, batch_input=batch,
                                  mount_point=vault.mount)["data"]["batch_results"]
    assert results[0]["ciphertext"].startswith("vault:v2:") and results[0]["key_version"] == 2
    assert results[1]["error"] == AUTH_FAILED
    assert decrypt(vault, key, results[0]["ciphertext"], context=b64(b"c")) == b"dek"


@pytest.mark.vault
def test_rewrap_cannot_rewrap_ciphertexts_made_with_associated_data(vault: VaultTarget) -> None:
    """hashicorp/vault#29532, #31791: rewrap has no associated_data, so such ciphertexts never rewrap."""
    key = vault.create_key(derived=False)
    ciphertext = encrypt(vault, key, b"dek", associated_data=b64(b"binding"))
    transit = vault.client.secrets.transit
    err = vault_error(lambda: transit.rewrap_data(key, ciphertext=ciphertext, mount_point=vault.mount))
    assert err.errors == [AUTH_FAILED]
    body = {"ciphertext": ciphertext, "associated_data": b64(b"binding")}  # not a rewrap parameter
    err = vault_error(lambda: vault.client.adapter.post(f"/v1/{vault.mount}/rewrap/{key}", json=body))
    assert err.errors == [AUTH_FAILED]


@pytest.mark.vault
def test_datakey_plaintext_and_wrapped(vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    transit = vault.client.secrets.transit
    data = transit.generate_data_key(key, key_type="plaintext", context=b64(b"c"), bits=128,
                                     mount_point=vault.mount)["data"]
    assert len(base64.b64decode(data["plaintext"])) == 16
    assert decrypt(vault, key, data["ciphertext"], context=b64(b"c")) == base64.b64decode(data["plaintext"])
    wrapped = transit.generate_data_key(key, key_type="wrapped", context=b64(b"c"),
                                        mount_point=vault.mount)["data"]
    assert "plaintext" not in wrapped
    assert len(decrypt(vault, key, wrapped["ciphertext"], context=b64(b"c"))) == 32


# health, tokens, auth ------------------------------------------------------------------------------


@pytest.mark.vault
def test_health_and_token_required(vault: VaultTarget) -> None:
    health = vault.client.sys.read_health_status(method="GET")
    assert health["initialized"] is True and health["sealed"] is False
    anonymous = hvac.Client(url=vault.addr, token="")
    try:
        err = vault_error(lambda: anonymous.secrets.transit.list_keys(mount_point=vault.mount),
                          hvac.exceptions.Forbidden)
        assert err.errors == ["permission denied"]
    finally:
        anonymous.adapter.close()


def test_sealed_vault_answers_503(vault_double: VaultTransitDouble, vault: VaultTarget) -> None:
    key = vault.create_key()
    vault_double.seal()
    response = vault.client.sys.read_health_status(method="GET")
    assert response.status_code == 503 and response.json()["sealed"] is True
    err = vault_error(lambda: vault.client.secrets.transit.read_key(key, mount_point=vault.mount),
                      hvac.exceptions.VaultDown)
    assert err.errors == ["Vault is sealed"]
    vault_double.unseal()
    assert vault.client.secrets.transit.read_key(key, mount_point=vault.mount)["data"]["name"] == key


def test_token_ttl_renewal_and_expiry() -> None:
    now = [1_700_000_000.0]
    with VaultTransitDouble(clock=lambda: now[0]) as double:
        token = double.create_token(ttl=60, max_ttl=100)
        client = hvac.Client(url=double.url, token=token)
        try:
            assert client.auth.token.lookup_self()["data"]["ttl"] == 60
            now[0] += 50
            assert client.auth.token.lookup_self()["data"]["ttl"] == 10
            renewed = client.auth.token.renew_self()
            assert renewed["auth"]["lease_duration"] == 50 and renewed["warnings"]  # capped by max_ttl
            now[0] += 51
            err = vault_error(client.auth.token.lookup_self, hvac.exceptions.Forbidden)
            assert err.errors == ["permission denied"]
            root = hvac.Client(url=double.url, token=double.root_token)
            try:
                assert vault_error(root.auth.token.renew_self).errors == ["lease is not renewable"]
                assert root.auth.token.lookup_self()["data"]["ttl"] == 0
            finally:
                root.adapter.close()
        finally:
            client.adapter.close()


def test_expire_token(vault_double: VaultTransitDouble, vault: VaultTarget) -> None:
    token = vault_double.create_token()
    client = hvac.Client(url=vault.addr, token=token)
    try:
        assert client.auth.token.lookup_self()["data"]["id"] == token
        vault_double.expire_token(token)
        vault_error(client.auth.token.lookup_self, hvac.exceptions.Forbidden)
    finally:
        client.adapter.close()


def test_approle_and_kubernetes_login(vault_double: VaultTransitDouble, vault: VaultTarget) -> None:
    vault_double.enable_approle("role-1", "secret-1", token_ttl=120)
    vault_double.enable_kubernetes("keysvc", "jwt-1")
    client = hvac.Client(url=vault.addr, token="")
    try:
        auth = client.auth.approle.login("role-1", "secret-1")["auth"]
        assert auth["lease_duration"] == 120 and client.token == auth["client_token"]
        assert client.auth.token.lookup_self()["data"]["meta"] == {"role_name": "keysvc"}
        assert vault_error(lambda: client.auth.approle.login("role-1", "wrong")).errors == [
            "invalid role or secret ID"]
        client.auth.kubernetes.login("keysvc", "jwt-1")
        assert client.auth.token.lookup_self()["data"]["policies"] == ["keysvc"]
        assert vault_error(lambda: client.auth.kubernetes.login("other", "jwt-1")).errors == [
            'invalid role name "other"']
        vault_error(lambda: client.auth.kubernetes.login("keysvc", "forged"), hvac.exceptions.Forbidden)
    finally:
        client.adapter.close()


def test_namespaces_keep_keys_apart(vault_double: VaultTransitDouble, vault: VaultTarget) -> None:
    scoped = hvac.Client(url=vault.addr, token=vault.token, namespace="team-a")
    try:
        scoped.secrets.transit.create_key("shared-name", derived=True)
        assert scoped.secrets.transit.read_key("shared-name")["data"]["derived"] is True
        vault_error(lambda: vault.client.secrets.transit.read_key("shared-name"), hvac.exceptions.InvalidPath)
        assert vault_double.requests[-1].namespace == ""
    finally:
        scoped.adapter.close()


# fault injection -----------------------------------------------------------------------------------


def test_down_refuses_connections_and_up_listens_on_the_same_port(vault_double: VaultTransitDouble,
                                                                    vault: VaultTarget) -> None:
    key = vault.create_key()
    transit = vault.client.secrets.transit
    transit.read_key(key, mount_point=vault.mount)  # a pooled keep-alive connection exists now
    vault_double.down()
    with pytest.raises(requests.exceptions.ConnectionError):
        transit.read_key(key, mount_point=vault.mount)
    vault_double.up()
    assert vault_double.url == vault.addr
    assert transit.read_key(key, mount_point=vault.mount)["data"]["name"] == key


def test_slow_and_fail_with(vault_double: VaultTransitDouble, vault: VaultTarget) -> None:
    key = vault.create_key()
    vault_double.slow(1.0)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        vault.client.adapter.get(f"/v1/{vault.mount}/keys/{key}", timeout=0.1)
    assert time.monotonic() - started < 0.5
    vault_double.clear_faults()
    vault_double.fail_with(500, n=2, path="keys")
    for _ in range(2):
        vault_error(lambda: vault.client.secrets.transit.read_key(key, mount_point=vault.mount),
                    hvac.exceptions.InternalServerError)
    assert vault.client.secrets.transit.read_key(key, mount_point=vault.mount)["data"]["name"] == key


def test_requests_are_counted_per_path(vault_double: VaultTransitDouble, vault: VaultTarget) -> None:
    key = vault.create_key(derived=True)
    vault_double.reset_counts()
    ciphertext = encrypt(vault, key, b"x", context=b64(b"c"))
    decrypt(vault, key, ciphertext, context=b64(b"c"))
    decrypt(vault, key, ciphertext, context=b64(b"c"))
    assert vault_double.requests_to("decrypt") == 2
    assert vault_double.requests_to("encrypt") == 1
    assert vault_double.requests_to(f"{vault.mount}/decrypt/{key}") == 2
    assert [r.status for r in vault_double.requests] == [200, 200, 200]
