"""Record helpers and the fake against a real server on port 0 (embedded default).

The record helpers depend on neither the KEK provider nor the store, so this module runs the
server on the embedded default only (local KEK, SQLite: ``kek_provider`` and ``store_backend``
are overridden below, which also lets ``backend`` request the server lazily); the crypto
service tests cover the other providers and stores.
Behaviour the fake must share with the server is one list of tests parametrized over
``backend`` = [real client, FakeKeyService].
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from keysvc_client import (
    AlreadyExistsError,
    BatchError,
    DecryptionError,
    FailedPreconditionError,
    InvalidArgumentError,
    KeyServiceClient,
    NotFoundError,
    UnauthenticatedError,
    UnimplementedError,
)
from keysvc_client._pb.keysvc.v1 import crypto_pb2_grpc, tokenization_pb2_grpc
from keysvc_client.records import (
    Drop,
    Encrypt,
    Mask,
    RecordBatchError,
    Schema,
    Tokenize,
    decode_text,
    protect_record,
    protect_records,
    reveal_record,
    reveal_records,
)
from keysvc_client.stream import decrypt_stream, encrypt_stream
from keysvc_client.testing import FakeKeyService


@pytest.fixture
def kek_provider() -> str:
    return "local"


@pytest.fixture
def store_backend() -> str:
    return "sqlite"


@pytest.fixture(params=["server", "fake"])
def backend(request: pytest.FixtureRequest) -> Any:
    if request.param == "server":
        return request.getfixturevalue("client")
    return FakeKeyService()


def needs_tokenization(backend: Any) -> None:
    """Skip on a server whose Tokenization service is not there yet (it answers UNIMPLEMENTED)."""
    try:
        backend.tokenize("no-such-key", ["123456"])
    except UnimplementedError:
        pytest.skip("the server's Tokenization service is not implemented yet")
    except NotFoundError:
        pass


class RpcCounter(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the unary RPCs a client sends (method names like /keysvc.v1.Crypto/Encrypt)."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        self.methods.append(details.method.rsplit("/", 1)[-1])
        return continuation(details, request)


@pytest.fixture
def counted(client: KeyServiceClient) -> Iterator[RpcCounter]:
    """Route the client's Crypto and Tokenization stubs through an RpcCounter."""
    counter = RpcCounter()
    channel = grpc.intercept_channel(client._channel, counter)
    saved = client._crypto, client._tokens
    client._crypto = crypto_pb2_grpc.CryptoStub(channel)
    client._tokens = tokenization_pb2_grpc.TokenizationStub(channel)
    yield counter
    client._crypto, client._tokens = saved


ORDER: dict[str, Any] = {
    "order_id": "A-1001",
    "payment": {"card_number": "4111 1111 1111 1111", "cvv": "737"},
    "customer": {"name": "Ada", "ssn": "123-45-6789", "phone": "+1 555 867 5309", "dob": None},
    "calls": [{"agent": "bo", "notes": "asked to update address"}, None, {"agent": "cy"}],
    "amount_cents": 12345,
    "attachment": b"\x00\xff",
}
ENCRYPTING = Schema(
    {
        "payment.cvv": Drop(),
        "customer.ssn": Encrypt("customer-pii"),
        "customer.phone": Encrypt("customer-pii"),
        "customer.phone_last4": Mask(),
        "customer.dob": Encrypt("customer-pii"),
        "calls[].notes": Encrypt("notes"),
        "amount_cents": Encrypt("customer-pii"),
        "attachment": Encrypt("customer-pii"),
    },
    context={"app": "orders"},
)
TOKENIZING = Schema({**ENCRYPTING.fields, "payment.card_number": Tokenize("pan")}, context={"app": "orders"})


def create_keys(backend: Any) -> None:
    backend.admin.create_key("customer-pii", "encrypt")
    backend.admin.create_key("notes", "encrypt")


# -- record helpers against the real server ----------------------------------------------------------


def test_record_round_trip_against_the_server(client):
    create_keys(client)
    stored = protect_record(client, ORDER, ENCRYPTING)
    assert "cvv" not in stored["payment"] and stored["customer"]["dob"] is None
    assert stored["customer"]["ssn"].startswith("ks1:") and stored["amount_cents"].startswith("ks1j:")
    assert stored["calls"][1] is None and stored["calls"][2] == {"agent": "cy"}
    revealed = reveal_record(client, stored, ENCRYPTING, purpose="chargeback")
    expected = copy.deepcopy(ORDER)
    del expected["payment"]["cvv"]
    assert revealed == expected


