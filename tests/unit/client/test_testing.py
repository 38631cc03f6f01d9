"""The in-process fake: real envelope format v1, the client's typed errors, simple tokens and redaction."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from keysvc_client import (
    AlreadyExistsError,
    BatchError,
    DecryptionError,
    FailedPreconditionError,
    InvalidArgumentError,
    KeyVersionDestroyedError,
    NotFoundError,
    Token,
)
from keysvc_client._pb.keysvc.v1 import admin_pb2
from keysvc_client.stream import decrypt_stream, encrypt_stream
from keysvc_client.testing import FakeCall, FakeKeyService

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "envelope_v1.json").read_text())["vectors"]


@pytest.fixture
def ks() -> FakeKeyService:
    return FakeKeyService(keys={"pii": "encrypt", "digits": ("fpe", "digits")})


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_fake_opens_the_published_vectors(vector):
    ks = FakeKeyService()
    ks.import_version(vector["key"], vector["version"], bytes.fromhex(vector["dek"]))
    ciphertext = bytes.fromhex(vector["ciphertext"])
    assert ks.decrypt([ciphertext], context=vector["context"]) == [vector["plaintext"].encode()]
    # and its own ciphertexts have the vector's header and length
    mine = ks.encrypt(vector["key"], [vector["plaintext"].encode()], context=vector["context"])[0]
    header = bytes.fromhex(vector["aad"])[: len(ciphertext) - len(vector["plaintext"].encode()) - 28]
    assert mine[: len(header)] == header and len(mine) == len(ciphertext)
    with pytest.raises(BatchError) as info:
        ks.decrypt([ciphertext], context={**vector["context"], "extra": "x"})
    assert isinstance(info.value.results[0].error, DecryptionError)


def test_ciphertext_layout_is_format_v1(ks):
    ct = ks.encrypt("pii", [b"123-45-6789"], context={"field": "ssn"})[0]
    assert ct[:3] == bytes([1, 1, 3]) and ct[3:6] == b"pii" and ct[6:10] == (1).to_bytes(4, "big")
    assert len(ct) == 35 + len("pii") + len(b"123-45-6789")
    dk = ks.generate_data_key("pii")
    assert dk.encrypted[:2] == bytes([1, 2]) and dk.key_version == 1 and len(dk.plaintext) == 32


def test_batch_errors_keep_the_other_items(ks):
    cts = ks.encrypt("pii", [b"one", b"two", b"three"], context={"f": "x"})
    tampered = bytearray(cts[1])
    tampered[-1] ^= 1
    with pytest.raises(BatchError) as info:
        ks.decrypt([cts[0], bytes(tampered), cts[2], b"garbage"], context={"f": "x"})
    results = info.value.results
    assert [r.value for r in results] == [b"one", None, b"three", None]
    assert {str(r.error) for r in results if r.error} == {"decryption failed"}
    assert all(isinstance(r.error, DecryptionError) for r in results if r.error)
    assert [i for i, _ in info.value.errors] == [1, 3]


def test_per_item_contexts(ks):
    contexts = [{"field": "a"}, {"field": "b"}]
    cts = ks.encrypt("pii", [b"a", b"b"], contexts=contexts)
    assert ks.decrypt(cts, contexts=contexts) == [b"a", b"b"]
    with pytest.raises(BatchError):
        ks.decrypt(cts, contexts=contexts[::-1])
    with pytest.raises(ValueError):
        ks.decrypt(cts, context={"field": "a"}, contexts=contexts)
    with pytest.raises(ValueError):
        ks.encrypt("pii", [b"a"], contexts=contexts)


def test_key_errors(ks):
    with pytest.raises(NotFoundError):
        ks.encrypt("nope", [b"x"])
    with pytest.raises(FailedPreconditionError, match="key purpose is fpe, not encrypt"):
        ks.encrypt("digits", [b"123456"])
    with pytest.raises(FailedPreconditionError, match="key purpose is encrypt"):
        ks.tokenize("pii", ["123456"])
    with pytest.raises(InvalidArgumentError, match="no items"):
        ks.encrypt("pii", [])
    with pytest.raises(InvalidArgumentError):
        ks.encrypt("pii", [b"x"] * 10_001)
    with pytest.raises(AlreadyExistsError):
        ks.create_key("pii", "encrypt")
    with pytest.raises(InvalidArgumentError):
        ks.create_key("bad name!", "encrypt")
    with pytest.raises(InvalidArgumentError):
        ks.create_key("fmt", "encrypt", format="digits")
    with pytest.raises(InvalidArgumentError):
        ks.create_key("nofmt", "fpe")
    with pytest.raises(InvalidArgumentError):
        ks.create_key("weird", "fpe", format="klingon")
    with pytest.raises(ValueError):
        ks.create_key("x", "sign")
    with pytest.raises(NotFoundError):
        ks.get_key("nope")


def test_rotation_rewrap_and_destroy(ks):
    old = ks.encrypt("pii", [b"a"], context={"f": "1"})
    key = ks.admin.rotate_key("pii")
    assert key.primary_version == 2
    assert [v.state for v in key.versions] == [
        admin_pb2.VERSION_STATE_ACTIVE,
        admin_pb2.VERSION_STATE_PRIMARY,
    ]
    new = ks.rewrap(old, context={"f": "1"})
    assert new[0][6:10] == (2).to_bytes(4, "big")
    assert ks.decrypt(old + new, context={"f": "1"}) == [b"a", b"a"]
    with pytest.raises(FailedPreconditionError):
        ks.destroy_version("pii", 2)
    ks.destroy_version("pii", 1)
    with pytest.raises(BatchError) as info:
        ks.decrypt(old, context={"f": "1"})
    error = info.value.results[0].error
    assert isinstance(error, KeyVersionDestroyedError) and str(error) == "key version destroyed"
    assert ks.get_key("pii").versions[0].state == admin_pb2.VERSION_STATE_DESTROYED
    assert ks.get_key("pii").versions[1].encryptions == 1


def test_data_keys_and_kind_separation(ks):
    dk = ks.generate_data_key("pii", context={"recording": "call-1"})
    assert ks.decrypt_data_key(dk.encrypted, context={"recording": "call-1"}) == dk.plaintext
    with pytest.raises(BatchError):
        ks.decrypt_data_key(dk.encrypted, context={"recording": "call-2"})
    with pytest.raises(BatchError):
        ks.decrypt([dk.encrypted], context={"recording": "call-1"})
    with pytest.raises(BatchError):
        ks.decrypt_data_key(ks.encrypt("pii", [b"x" * 32])[0])
    assert len(ks.generate_data_key("pii", bits=128).plaintext) == 16
    with pytest.raises(InvalidArgumentError):
        ks.generate_data_key("pii", bits=64)


def test_streaming_recordings_work_against_the_fake(ks):
    data = bytes(range(256)) * 100
    out = io.BytesIO()
    info = encrypt_stream(ks, "pii", io.BytesIO(data), out, context={"call": "c1"}, segment_size=1000)
    assert info.segment_count == 26
    back = io.BytesIO()
    decrypt_stream(ks, io.BytesIO(out.getvalue()), back, context={"call": "c1"})
    assert back.getvalue() == data


def test_fpe_tokens_keep_the_format_and_are_deterministic(ks):
    values = ["123456789", "12-34-56-78", "000000"]
    tokens = ks.tokenize("digits", values)
    assert tokens == ks.tokenize("digits", values)
    assert tokens != values
    for value, token in zip(values, tokens, strict=True):
        assert len(token) == len(value)
        assert [c.isdigit() for c in token] == [c.isdigit() for c in value]
        assert [c for c in token if not c.isdigit()] == [c for c in value if not c.isdigit()]
    assert ks.tokenize("digits", values, tweak=b"t") != tokens
    assert ks.detokenize("digits", tokens, purpose="test") == values
    assert (
        ks.detokenize("digits", ks.tokenize("digits", values, tweak=b"t"), purpose="p", tweak=b"t") == values
    )


def test_fpe_rotation_needs_the_version_never_returns_a_wrong_value(ks):
    issued = ks.tokenize_versioned("digits", ["123456789"])
    assert issued == [Token(issued[0].token, 1)]
    ks.rotate_key("digits")
    with pytest.raises(BatchError) as info:
        ks.detokenize("digits", [issued[0].token], purpose="p")
    assert isinstance(info.value.results[0].error, FailedPreconditionError)
    assert ks.detokenize("digits", [issued[0].token], purpose="p", key_versions=[1]) == ["123456789"]
    moved = ks.retokenize("digits", issued)
    assert moved[0].key_version == 2
    assert ks.detokenize("digits", [moved[0].token], purpose="p", key_versions=[2]) == ["123456789"]
    with pytest.raises(ValueError):
        ks.detokenize("digits", ["1"], purpose="p", key_versions=[1, 2])


def test_token_formats():
    ks = FakeKeyService(
        keys={
            "pan": ("fpe", "pan"),
            "ssn": ("fpe", "ssn"),
            "email": ("fpe", "email"),
            "alnum": ("fpe", "alphanumeric"),
            "hex": ("fpe", "custom", {"alphabet": "0123456789ABCDEF"}),
            "phone": ("fpe", "phone"),
        }
    )
    cases = {
        "pan": "4111 1111 1111 1111",
        "ssn": "123-45-6789",
        "email": "Ada.Lovelace@example.com",
        "alnum": "AB12cd",
        "hex": "DEADBEEF",
        "phone": "+1 (555) 867-5309",
    }
    for key, value in cases.items():
        (token,) = ks.tokenize(key, [value])
        assert token != value and len(token) == len(value)
        assert ks.detokenize(key, [token], purpose="p") == [value]
    (pan_token,) = ks.tokenize("pan", [cases["pan"]])
    assert pan_token.endswith("1111") and pan_token[4] == " "
    assert ks.detokenize("pan", [pan_token], purpose="p", masked=True) == ["**** **** **** 1111"]
    (email_token,) = ks.tokenize("email", [cases["email"]])
    assert email_token.endswith("@example.com")
    assert ks.detokenize("email", [email_token], purpose="p", masked=True) == ["A***@example.com"]
    with pytest.raises(BatchError) as info:
        ks.tokenize("pan", ["4111111111111112", "12345", "4111111111111111"])
    assert [r.ok for r in info.value.results] == [False, False, True]
    assert all(isinstance(r.error, InvalidArgumentError) for r in info.value.results[:2])


def test_vault_tokens(ks):
    ks.create_key("vt", "vault-token", format="digits")
    ks.create_key("cv", "vault-token", format="digits", format_options={"convergent": "true"})
    a, b = ks.tokenize("vt", ["123456789", "123456789"])
    assert a != b and len(a) == 9 and a.isdigit()
    c, d = ks.tokenize("cv", ["123456789", "123456789"])
    assert c == d
    assert ks.detokenize("vt", [a, b], purpose="p") == ["123456789"] * 2
    with pytest.raises(BatchError) as info:
        ks.detokenize("vt", ["000000000"], purpose="p")
    assert isinstance(info.value.results[0].error, NotFoundError)


def test_detokenize_requires_a_purpose_and_records_it(ks):
    tokens = ks.tokenize("digits", ["123456789"])
    with pytest.raises(InvalidArgumentError, match="purpose"):
        ks.detokenize("digits", tokens, purpose="  ")
    ks.calls.clear()
    ks.detokenize("digits", tokens, purpose="chargeback")
    assert ks.calls == [FakeCall("Detokenize", "digits", 1, "chargeback")]


@pytest.mark.parametrize(
    ("text", "redacted", "kinds"),
    [
        ("card 4111 1111 1111 1111 thanks", "card [PAN] thanks", ["pan"]),
        ("card 4111-1111-1111-1111.", "card [PAN].", ["pan"]),
        ("order 4111111111111112 is not a card", "order 4111111111111112 is not a card", []),
        ("ssn 123-45-6789 ok", "ssn [SSN] ok", ["ssn"]),
        ("call (555) 867-5309 or +1 555 867 5309", "call [PHONE] or [PHONE]", ["phone", "phone"]),
        ("mail ada@example.co.uk now", "mail [EMAIL] now", ["email"]),
        ("nothing here 12345", "nothing here 12345", []),
    ],
)
def test_simple_redaction(ks, text, redacted, kinds):
    result = ks.redact(text)
    assert result.text == redacted
    assert [s.kind for s in result.spans] == kinds
    for span in result.spans:
        assert text[span.start : span.end].strip() == text[span.start : span.end]


def test_masked_redaction_shows_the_cards_last_four(ks):
    result = ks.redact("card 4111 1111 1111 1111")
    assert (result.spans[0].start, result.spans[0].end) == (5, 24)
    assert ks.redact("card 4111 1111 1111 1111", masked=True).text == "card [PAN ****1111]"


def test_keys_up_front_and_admin_alias():
    ks = FakeKeyService(
        keys={"a": "encrypt", "b": ("fpe", "digits"), "c": ("vault-token", "pan", {"luhn": "any"})}
    )
    assert ks.admin is ks
    assert [k.name for k in ks.list_keys()] == ["a", "b", "c"]
    assert ks.get_key("c").format_options == {"luhn": "any"}
    assert ks.get_key("b").purpose == admin_pb2.KEY_PURPOSE_FPE
    with ks as same:
        assert same is ks
    with pytest.raises(ValueError):
        ks.import_version("a", 0, b"\x00" * 32)


def test_threads_share_one_fake(ks):
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                ct = ks.encrypt("pii", [b"x"])
                assert ks.decrypt(ct) == [b"x"]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert ks.get_key("pii").versions[0].encryptions == 80


def test_records_and_testing_never_import_the_server_package():
    code = textwrap.dedent("""
        import sys, keysvc_client.records, keysvc_client.testing
        bad = sorted(m for m in sys.modules if m == "keysvc" or m.startswith("keysvc."))
        assert not bad, bad
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
