"""One JSON access line per RPC; request ids; request bodies and planted secrets never logged."""

from __future__ import annotations

import logging

import grpc
import pytest

from bench.load import ServerProcess
from keysvc.server.logs import JsonFormatter
from keysvc.server.pipeline import RequestIds
from keysvc_client._pb.keysvc.v1 import admin_pb2, admin_pb2_grpc, crypto_pb2, crypto_pb2_grpc

PLANT = "4111 1111 1111 1111 PLANTED/SECRET"


def _trailer(call: grpc.Call, key: str) -> str:
    return dict(call.trailing_metadata() or ())[key]


def test_access_lines_request_ids_and_no_planted_secret(tmp_path):
    with ServerProcess(tmp_path / "data", log_level="INFO") as s:
        auth = ("authorization", f"Bearer {s.token}")
        with grpc.insecure_channel(s.address) as channel:
            crypto = crypto_pb2_grpc.CryptoStub(channel)
            admin = admin_pb2_grpc.AdminStub(channel)
            admin.CreateKey(admin_pb2.CreateKeyRequest(name="k", purpose=admin_pb2.KEY_PURPOSE_ENCRYPT),
                            metadata=(auth,))
            request = crypto_pb2.EncryptRequest(key="k", context={PLANT: PLANT},
                                                items=[crypto_pb2.EncryptItem(plaintext=PLANT.encode())])
            # The caller's id is kept and echoed back in trailing metadata.
            reply, call = crypto.Encrypt.with_call(request, metadata=(auth, ("x-request-id", "call-42.a")))
            assert _trailer(call, "x-request-id") == "call-42.a"
            # An id that is not a short safe token is replaced, not logged.
            _, call = crypto.Encrypt.with_call(request, metadata=(auth, ("x-request-id", PLANT)))
            generated = _trailer(call, "x-request-id")
            assert generated != PLANT and PLANT not in generated
            # Errors carry the id too, and the request's content stays out of the log.
            with pytest.raises(grpc.RpcError) as info:
                crypto.Encrypt(crypto_pb2.EncryptRequest(key=PLANT, items=request.items), metadata=(auth,))
            assert info.value.code() is grpc.StatusCode.NOT_FOUND
            failed_id = _trailer(info.value, "x-request-id")
            with pytest.raises(grpc.RpcError) as info:
                crypto.Decrypt(crypto_pb2.DecryptRequest(
                    items=[crypto_pb2.DecryptItem(ciphertext=reply.results[0].ciphertext)]),
                    metadata=(("authorization", f"Bearer {PLANT}"),))
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert s.stop() == 0
        raw = s.log_path.read_text()
        lines = s.log_lines()  # every line is JSON
    assert PLANT not in raw and "PLANTED" not in raw and "4111" not in raw
    access = [line for line in lines if line["logger"] == "keysvc.access"]
    assert len(access) == 5
    for line in access:
        assert set(line) == {"ts", "level", "logger", "msg", "request_id", "method", "principal", "code",
                             "latency_ms"}
        assert line["latency_ms"] >= 0
    by_id = {line["request_id"]: line for line in access}
    assert by_id["call-42.a"]["method"] == "/keysvc.v1.Crypto/Encrypt"
    assert by_id["call-42.a"]["principal"] == "dev" and by_id["call-42.a"]["code"] == "OK"
    assert by_id[generated]["code"] == "OK"
    assert by_id[failed_id]["code"] == "NOT_FOUND"
    assert access[-1]["code"] == "UNAUTHENTICATED" and access[-1]["principal"] == ""


def test_request_ids_are_unique_and_safe():
    ids = RequestIds()
    fresh = {ids() for _ in range(1000)}
    assert len(fresh) == 1000
    assert ids("abc-123") == "abc-123"
    for bad in ("", "x" * 129, "a b", "café", "a\nb", "{}"):
        assert ids(bad) != bad


def test_formatter_writes_only_allowed_fields():
    record = logging.LogRecord("keysvc.access", logging.INFO, __file__, 1, "rpc", None, None)
    record.request_id = "r1"
    record.plaintext = PLANT
    record.request = PLANT
    line = JsonFormatter().format(record)
    assert "r1" in line and PLANT not in line
