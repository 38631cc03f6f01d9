"""VaultTransitProvider over real HTTP: the Transit double, or a real Vault for tests marked ``vault``."""

from __future__ import annotations

import base64
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hvac
import pytest

from keysvc import deadlines
from keysvc.errors import DecryptionFailed, FailedPrecondition, KekUnavailable, KeysvcError
from keysvc.kek.vault_transit import VaultTransitProvider
from tests.fakes.vault_transit import VaultTransitDouble

if TYPE_CHECKING:
    from tests.fakes.vault_fixtures import VaultTarget

pytest_plugins = ["tests.fakes.vault_fixtures"]

BINDING = b"keysvc-dek-v1|key=customer-pii|version=1|purpose=encrypt"
OTHER = b"keysvc-dek-v1|key=pan|version=1|purpose=encrypt"


class FakeTime:
    """An injected clock and sleep: sleeping advances the clock at once."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


MakeProvider = Callable[..., VaultTransitProvider]
Double = VaultTransitDouble


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_provider(vault: VaultTarget, fake_time: FakeTime) -> Iterator[MakeProvider]:
    made: list[VaultTransitProvider] = []

    def make(key: str | None = None, *, clock: Any = None, sleep: Any = None, batch_size: int = 250,
             **overrides: Any) -> VaultTransitProvider:
        settings = vault.settings(key or vault.create_key(derived=True), **overrides)
        provider = VaultTransitProvider(settings, clock=clock or fake_time, sleep=sleep or fake_time.sleep,
                                        batch_size=batch_size)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def deks(n: int) -> list[bytes]:
    return [os.urandom(32) for _ in range(n)]


# wrapping ------------------------------------------------------------------------------------------


@pytest.mark.vault
def test_round_trip_and_wrapped_format(make_provider: MakeProvider, vault: VaultTarget) -> None:
    provider = make_provider()
    provider.check()
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, BINDING)
    assert wrapped.startswith(b"vault:v1:") and wrapped.isascii()
    assert provider.kek_version(wrapped) == 1
    assert provider.unwrap(wrapped, BINDING) == dek
    if vault.double is not None:  # the binding travels as a derivation context, not associated_data
        body = next(r.body for r in vault.double.requests if r.path.startswith(f"{vault.mount}/encrypt/"))
        assert body is not None and base64.b64decode(body["context"]) == BINDING
        assert "associated_data" not in body


@pytest.mark.vault
def test_unwrap_under_another_binding_fails(make_provider: MakeProvider) -> None:
    provider = make_provider()
    wrapped = provider.wrap(os.urandom(32), BINDING)
    with pytest.raises(DecryptionFailed):
        provider.unwrap(wrapped, OTHER)


@pytest.mark.parametrize("bad", [b"", b"local:v1:AAAA", b"vault:v1:", b"vault:vx:AAAA", b"vault:v1:AA AA"])
def test_malformed_wrapped_values_fail_without_a_call(make_provider: MakeProvider, vault_double: Double,
                                                     bad: bytes) -> None:
    provider = make_provider()
    vault_double.reset_counts()
    with pytest.raises(DecryptionFailed):
        provider.unwrap(bad, BINDING)
    with pytest.raises(DecryptionFailed):
        provider.kek_version(bad)
    assert vault_double.requests_to("decrypt") == 0


@pytest.mark.vault
def test_kek_version_reads_v0_as_v1(make_provider: MakeProvider) -> None:
    assert make_provider().kek_version(b"vault:v0:AAAA") == 1


@pytest.mark.vault
def test_unwrap_many_keeps_order(make_provider: MakeProvider) -> None:
    provider = make_provider()
    values = deks(20)
    items = [(provider.wrap(dek, b"b%d" % i), b"b%d" % i) for i, dek in enumerate(values)]
    assert provider.unwrap_many(items) == values
    assert provider.unwrap_many([]) == []


def test_unwrap_many_is_one_batched_request(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider()
    values = deks(200)
    items = [(provider.wrap(dek, BINDING), BINDING) for dek in values]
    vault_double.reset_counts()
    assert provider.unwrap_many(items) == values
    assert vault_double.requests_to("decrypt") == 1
    body = vault_double.requests[-1].body
    assert body is not None and len(body["batch_input"]) == 200
    assert body["partial_failure_response_code"] == 207


def test_unwrap_many_chunks_large_batches(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider(batch_size=3)
    values = deks(7)
    items = [(provider.wrap(dek, BINDING), BINDING) for dek in values]
    vault_double.reset_counts()
    assert provider.unwrap_many(items) == values
    assert vault_double.requests_to("decrypt") == 3


@pytest.mark.vault
def test_unwrap_many_with_one_bad_item_fails_the_call(make_provider: MakeProvider) -> None:
    provider = make_provider()
    good = [(provider.wrap(dek, BINDING), BINDING) for dek in deks(3)]
    with pytest.raises(DecryptionFailed):
        provider.unwrap_many([*good, (good[0][0], OTHER)])
    with pytest.raises(DecryptionFailed):
        provider.unwrap_many([(good[0][0], OTHER)])


@pytest.mark.vault
def test_rotate_and_rewrap_many_move_values_to_the_newest_version(make_provider: MakeProvider) -> None:
    provider = make_provider()
    values = deks(5)
    items = [(provider.wrap(dek, b"b%d" % i), b"b%d" % i) for i, dek in enumerate(values)]
    assert provider.rotate() == 2
    rewrapped = provider.rewrap_many(items)
    assert all(provider.kek_version(w) == 2 and w.startswith(b"vault:v2:") for w in rewrapped)
    assert provider.unwrap_many([(w, b) for w, (_, b) in zip(rewrapped, items, strict=True)]) == values
    assert provider.unwrap(items[0][0], items[0][1]) == values[0]  # old versions still unwrap
    assert provider.kek_version(provider.wrap(values[0], BINDING)) == 2
    with pytest.raises(DecryptionFailed):
        provider.rewrap_many([(items[0][0], OTHER)])


def test_rewrap_many_never_sends_plaintext(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider(batch_size=2)
    items = [(provider.wrap(dek, BINDING), BINDING) for dek in deks(3)]
    provider.rotate()
    vault_double.reset_counts()
    provider.rewrap_many(items)
    assert vault_double.requests_to("rewrap") == 2
    assert vault_double.requests_to("decrypt") == vault_double.requests_to("encrypt") == 0


# start-up check ------------------------------------------------------------------------------------


@pytest.mark.vault
def test_check_refuses_a_key_that_is_not_derived(make_provider: MakeProvider, vault: VaultTarget) -> None:
    provider = make_provider(vault.create_key(derived=False))
    with pytest.raises(FailedPrecondition, match="not derived") as info:
        provider.check()
    assert f"vault write -f {vault.mount}/keys/<key> derived=true" in str(info.value)


@pytest.mark.vault
def test_check_refuses_a_missing_key_with_the_command_to_run(make_provider: MakeProvider,
                                                             vault: VaultTarget) -> None:
    provider = make_provider("keysvc-missing-key")
    with pytest.raises(FailedPrecondition) as info:
        provider.check()
    assert f"`vault write -f {vault.mount}/keys/keysvc-missing-key derived=true`" in str(info.value)


def test_check_names_a_missing_mount(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider("k", mount="no-such-mount")
    with pytest.raises(FailedPrecondition, match=r"vault secrets enable -path=no-such-mount transit"):
        provider.check()


def test_check_with_an_expired_token(make_provider: MakeProvider, vault_double: Double) -> None:
    token = vault_double.create_token()
    vault_double.expire_token(token)
    with pytest.raises(FailedPrecondition, match=r"Vault refused the token .*VAULT_TOKEN"):
        make_provider(token=token).check()


def test_configuration_problems_are_refused_at_start(vault: VaultTarget, tmp_path: Path) -> None:
    cases = [
        (vault.settings("k", token=""), "no Vault token"),
        (vault.settings("k", auth="ldap"), "vault.auth must be"),
        (vault.settings("k", auth="approle", role_id="r"), "vault.secret_id_file"),
        (vault.settings("k", cacert=str(tmp_path / "missing.pem")), "vault.cacert is not a file"),
        (vault.settings("k", client_cert=str(tmp_path / "c.pem")), "must be set together"),
    ]
    for settings, message in cases:
        with pytest.raises(FailedPrecondition, match=message):
            VaultTransitProvider(settings)


def test_tls_failure_at_start_is_a_clear_error(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider("k", addr=vault_double.url.replace("http:", "https:"))
    with pytest.raises(FailedPrecondition, match=r"TLS with Vault at https://127\.0\.0\.1:\d+ failed"):
        provider.check()


def test_unreadable_secret_file_is_a_clear_error(make_provider: MakeProvider, vault_double: Double,
                                                 tmp_path: Path) -> None:
    provider = make_provider("k", token="", token_file=str(tmp_path / "nope"))
    with pytest.raises(FailedPrecondition, match=r"cannot read vault\.token_file"):
        provider.check()


# outages, retries, breaker, deadlines --------------------------------------------------------------


def test_retries_transient_failures_with_backoff(make_provider: MakeProvider, vault_double: Double,
                                                 fake_time: FakeTime) -> None:
    provider = make_provider(max_retries=3, breaker_failures=10)
    wrapped = provider.wrap(b"k" * 32, BINDING)
    vault_double.reset_counts()
    vault_double.fail_with(503, n=2, path="decrypt")
    assert provider.unwrap(wrapped, BINDING) == b"k" * 32
    assert vault_double.requests_to("decrypt") == 3
    assert len(fake_time.sleeps) == 2 and all(0 < s <= 1.0 for s in fake_time.sleeps)
    vault_double.fail_with(500)
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    assert vault_double.requests_to("decrypt") == 3 + 4


def test_rotate_is_not_retried(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider()
    vault_double.fail_with(502, n=1, path="rotate")
    with pytest.raises(KekUnavailable):
        provider.rotate()
    assert vault_double.requests_to("rotate") == 1
    assert provider.rotate() == 2


def test_breaker_fails_fast_while_open_and_recovers(make_provider: MakeProvider,
                                                    vault_double: Double, fake_time: FakeTime) -> None:
    provider = make_provider(max_retries=1, breaker_failures=3, breaker_reset_seconds=1.0)
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, BINDING)
    vault_double.down()
    for _ in range(2):  # 2 attempts each: the breaker opens on the third failed attempt
        with pytest.raises(KekUnavailable):
            provider.unwrap(wrapped, BINDING)
    assert provider.health().ok is False
    vault_double.up()
    vault_double.reset_counts()
    started = time.monotonic()
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)  # open: fails without touching Vault
    assert time.monotonic() - started < 0.05
    assert vault_double.requests_to("decrypt") == 0
    assert "circuit breaker" in provider.health().detail
    fake_time.now += 1.0  # the reset period passes: one trial call goes through and closes it
    assert provider.unwrap(wrapped, BINDING) == dek
    assert provider.health().ok is True


def test_failed_trial_reopens_the_breaker(make_provider: MakeProvider, vault_double: Double,
                                          fake_time: FakeTime) -> None:
    provider = make_provider(max_retries=0, breaker_failures=1, breaker_reset_seconds=1.0)
    wrapped = provider.wrap(b"k" * 32, BINDING)
    vault_double.fail_with(500, path="decrypt")
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    fake_time.now += 1.0
    vault_double.reset_counts()
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)  # the trial fails
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)  # open again: no request
    assert vault_double.requests_to("decrypt") == 1


def test_recovers_within_seconds_of_vault_coming_back(make_provider: MakeProvider,
                                                      vault_double: Double) -> None:
    provider = make_provider(clock=time.monotonic, sleep=time.sleep, max_retries=1, breaker_failures=2,
                             breaker_reset_seconds=0.3)
    dek = os.urandom(32)
    wrapped = provider.wrap(dek, BINDING)
    vault_double.down()
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    vault_double.up()
    back = time.monotonic()
    while True:
        try:
            assert provider.unwrap(wrapped, BINDING) == dek
            break
        except KekUnavailable:
            assert time.monotonic() - back < 2.0
            time.sleep(0.05)
    assert time.monotonic() - back < 1.0


def test_slow_vault_and_short_deadline(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider(clock=time.monotonic, sleep=time.sleep, request_timeout_seconds=5.0)
    wrapped = provider.wrap(b"k" * 32, BINDING)
    vault_double.slow(3.0)
    started = time.monotonic()
    with deadlines.bounded(0.3, ceiling=30.0), pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    assert time.monotonic() - started < 0.6
    vault_double.clear_faults()


def test_sealed_vault(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider(max_retries=0)
    wrapped = provider.wrap(b"k" * 32, BINDING)
    assert provider.health().ok is True
    vault_double.seal()
    assert provider.health() == provider.health().__class__(ok=False, detail="vault sealed")
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    vault_double.unseal()
    assert provider.health().ok is True


@pytest.mark.vault
def test_health_ok(make_provider: MakeProvider) -> None:
    assert make_provider().health().ok is True


def test_health_when_vault_is_down(make_provider: MakeProvider, vault_double: Double) -> None:
    provider = make_provider()
    vault_double.down()
    assert provider.health().detail == "vault unreachable"


# authentication ------------------------------------------------------------------------------------


def test_renewable_token_is_renewed_before_its_ttl_ends(vault: VaultTarget, fake_time: FakeTime) -> None:
    with VaultTransitDouble(clock=fake_time) as double:
        token = double.create_token(ttl=60)
        client = hvac.Client(url=double.url, token=double.root_token)
        client.secrets.transit.create_key("k", derived=True)
        client.adapter.close()
        settings = vault.settings("k", addr=double.url, token=token)
        provider = VaultTransitProvider(settings, clock=fake_time, sleep=fake_time.sleep)
        try:
            wrapped = provider.wrap(b"k" * 32, BINDING)
            fake_time.now += 30
            provider.unwrap(wrapped, BINDING)
            assert double.requests_to("auth/token/renew-self") == 0
            fake_time.now += 15  # past 2/3 of the TTL
            provider.unwrap(wrapped, BINDING)
            assert double.requests_to("auth/token/renew-self") == 1
            fake_time.now += 50  # the original TTL is over; the renewed token still works
            assert provider.unwrap(wrapped, BINDING) == b"k" * 32
        finally:
            provider.close()


def test_expired_token(make_provider: MakeProvider, vault_double: Double) -> None:
    token = vault_double.create_token()
    provider = make_provider(token=token)
    wrapped = provider.wrap(b"k" * 32, BINDING)
    vault_double.expire_token(token)
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    assert provider.health().detail == "vault refused the token"


def test_token_file_is_read_again_after_a_403(make_provider: MakeProvider, vault_double: Double,
                                              tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    first = vault_double.create_token()
    token_file.write_text(first + "\n")
    provider = make_provider(token="", token_file=str(token_file))
    wrapped = provider.wrap(b"k" * 32, BINDING)
    vault_double.expire_token(first)
    token_file.write_text(vault_double.create_token())  # e.g. Vault Agent wrote a new one
    assert provider.unwrap(wrapped, BINDING) == b"k" * 32


def test_approle_login_relogin_on_403_and_before_ttl(make_provider: MakeProvider,
                                                     vault_double: Double, fake_time: FakeTime,
                                                     tmp_path: Path) -> None:
    secret = tmp_path / "secret-id"
    secret.write_text("secret-1\n")
    vault_double.enable_approle("role-1", "secret-1", token_ttl=3600)
    provider = make_provider(auth="approle", token="", role_id="role-1", secret_id_file=str(secret))
    provider.check()
    wrapped = provider.wrap(b"k" * 32, BINDING)
    assert vault_double.requests_to("auth/approle/login") == 1
    vault_double.expire_token(vault_double.tokens()[-1])
    assert provider.unwrap(wrapped, BINDING) == b"k" * 32  # 403, login again, retry
    assert vault_double.requests_to("auth/approle/login") == 2
    fake_time.now += 2500  # past 2/3 of the token TTL: log in before the call
    provider.unwrap(wrapped, BINDING)
    assert vault_double.requests_to("auth/approle/login") == 3


def test_approle_with_a_wrong_secret(make_provider: MakeProvider, vault_double: Double,
                                     tmp_path: Path) -> None:
    secret = tmp_path / "secret-id"
    secret.write_text("wrong")
    vault_double.enable_approle("role-1", "secret-1")
    provider = make_provider(auth="approle", token="", role_id="role-1", secret_id_file=str(secret))
    with pytest.raises(FailedPrecondition, match="AppRole login at auth/approle/login failed"):
        provider.check()
    with pytest.raises(KekUnavailable):
        provider.wrap(b"k" * 32, BINDING)


def test_kubernetes_login(make_provider: MakeProvider, vault_double: Double, tmp_path: Path) -> None:
    jwt = tmp_path / "token"
    jwt.write_text("sa-jwt")
    vault_double.enable_kubernetes("keysvc", "sa-jwt", mount="k8s")
    provider = make_provider(auth="kubernetes", token="", role="keysvc", jwt_file=str(jwt), auth_mount="k8s")
    provider.check()
    wrapped = provider.wrap(b"k" * 32, BINDING)
    vault_double.expire_token(vault_double.tokens()[-1])
    assert provider.unwrap(wrapped, BINDING) == b"k" * 32
    assert vault_double.requests_to("auth/k8s/login") == 2
    jwt.write_text("forged")
    vault_double.expire_token(vault_double.tokens()[-1])
    with pytest.raises(KekUnavailable):
        provider.unwrap(wrapped, BINDING)
    with pytest.raises(FailedPrecondition, match="Kubernetes login at auth/k8s/login failed for role keysvc"):
        make_provider("k", auth="kubernetes", token="", role="keysvc", jwt_file=str(jwt),
                      auth_mount="k8s").check()


def test_namespace_header(make_provider: MakeProvider, vault_double: Double, vault: VaultTarget) -> None:
    scoped = hvac.Client(url=vault.addr, token=vault.token, namespace="team-a")
    try:
        scoped.secrets.transit.create_key("ns-key", derived=True, mount_point=vault.mount)
    finally:
        scoped.adapter.close()
    provider = make_provider("ns-key", namespace="team-a")
    provider.check()
    assert provider.unwrap(provider.wrap(b"k" * 32, BINDING), BINDING) == b"k" * 32
    assert {r.namespace for r in vault_double.requests if "ns-key" in r.path} == {"team-a"}
    with pytest.raises(FailedPrecondition, match="vault write"):
        make_provider("ns-key").check()


# nothing secret in errors or logs ------------------------------------------------------------------


def _texts(exc: BaseException) -> str:
    assert exc.__cause__ is None and exc.__context__ is None  # the hvac error (raw body) is not chained
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_no_secret_in_any_exception_or_log_line(make_provider: MakeProvider, vault_double: Double,
                                                tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = vault_double.create_token()
    provider = make_provider(token=token, max_retries=1, breaker_failures=100)
    secrets = deks(3)
    wrapped = [provider.wrap(dek, BINDING) for dek in secrets]
    errors: list[KeysvcError] = []

    def collect(call: Callable[[], object]) -> None:
        with pytest.raises(KeysvcError) as info:
            call()
        errors.append(info.value)

    collect(lambda: provider.unwrap(wrapped[0], OTHER))
    # a batch where two items succeed: Vault's 400 body carries their plaintexts
    collect(lambda: provider.unwrap_many([(wrapped[0], BINDING), (wrapped[1], BINDING), (wrapped[2], OTHER)]))
    collect(lambda: provider.rewrap_many([(wrapped[0], OTHER)]))
    vault_double.fail_with(500, n=2)
    collect(lambda: provider.unwrap(wrapped[0], BINDING))
    vault_double.expire_token(token)
    collect(lambda: provider.unwrap(wrapped[1], BINDING))
    vault_double.down()
    collect(lambda: provider.wrap(secrets[0], BINDING))
    collect(lambda: make_provider("k", token=token).check())
    assert [type(e) for e in errors] == [DecryptionFailed] * 3 + [KekUnavailable] * 4
    assert all(str(e) == "key provider unavailable" for e in errors if isinstance(e, KekUnavailable))

    forbidden = [token, *(w.decode() for w in wrapped)]
    for dek in secrets:
        forbidden += [dek.hex(), base64.b64encode(dek).decode(), repr(dek)[2:-1]]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for text in [*(_texts(e) for e in errors), logged]:
        for secret in forbidden:
            assert secret not in text