@pytest.mark.parametrize("field_count", [1, 12, 60])
def test_one_encrypt_rpc_per_protect_call_whatever_the_field_count(client, counted, field_count):
    client.admin.create_key("customer-pii", "encrypt")
    schema = Schema({f"f{i}": Encrypt("customer-pii") for i in range(field_count)})
    records = [{f"f{i}": f"value {r} {i}" for i in range(field_count)} for r in range(7)]
    stored = protect_records(client, records, schema)
    assert counted.methods == ["Encrypt"]
    counted.methods.clear()
    assert reveal_records(client, stored, schema, purpose="qa") == records
    assert counted.methods == ["Decrypt"]
    counted.methods.clear()
    protect_record(client, records[0], schema)
    assert counted.methods == ["Encrypt"]


def test_one_rpc_per_key_and_per_token_key(client, counted):
    create_keys(client)
    needs_tokenization(client)
    counted.methods.clear()
    client.admin.create_key("pan", "fpe", format="pan")
    records = [copy.deepcopy(ORDER) for _ in range(30)]
    stored = protect_records(client, records, TOKENIZING)
    assert sorted(counted.methods) == ["Encrypt", "Encrypt", "Tokenize"]  # customer-pii, notes; pan
    counted.methods.clear()
    revealed = reveal_records(client, stored, TOKENIZING, purpose="chargeback")
    assert sorted(counted.methods) == ["Decrypt", "Detokenize"]
    assert revealed[0]["payment"]["card_number"] == "4111 1111 1111 1111"
    assert stored[0]["payment"]["card_number"] != "4111 1111 1111 1111"
    assert stored[0]["payment"]["card_number"].endswith("1111")
    counted.methods.clear()
    masked = reveal_record(client, stored[0], TOKENIZING, purpose="agent view", masked=True)
    assert masked["payment"]["card_number"] == "**** **** **** 1111"


def test_typed_errors_from_the_server_surface_through_the_helpers(client, server):
    create_keys(client)
    client.admin.create_key("digits", "fpe", format="digits")
    with pytest.raises(NotFoundError):
        protect_record(client, {"a": "x"}, Schema({"a": Encrypt("no-such-key")}))
    with pytest.raises(FailedPreconditionError):  # a tokenization key cannot encrypt
        protect_record(client, {"a": "123456789"}, Schema({"a": Encrypt("digits")}))
    stored = protect_record(client, {"a": "x"}, Schema({"a": Encrypt("notes")}))
    with pytest.raises(RecordBatchError) as info:  # another schema context: does not decrypt
        reveal_record(client, stored, Schema({"a": Encrypt("notes")}, context={"tenant": "t2"}), purpose="p")
    assert [f.path for f in info.value.fields] == ["a"]
    assert isinstance(info.value.fields[0].error, DecryptionError)
    assert str(info.value.fields[0].error) == "decryption failed"
    with (
        KeyServiceClient(f"127.0.0.1:{server.port}", token="wrong") as anonymous,
        pytest.raises(UnauthenticatedError),
    ):
        protect_record(anonymous, {"a": "x"}, Schema({"a": Encrypt("notes")}))


def test_tokenize_record_errors_from_the_server(client):
    client.admin.create_key("customer-pii", "encrypt")
    needs_tokenization(client)
    client.admin.create_key("pan", "fpe", format="pan")
    with pytest.raises(FailedPreconditionError):  # an encryption key cannot tokenize
        protect_record(client, {"a": "4111111111111111"}, Schema({"a": Tokenize("customer-pii")}))
    schema = Schema({"cards[]": Tokenize("pan")})
    with pytest.raises(RecordBatchError) as info:
        protect_record(client, {"cards": ["4111111111111111", "1234"]}, schema)
    assert [f.path for f in info.value.fields] == ["cards[1]"]
    assert isinstance(info.value.fields[0].error, InvalidArgumentError)


