"""Tokenize / Detokenize / Retokenize / Redact through a real server and the real client."""

import random

import pytest

from keysvc.tokens.luhn import residue
from keysvc_client import (
    BatchError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)


def luhn_valid(digits):
    return residue(digits) == 0


def cards(n, seed=3):
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        body = "411111" + "".join(rng.choice("0123456789") for _ in range(9))
        for check in "0123456789":
            if luhn_valid(body + check):
                out.append(body + check)
                break
    return out


def test_ten_thousand_pans_round_trip_in_batches(client):
    client.admin.create_key("pan", "fpe", format="pan")
    values = cards(10_000)
    tokens = []
    for start in range(0, 10_000, 1000):
        tokens += client.tokenize("pan", values[start : start + 1000])
    assert all(
        len(t) == 16 and t[-4:] == v[-4:] and not luhn_valid(t) for t, v in zip(tokens, values, strict=True)
    )
    assert len(set(tokens)) == len(set(values))
    revealed = []
    for start in range(0, 10_000, 1000):
        revealed += client.detokenize("pan", tokens[start : start + 1000], purpose="chargeback")
    assert revealed == values


def test_pan_tokens_from_before_three_rotations_still_detokenize(client):
    client.admin.create_key("pan", "fpe", format="pan")
    batches = []
    for _ in range(4):
        values = cards(50, seed=len(batches))
        batches.append((values, client.tokenize("pan", values)))
        client.admin.rotate_key("pan")
    for values, tokens in batches:  # the Luhn residue carries the version: no version needed
        assert client.detokenize("pan", tokens, purpose="audit") == values


def test_digits_tokens_need_their_version_after_rotation_never_a_wrong_value(client):
    client.admin.create_key("acct", "fpe", format="digits")
    values = ["12345678", "87654321"]
    issued = client.tokenize_versioned("acct", values)
    for _ in range(3):
        client.admin.rotate_key("acct")
    with pytest.raises(BatchError) as info:
        client.detokenize("acct", [t.token for t in issued], purpose="billing")
    assert all(isinstance(r.error, FailedPreconditionError) for r in info.value.results)
    assert (
        client.detokenize(
            "acct", [t.token for t in issued], purpose="billing", key_versions=[t.key_version for t in issued]
        )
        == values
    )
    moved = client.retokenize("acct", issued)
    assert {t.key_version for t in moved} == {4}
    assert (
        client.detokenize(
            "acct", [t.token for t in moved], purpose="billing", key_versions=[t.key_version for t in moved]
        )
        == values
    )


def test_masked_reveal_tweaks_and_errors(client):
    client.admin.create_key("pan", "fpe", format="pan")
    (token,) = client.tokenize("pan", ["4111111111111111"], tweak=b"tenant-a")
    assert client.detokenize("pan", [token], purpose="support", tweak=b"tenant-a", masked=True) == [
        "************1111"
    ]
    assert client.detokenize("pan", [token], purpose="support", tweak=b"tenant-a") == ["4111111111111111"]
    assert client.detokenize("pan", [token], purpose="support", tweak=b"tenant-b") != ["4111111111111111"]
    with pytest.raises(InvalidArgumentError, match="purpose"):
        client.detokenize("pan", [token], purpose=" ")
    with pytest.raises(BatchError) as info:
        client.tokenize("pan", ["4111111111111111", "4111111111111112", "abc"])
    assert [r.ok for r in info.value.results] == [True, False, False]
    assert "4111111111111112" not in str(info.value.results[1].error)
    with pytest.raises(FailedPreconditionError):
        client.tokenize("nope" if False else _encrypt_key(client), ["4111111111111111"])
    with pytest.raises(NotFoundError):
        client.tokenize("missing", ["1"])


def _encrypt_key(client):
    client.admin.create_key("enc", "encrypt")
    return "enc"


def test_vaulted_tokens_convergent_ttl_and_rotation(client):
    client.admin.create_key("ssn", "vault-token", format="ssn", format_options={"convergent": "true"})
    values = ["123-45-6789", "234-56-7890"]
    tokens = client.tokenize("ssn", values)
    assert all(t.startswith("9") and len(t) == 11 for t in tokens)
    assert client.tokenize("ssn", values) == tokens  # convergent
    client.admin.rotate_key("ssn")
    assert client.detokenize("ssn", tokens, purpose="kyc") == values
    assert client.detokenize("ssn", tokens, purpose="kyc", masked=True) == ["***-**-6789", "***-**-7890"]
    with pytest.raises(BatchError) as info:
        client.detokenize("ssn", ["900-00-0000"], purpose="kyc")
    assert isinstance(info.value.results[0].error, NotFoundError)


def test_vaulted_random_tokens_are_unique(client):
    client.admin.create_key("phone", "vault-token", format="digits")
    tokens = client.tokenize("phone", ["4155552671"] * 200)
    assert len(set(tokens)) == 200
    assert set(client.detokenize("phone", tokens, purpose="callback")) == {"4155552671"}


def test_redact_text_and_words(client):
    text = "my card is 4111 1111 1111 1111 and my social is 123-45-6789, email jo@example.com"
    redacted = client.redact(text)
    assert "4111" not in redacted.text and "6789" not in redacted.text
    assert {s.kind for s in redacted.spans} >= {"pan", "ssn", "email"}
    for span in redacted.spans:
        assert 0 <= span.start < span.end <= len(text)
    spoken = "the number is four " + "one " * 15 + "thanks"
    words = [(w, i * 300, i * 300 + 250) for i, w in enumerate(spoken.split())]
    result = client.redact_words(words)
    (pan,) = [s for s in result.spans if s.kind == "pan"]
    assert (pan.word_start, pan.word_end) == (3, 19)
    assert (pan.start_ms, pan.end_ms) == (900, 18 * 300 + 250)
    assert len(result.words) == len(words)


def test_a_tampered_pan_token_never_detokenizes_to_the_value(client):
    client.admin.create_key("pan", "fpe", format="pan")
    (token,) = client.tokenize("pan", ["4111111111111111"])
    tampered = token[:-6] + str((int(token[-6]) + 1) % 10) + token[-5:]
    try:
        out = client.detokenize("pan", [tampered], purpose="x")
    except BatchError as exc:
        out = [type(exc.results[0].error).__name__]
    assert out != ["4111111111111111"]
