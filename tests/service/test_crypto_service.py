"""Crypto and key management through a real server on port 0 and the real client."""

import grpc
import pytest

from keysvc_client import (
    BatchError,
    DecryptionError,
    FailedPreconditionError,
    InvalidArgumentError,
    KeyServiceClient,
    NotFoundError,
    UnauthenticatedError,
    UnimplementedError,
)


@pytest.fixture
def pii(client):
    client.admin.create_key("customer-pii", "encrypt")
    return "customer-pii"


def test_ten_thousand_fields_round_trip_in_batches(client, pii):
    values = [f"field-{i}-{'x' * (i % 50)}".encode() for i in range(10_000)]
    contexts = [{"field": f"f{i % 7}", "record": str(i)} for i in range(10_000)]
    ciphertexts = []
    for start in range(0, 10_000, 1_000):
        ciphertexts += client.encrypt(
            pii, values[start : start + 1000], contexts=contexts[start : start + 1000]
        )
    assert len(set(ciphertexts)) == 10_000
    plaintexts = []
    for start in range(0, 10_000, 1_000):
        plaintexts += client.decrypt(
            ciphertexts[start : start + 1000], contexts=contexts[start : start + 1000]
        )
    assert plaintexts == values


def test_old_ciphertexts_decrypt_after_five_rotations(client, pii):
    per_version = []
    for round_ in range(6):
        values = [f"v{round_}-{i}".encode() for i in range(20)]
        per_version.append((values, client.encrypt(pii, values, context={"field": "ssn"})))
        if round_ < 5:
            client.admin.rotate_key(pii)
    key = client.admin.get_key(pii)
    assert key.primary_version == 6 and len(key.versions) == 6
    for values, ciphertexts in per_version:
        assert client.decrypt(ciphertexts, context={"field": "ssn"}) == values


def test_batch_with_one_tampered_item_returns_the_others(client, pii):
    values = [b"one", b"two", b"three"]
    cts = client.encrypt(pii, values, context={"f": "x"})
    tampered = bytearray(cts[1])
    tampered[-1] ^= 1
    with pytest.raises(BatchError) as info:
        client.decrypt([cts[0], bytes(tampered), cts[2]], context={"f": "x"})
    results = info.value.results
    assert [r.value for r in results] == [b"one", None, b"three"]
    assert isinstance(results[1].error, DecryptionError)
    assert str(results[1].error) == "decryption failed"


def test_wrong_context_and_unknown_key_are_the_same_opaque_error(client, pii):
    ct = client.encrypt(pii, [b"secret"], context={"field": "ssn"})[0]
    forged = ct[:3] + b"x" * ct[2] + ct[3 + ct[2] :]
    with pytest.raises(BatchError) as info:
        client.decrypt([ct, forged, b"garbage"], context={"field": "pan"})
    assert {str(r.error) for r in info.value.results} == {"decryption failed"}


def test_no_token_is_unauthenticated_and_bad_token_too(server, pii):
    for token in (None, "wrong-token"):
        with KeyServiceClient(f"127.0.0.1:{server.port}", token=token) as anonymous:
            with pytest.raises(UnauthenticatedError):
                anonymous.encrypt(pii, [b"x"])
            with pytest.raises(UnauthenticatedError):
                anonymous.admin.list_keys()


def test_health_needs_no_token(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "keysvc.v1.Crypto"):
            assert (
                stub.Check(health_pb2.HealthCheckRequest(service=name)).status
                == health_pb2.HealthCheckResponse.SERVING
            )


def test_rewrap_moves_ciphertexts_to_the_primary_version(client, pii):
    old = client.encrypt(pii, [b"a", b"b"], context={"f": "1"})
    client.admin.rotate_key(pii)
    new = client.rewrap(old, context={"f": "1"})
    assert all(ct != o for ct, o in zip(new, old, strict=True))
    assert client.decrypt(new, context={"f": "1"}) == [b"a", b"b"]
    assert client.decrypt(old, context={"f": "1"}) == [b"a", b"b"]
    from keysvc.crypto.envelope import parse_header

    assert {parse_header(ct).key_version for ct in new} == {2}


def test_data_keys(client, pii):
    dk = client.generate_data_key(pii, context={"recording": "call-1"})
    assert len(dk.plaintext) == 32 and dk.key_version == 1
    assert client.decrypt_data_key(dk.encrypted, context={"recording": "call-1"}) == dk.plaintext
    with pytest.raises(BatchError):
        client.decrypt_data_key(dk.encrypted, context={"recording": "call-2"})
    # a data key is not a field ciphertext and vice versa
    with pytest.raises(BatchError):
        client.decrypt([dk.encrypted], context={"recording": "call-1"})
    field = client.encrypt(pii, [b"x" * 32])[0]
    with pytest.raises(BatchError):
        client.decrypt_data_key(field)
    assert len(client.generate_data_key(pii, bits=128).plaintext) == 16
    with pytest.raises(InvalidArgumentError):
        client.generate_data_key(pii, bits=64)


def test_key_management_errors(client, pii):
    with pytest.raises(NotFoundError):
        client.encrypt("no-such-key", [b"x"])
    with pytest.raises(InvalidArgumentError):
        client.admin.create_key("bad name!", "encrypt")
    with pytest.raises(InvalidArgumentError):
        client.encrypt(pii, [])
    client.admin.create_key("digits", "fpe", format="digits")
    with pytest.raises(FailedPreconditionError):
        client.encrypt("digits", [b"1234567"])
    key = client.admin.get_key(pii)
    assert key.versions[0].state_changed_by == "dev" and key.created_by == "dev"


def test_encryption_counts_are_visible(client, pii):
    client.encrypt(pii, [b"x"] * 10)
    assert client.admin.get_key(pii).versions[0].encryptions >= 10


def test_unimplemented_surface_answers_unimplemented(client, server):
    from keysvc_client._pb.keysvc.v1 import admin_pb2

    # every declared Admin RPC is implemented now (issue 5); an undeclared one still answers UNIMPLEMENTED
    missing = client._channel.unary_unary(
        "/keysvc.v1.Admin/NoSuchMethod",
        request_serializer=admin_pb2.RetentionRequest.SerializeToString,
        response_deserializer=admin_pb2.RetentionPlan.FromString,
    )
    with pytest.raises(UnimplementedError):
        client._invoke(missing, admin_pb2.RetentionRequest())