def test_fake_and_server_ciphertexts_have_the_same_structure(client):
    fake = FakeKeyService()
    for backend in (client, fake):
        create_keys(backend)
    plaintexts = [b"", b"123-45-6789", b"x" * 300]
    real = client.encrypt("customer-pii", plaintexts, context={"field": "ssn"})
    mine = fake.encrypt("customer-pii", plaintexts, context={"field": "ssn"})
    for r, m in zip(real, mine, strict=True):
        n = r[2]
        assert len(r) == len(m) and r[: 7 + n] == m[: 7 + n]  # version, kind, name, key version
        assert r[7 + n : 19 + n] != m[7 + n : 19 + n]  # random nonces
    real_dk, fake_dk = client.generate_data_key("notes"), fake.generate_data_key("notes")
    assert len(real_dk.encrypted) == len(fake_dk.encrypted)
    assert real_dk.encrypted[: 7 + len("notes")] == fake_dk.encrypted[: 7 + len("notes")]
    # record text forms are interchangeable in shape too
    real_text = protect_record(client, {"a": "v"}, Schema({"a": Encrypt("notes")}))["a"]
    fake_text = protect_record(fake, {"a": "v"}, Schema({"a": Encrypt("notes")}))["a"]
    assert len(real_text) == len(fake_text) and real_text[:12] == fake_text[:12]
    assert decode_text(real_text)[1] == decode_text(fake_text)[1] == "str"


# -- behaviour the fake shares with the server ---------------------------------------------------------


def test_shared_round_trips(backend):
    create_keys(backend)
    values = [b"one", b"", "café ☃".encode()]
    contexts = [{"field": "a"}, {"field": "b"}, {}]
    assert (
        backend.decrypt(backend.encrypt("customer-pii", values, contexts=contexts), contexts=contexts)
        == values
    )
    cts = backend.encrypt("customer-pii", values, context={"f": "x"})
    assert backend.decrypt(cts, context={"f": "x"}) == values
    stored = protect_record(backend, ORDER, ENCRYPTING)
    assert reveal_record(backend, stored, ENCRYPTING, purpose="qa")["customer"]["ssn"] == "123-45-6789"


def test_shared_opaque_decryption_failures(backend):
    create_keys(backend)
    ct = backend.encrypt("customer-pii", [b"secret"], context={"field": "ssn"})[0]
    tampered = bytearray(ct)
    tampered[-1] ^= 1
    forged = ct[:3] + b"x" * ct[2] + ct[3 + ct[2] :]
    with pytest.raises(BatchError) as info:
        backend.decrypt([ct, bytes(tampered), forged, b"garbage"], context={"field": "ssn"})
    results = info.value.results
    assert results[0].value == b"secret" and results[0].ok
    assert all(isinstance(r.error, DecryptionError) for r in results[1:])
    assert {str(r.error) for r in results[1:]} == {"decryption failed"}
    with pytest.raises(BatchError):
        backend.decrypt([ct], context={"field": "pan"})


def test_shared_key_errors(backend):
    create_keys(backend)
    backend.admin.create_key("digits", "fpe", format="digits")
    with pytest.raises(NotFoundError):
        backend.encrypt("no-such-key", [b"x"])
    with pytest.raises(FailedPreconditionError):
        backend.encrypt("digits", [b"1234567"])
    with pytest.raises(InvalidArgumentError):
        backend.encrypt("customer-pii", [])
    with pytest.raises(InvalidArgumentError):
        backend.admin.create_key("bad name!", "encrypt")
    with pytest.raises(AlreadyExistsError):
        backend.admin.create_key("notes", "encrypt")
    with pytest.raises(NotFoundError):
        backend.admin.get_key("no-such-key")


def test_shared_rotation_and_rewrap(backend):
    create_keys(backend)
    old = backend.encrypt("customer-pii", [b"a", b"b"], context={"f": "1"})
    key = backend.admin.rotate_key("customer-pii")
    assert key.primary_version == 2 and len(key.versions) == 2
    new = backend.rewrap(old, context={"f": "1"})
    assert {ct[3 + ct[2] : 7 + ct[2]] for ct in new} == {(2).to_bytes(4, "big")}
    assert backend.decrypt(old + new, context={"f": "1"}) == [b"a", b"b"] * 2
    stored = protect_record(backend, ORDER, ENCRYPTING)
    backend.admin.rotate_key("customer-pii")
    assert reveal_record(backend, stored, ENCRYPTING, purpose="qa")["customer"]["phone"] == "+1 555 867 5309"


