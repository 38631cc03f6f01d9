"""Policy evaluation, tokens file reload and TOTP, without a server."""

from __future__ import annotations

import hashlib
import os
import tomllib

import pytest

from keysvc.access import totp
from keysvc.access.identity import Authenticator
from keysvc.access.policy import PolicyError, PolicySource, Quotas, parse_policy
from keysvc.errors import Unauthenticated

DOC = """
[principals]
desktop = ["desktop"]
"spiffe://cc/ns/ivr/*" = ["ivr"]

[[roles.desktop.rules]]
keys = ["pan"]
operations = ["detokenize"]

[[roles.desktop.rules]]
keys = ["p*"]
operations = ["detokenize"]
reveal = "full"

[[roles.ivr.rules]]
keys = ["pan"]
operations = ["tokenize", "redact"]
quota_per_minute = 10

[[roles.ivr.rules]]
keys = ["secret-*"]
operations = ["detokenize"]
reveal = "none"
"""


def test_first_matching_rule_decides_and_default_reveal_is_masked():
    policy = parse_policy(tomllib.loads(DOC))
    d = policy.decide("desktop", "detokenize", "pan")
    assert d.allowed and d.rule.index == 0 and d.reveal == "masked"
    d = policy.decide("desktop", "detokenize", "phone")
    assert d.allowed and d.rule.index == 1 and d.reveal == "full"
    assert not policy.decide("desktop", "decrypt", "pan").allowed
    assert not policy.decide("nobody", "encrypt", "pan").allowed


def test_principal_globs_reveal_none_and_keyless_calls():
    policy = parse_policy(tomllib.loads(DOC))
    assert policy.decide("spiffe://cc/ns/ivr/sa/a", "tokenize", "pan").allowed
    assert not policy.decide("spiffe://cc/ns/ivr/sa/a", "detokenize", "pan").allowed
    d = policy.decide("spiffe://cc/ns/ivr/sa/a", "detokenize", "secret-x")
    assert not d.allowed and "reveal = none" in d.reason
    # redact names no key: only a "*" glob matches the empty key name
    assert not policy.decide("spiffe://cc/ns/ivr/sa/a", "redact", "").allowed


@pytest.mark.parametrize(
    "bad",
    [
        '[[roles.r.rules]]\noperations = ["decrypt"]\nreveal = "some"',
        '[[roles.r.rules]]\noperations = ["launch-missiles"]',
        '[[roles.r.rules]]\noperations = ["decrypt"]\nquota_per_minute = -1',
        '[[roles.r.rules]]\noperations = ["decrypt"]\ncolour = "red"',
        '[principals]\na = ["undefined"]',
        "[extra]\nx = 1",
    ],
)
def test_malformed_policies_are_refused(bad):
    with pytest.raises(PolicyError):
        parse_policy(tomllib.loads(bad))


def test_policy_file_reloads_and_a_broken_edit_keeps_the_old_policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(DOC)
    source = PolicySource(str(path), check_seconds=0)
    assert not source.current().decide("desktop", "decrypt", "pan").allowed
    path.write_text(DOC + '\n[[roles.desktop.rules]]\noperations = ["decrypt"]\n')
    assert source.current().decide("desktop", "decrypt", "pan").allowed
    path.write_text("this is [not toml")
    assert source.current().decide("desktop", "decrypt", "pan").allowed


def test_quota_counts_items_per_minute():
    now = [0.0]
    quotas = Quotas(clock=lambda: now[0])
    rule = parse_policy(tomllib.loads(DOC)).roles["ivr"][0]
    assert quotas.take("ivr", rule, 6) and quotas.take("ivr", rule, 4)
    assert not quotas.take("ivr", rule, 1)
    now[0] = 61.0
    assert quotas.take("ivr", rule, 10)


def _tokens_file(path, entries):
    path.write_text(
        "".join(
            f'[[tokens]]\nprincipal = "{p}"\nsha256 = "{hashlib.sha256(t.encode()).hexdigest()}"\n'
            + (f'expires_at = "{e}"\n' if e else "")
            for p, t, e in entries
        )
    )


def test_tokens_file_hashes_expiry_and_reload(tmp_path):
    path = tmp_path / "tokens.toml"
    _tokens_file(path, [("billing", "t1", ""), ("old", "t2", "2020-01-01T00:00:00+00:00")])
    auth = Authenticator(str(path), check_seconds=0)
    assert auth.authenticate({"authorization": "Bearer t1"}).name == "billing"
    for header in ("Bearer t2", "Bearer nope", "Basic t1", "Bearer "):
        with pytest.raises(Unauthenticated):
            auth.authenticate({"authorization": header})
    with pytest.raises(Unauthenticated):
        auth.authenticate({})
    _tokens_file(path, [("billing2", "t3", "")])
    os.utime(path, ns=(1, 1))  # a different mtime even within the same clock tick
    assert auth.authenticate({"authorization": "Bearer t3"}).name == "billing2"
    with pytest.raises(Unauthenticated):
        auth.authenticate({"authorization": "Bearer t1"})


def test_totp_window_and_format():
    secret = totp.new_secret()
    now = 1_900_000_015.0
    code = totp.code_at(secret, now)
    step = int(now // 30)
    assert totp.verify(secret, code, now) == step
    assert totp.verify(secret, code, now + 30) == step  # one step of skew
    assert totp.verify(secret, code, now + 61) is None
    assert totp.verify(secret, "12345", now) is None and totp.verify(secret, "abcdef", now) is None
    uri = totp.provisioning_uri(secret, "alice")
    assert uri.startswith("otpauth://totp/keysvc%3Aalice?secret=") and "period=30" in uri


def test_rfc6238_vector():
    # RFC 6238 appendix B, SHA-1, T = 59 s -> 94287082 (8 digits); the 6-digit code is the last six
    secret = b"12345678901234567890"
    assert totp.code_at(secret, 59) == "287082"
