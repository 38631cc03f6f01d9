"""Fuzzing every RPC of Crypto, Tokenization and Admin through a real server (hypothesis).

Inputs: raw bytes (not a protobuf at all, or invalid UTF-8 in string fields), messages built
from the proto descriptors with adversarial values (unknown keys, huge and empty batches,
odd Unicode, wrong contexts), and valid ciphertexts / tokens truncated or bit-flipped.

The server must never crash, never answer INTERNAL or UNKNOWN, and never reflect request
text in an error message (the call's details or a batch item's message).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keysvc.server.app import build_service, create_server
from keysvc_client import KeyServiceClient
from keysvc_client._pb.keysvc.v1 import admin_pb2, crypto_pb2, tokenization_pb2
from tests.conftest import dev_settings

SERVICES = [
    crypto_pb2.DESCRIPTOR.services_by_name["Crypto"],
    tokenization_pb2.DESCRIPTOR.services_by_name["Tokenization"],
    admin_pb2.DESCRIPTOR.services_by_name["Admin"],
]
METHODS = [(f"/{s.full_name}/{m.name}", m) for s in SERVICES for m in s.methods]
# Admin calls that would change the keys the other examples rely on.
DESTRUCTIVE = {"/keysvc.v1.Admin/SetVersionState", "/keysvc.v1.Admin/ApplyRetention",
               "/keysvc.v1.Admin/UpdateKeyPolicy"}
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
KEYS = ["fz-enc", "fz-digits", "fz-pan", "no-such-key", "", "x" * 300, "../etc", "fz-enc\x00"]
MARK = "FUZZMARKER"  # planted in text inputs; an error message that contains it reflects input

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)


class Target:
    def __init__(self, address: str, token: str, channel: grpc.Channel) -> None:
        self.address = address
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.channel = channel
        self.ciphertexts: list[bytes] = []
        self.data_keys: list[bytes] = []
        self.tokens: list[str] = []

    def call(self, method: str, payload: bytes) -> tuple[grpc.StatusCode, str, bytes]:
        rpc = self.channel.unary_unary(method)
        try:
            reply = rpc(payload, metadata=self.metadata, timeout=30)
        except grpc.RpcError as err:
            return err.code(), err.details() or "", b""
        return grpc.StatusCode.OK, "", reply


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data = Path(tmp_path_factory.mktemp("fuzz")) / "data"
    service = build_service(dev_settings(data, **{"server.max_message_bytes": 1024 * 1024}))
    running = create_server(service, "127.0.0.1:0")
    token = (data / "dev-token").read_text().strip()
    address = f"127.0.0.1:{running.port}"
    try:
        with KeyServiceClient(address, token=token) as client, grpc.insecure_channel(address) as channel:
            client.admin.create_key("fz-enc", "encrypt")
            client.admin.create_key("fz-digits", "fpe", format="digits")
            client.admin.create_key("fz-pan", "vault-token", format="pan")
            t = Target(address, token, channel)
            t.ciphertexts = client.encrypt("fz-enc", [b"v1", b"value two", b""], context={"f": "1"})
            t.data_keys = [client.generate_data_key("fz-enc", context={"f": "1"}).encrypted]
            t.tokens = client.tokenize("fz-digits", ["0123456789", "5555555555554444"])
            yield t
            # Still alive and still correct after everything.
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            assert client.decrypt(t.ciphertexts, context={"f": "1"}) == [b"v1", b"value two", b""]
    finally:
        running.stop(None)
        service.close()


def _printable_runs(data: bytes) -> list[str]:
    return [m.decode() for m in re.findall(rb"[ -~]{8,}", data)]


def _check(target: Target, method: str, payload: bytes, response_type: Any) -> None:
    code, details, reply = target.call(method, payload)
    assert code not in FORBIDDEN, (method, code, details)
    messages = [details]
    if code is grpc.StatusCode.OK and response_type is not None:
        response = response_type.FromString(reply)
        for result in getattr(response, "results", ()):
            if result.HasField("error"):
                assert result.error.code not in (2, 13), (method, result.error)  # UNKNOWN, INTERNAL
                messages.append(result.error.message)
    for message in messages:
        assert MARK not in message, (method, message)
        for run in _printable_runs(payload):
            if run not in ("decryption failed",):
                assert run not in message, (method, message)


def _mutate(data: bytes, draw: Any) -> bytes:
    choice = draw(st.sampled_from(["truncate", "flip", "extend", "same", "header"]))
    if not data or choice == "same":
        return data
    if choice == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if choice == "flip":
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
    if choice == "header":
        return data[:2] + bytes([draw(st.integers(0, 255))]) + data[3:]
    return data + draw(st.binary(min_size=1, max_size=64))


TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12).map(lambda s: MARK + s),
    st.sampled_from(["", "0", "4111111111111111", "\u202e\u0000", "😀" * 30, "a" * 5000]),
)


@st.composite
def _value(draw: Any, field: FieldDescriptor, target: Target, depth: int) -> Any:
    name = field.name
    if field.type == FieldDescriptor.TYPE_STRING:
        if name in ("key", "name"):
            return draw(st.one_of(st.sampled_from(KEYS), TEXT))
        if name == "token" and target.tokens:
            return draw(st.one_of(st.sampled_from(target.tokens), TEXT))
        return draw(TEXT)
    if field.type == FieldDescriptor.TYPE_BYTES:
        if name in ("ciphertext", "encrypted"):
            pool = target.ciphertexts if name == "ciphertext" else target.data_keys
            return _mutate(draw(st.one_of(st.sampled_from(pool), st.binary(max_size=80))), draw)
        return draw(st.binary(max_size=64))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if field.type == FieldDescriptor.TYPE_ENUM:
        return draw(st.integers(-1, 8))
    if field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return draw(st.one_of(st.integers(0, 10), st.just(2**32 - 1)))
    if field.type in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return draw(st.one_of(st.integers(0, 10), st.just(2**31), st.just(2**64 - 1)))
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return draw(st.integers(-(2**31), 2**31 - 1))
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return draw(st.integers(-(2**63), 2**63 - 1))
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return draw(_message(field.message_type, target, depth + 1))
    return None


@st.composite
def _message(draw: Any, descriptor: Descriptor, target: Target, depth: int = 0) -> Any:
    msg = message_factory.GetMessageClass(descriptor)()
    if descriptor.full_name == "google.protobuf.Timestamp":
        msg.seconds = draw(st.integers(-(2**40), 2**40))
        return msg
    for field in descriptor.fields:
        if depth > 3 or not draw(st.booleans()):
            continue
        if field.is_repeated and field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            entries = draw(st.dictionaries(TEXT, TEXT if value_field.type == FieldDescriptor.TYPE_STRING
                                           else st.integers(0, 5), max_size=4))
            getattr(msg, field.name).update(entries)
        elif field.is_repeated:
            count = draw(st.sampled_from([0, 1, 2, 3, 7]))
            values = [draw(_value(field, target, depth)) for _ in range(count)]
            container = getattr(msg, field.name)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for v in values:
                    container.add().CopyFrom(v)
            else:
                container.extend(values)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            getattr(msg, field.name).CopyFrom(draw(_value(field, target, depth)))
        else:
            setattr(msg, field.name, draw(_value(field, target, depth)))
    return msg


def _response_type(method: Any) -> Any:
    return message_factory.GetMessageClass(method.output_type)


SAFE_METHODS = [(name, m) for name, m in METHODS if name not in DESTRUCTIVE]


@FUZZ
@given(data=st.data())
def test_structured_adversarial_messages(target: Target, data: st.DataObject) -> None:
    name, method = data.draw(st.sampled_from(SAFE_METHODS))
    msg = data.draw(_message(method.input_type, target))
    _check(target, name, msg.SerializeToString(), _response_type(method))


@FUZZ
@given(data=st.data())
def test_destructive_admin_calls_with_unknown_keys(target: Target, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(DESTRUCTIVE)))
    method = next(m for n, m in METHODS if n == name)
    msg = data.draw(_message(method.input_type, target))
    if hasattr(msg, "name"):
        msg.name = data.draw(st.sampled_from(["no-such-key", MARK, "", "x" * 300]))
    _check(target, name, msg.SerializeToString(), _response_type(method))


@FUZZ
@given(data=st.data())
def test_raw_bytes_and_mangled_wire_format(target: Target, data: st.DataObject) -> None:
    name, method = data.draw(st.sampled_from(SAFE_METHODS))
    valid = data.draw(_message(method.input_type, target)).SerializeToString()
    payload = data.draw(st.one_of(st.binary(max_size=300), st.just(valid)))
    payload = _mutate(payload, data.draw)
    _check(target, name, payload, None)


def _string_field(number: int, raw: bytes) -> bytes:
    return bytes([(number << 3) | 2, len(raw)]) + raw


def _strings(method: Any) -> list[FieldDescriptor]:
    return [f for f in method.input_type.fields if f.type == FieldDescriptor.TYPE_STRING]


WITH_STRINGS = [(n, m) for n, m in METHODS if _strings(m)]


@pytest.mark.parametrize("name,method", WITH_STRINGS, ids=[n for n, _ in WITH_STRINGS])
def test_invalid_utf8_in_string_fields_is_invalid_argument(target: Target, name: str, method: Any) -> None:
    strings = _strings(method)
    payload = _string_field(strings[0].number, b"\xff\xfe" + MARK.encode() + b"\xc3\x28")
    code, details, _ = target.call(name, payload)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert MARK not in details


def test_huge_batches_are_refused_with_a_documented_code(target: Target) -> None:
    many = crypto_pb2.EncryptRequest(key="fz-enc", items=[crypto_pb2.EncryptItem(plaintext=b"x")] * 10_001)
    code, _, _ = target.call("/keysvc.v1.Crypto/Encrypt", many.SerializeToString())
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    big = crypto_pb2.EncryptRequest(key="fz-enc", items=[crypto_pb2.EncryptItem(plaintext=b"x" * 2_000_000)])
    code, _, _ = target.call("/keysvc.v1.Crypto/Encrypt", big.SerializeToString())
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    tokens = tokenization_pb2.TokenizeRequest(
        key="fz-digits", items=[tokenization_pb2.TokenizeItem(value="0123456789")] * 10_001)
    code, _, _ = target.call("/keysvc.v1.Tokenization/Tokenize", tokens.SerializeToString())
    assert code is grpc.StatusCode.INVALID_ARGUMENT


@FUZZ
@given(data=st.data())
def test_tampered_ciphertexts_and_wrong_contexts_fail_per_item(target: Target, data: st.DataObject) -> None:
    originals = target.ciphertexts
    mutated = [_mutate(ct, data.draw) for ct in originals]
    context = data.draw(st.sampled_from([{"f": "1"}, {"f": "2"}, {}, {"f": "1", "g": ""}]))
    request = crypto_pb2.DecryptRequest(context=context,
                                        items=[crypto_pb2.DecryptItem(ciphertext=ct) for ct in mutated])
    code, details, reply = target.call("/keysvc.v1.Crypto/Decrypt", request.SerializeToString())
    assert code is grpc.StatusCode.OK, details
    results = crypto_pb2.DecryptResponse.FromString(reply).results
    expected = [b"v1", b"value two", b""]
    for ct, original, result, plain in zip(mutated, originals, results, expected, strict=True):
        if result.HasField("error"):
            assert result.error.message == "decryption failed"
        else:  # only an untouched ciphertext under the right context opens, to the right value
            assert ct == original and context == {"f": "1"} and result.plaintext == plain


def test_huge_rotation_period_is_refused(target: Target) -> None:
    create = admin_pb2.CreateKeyRequest(name="fz-policy", purpose=admin_pb2.KEY_PURPOSE_ENCRYPT)
    target.call("/keysvc.v1.Admin/CreateKey", create.SerializeToString())
    request = admin_pb2.UpdateKeyPolicyRequest(name="fz-policy", policy=admin_pb2.KeyPolicy(
        rotate_every_seconds=2**64 - 1))
    code, details, _ = target.call("/keysvc.v1.Admin/UpdateKeyPolicy", request.SerializeToString())
    assert code is grpc.StatusCode.INVALID_ARGUMENT, details