def test_shared_data_keys_and_streams(backend):
    create_keys(backend)
    dk = backend.generate_data_key("notes", context={"recording": "call-1"})
    assert len(dk.plaintext) == 32 and dk.key_version == 1
    assert backend.decrypt_data_key(dk.encrypted, context={"recording": "call-1"}) == dk.plaintext
    with pytest.raises(BatchError):
        backend.decrypt_data_key(dk.encrypted, context={"recording": "call-2"})
    with pytest.raises(BatchError):
        backend.decrypt([dk.encrypted], context={"recording": "call-1"})
    with pytest.raises(BatchError):
        backend.decrypt_data_key(backend.encrypt("notes", [b"k" * 32])[0])
    with pytest.raises(InvalidArgumentError):
        backend.generate_data_key("notes", bits=64)
    data = b"recording " * 5000
    sealed = io.BytesIO()
    encrypt_stream(backend, "notes", io.BytesIO(data), sealed, context={"call": "c1"}, segment_size=4096)
    out = io.BytesIO()
    decrypt_stream(backend, io.BytesIO(sealed.getvalue()), out, context={"call": "c1"})
    assert out.getvalue() == data


def test_shared_tokenization(backend):
    needs_tokenization(backend)
    backend.admin.create_key("digits", "fpe", format="digits")
    backend.admin.create_key("customer-pii", "encrypt")
    values = ["123456789", "12-34-56-78"]
    tokens = backend.tokenize("digits", values)
    assert tokens == backend.tokenize("digits", values) and tokens != values
    assert [len(t) for t in tokens] == [len(v) for v in values] and tokens[1][2] == "-"
    assert backend.detokenize("digits", tokens, purpose="chargeback") == values
    with pytest.raises(InvalidArgumentError):
        backend.detokenize("digits", tokens, purpose=" ")
    with pytest.raises(InvalidArgumentError):
        backend.tokenize("digits", [])
    with pytest.raises(FailedPreconditionError):
        backend.tokenize("customer-pii", ["123456789"])
    with pytest.raises(NotFoundError):
        backend.tokenize("no-such-key", ["123456789"])
    with pytest.raises(BatchError) as info:
        backend.tokenize("digits", ["123456789", "12"])
    assert info.value.results[0].ok and isinstance(info.value.results[1].error, InvalidArgumentError)


def test_shared_pan_tokens_and_masked_reveal(backend):
    needs_tokenization(backend)
    backend.admin.create_key("pan", "fpe", format="pan")
    (token,) = backend.tokenize("pan", ["4111 1111 1111 1111"])
    assert token != "4111 1111 1111 1111" and token.endswith(" 1111") and len(token) == 19
    assert backend.detokenize("pan", [token], purpose="p") == ["4111 1111 1111 1111"]
    assert backend.detokenize("pan", [token], purpose="p", masked=True) == ["**** **** **** 1111"]
    schema = Schema({"cards[].number": Tokenize("pan")})
    stored = protect_record(backend, {"cards": [{"number": "4111111111111111"}, {}]}, schema)
    assert reveal_record(backend, stored, schema, purpose="p") == {
        "cards": [{"number": "4111111111111111"}, {}]
    }


def test_shared_vault_tokens(backend):
    needs_tokenization(backend)
    backend.admin.create_key("vt", "vault-token", format="digits")
    tokens = backend.tokenize("vt", ["123456789", "987654321"])
    assert backend.detokenize("vt", tokens, purpose="p") == ["123456789", "987654321"]
    with pytest.raises(BatchError) as info:
        backend.detokenize("vt", [tokens[0], "000000001"], purpose="p")
    assert info.value.results[0].value == "123456789"
    assert isinstance(info.value.results[1].error, NotFoundError)


@pytest.mark.parametrize(
    ("text", "redacted", "kinds"),
    [
        ("card 4111 1111 1111 1111 thanks", "card [PAN] thanks", ["pan"]),
        ("ssn 123-45-6789 ok", "ssn [SSN] ok", ["ssn"]),
        ("mail ada@example.co.uk now", "mail [EMAIL] now", ["email"]),
        ("nothing to see", "nothing to see", []),
    ],
)
def test_shared_simple_redaction(backend, text, redacted, kinds):
    needs_tokenization(backend)
    result = backend.redact(text)
    assert result.text == redacted
    assert [s.kind for s in result.spans] == kinds
