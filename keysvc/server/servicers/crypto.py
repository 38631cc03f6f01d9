"""Crypto service: proto <-> domain translation only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc

from keysvc.errors import InvalidArgument, KeysvcError
from keysvc.keys.fields import FieldCrypto, Opened, Sealed
from keysvc.server.status import item_status
from keysvc_client._pb.keysvc.v1 import crypto_pb2 as pb
from keysvc_client._pb.keysvc.v1 import crypto_pb2_grpc

MAX_BATCH_ITEMS = 10_000


def check_batch(count: int) -> None:
    if count == 0:
        raise InvalidArgument("the request has no items")
    if count > MAX_BATCH_ITEMS:
        raise InvalidArgument(f"a batch may hold at most {MAX_BATCH_ITEMS} items")


def _pairs(
    items: Sequence[Any], data: str, shared: Mapping[str, str]
) -> list[tuple[bytes, Mapping[str, str]]]:
    """(bytes, context) per item; an item without its own context shares the request's (one object)."""
    check_batch(len(items))
    return [(getattr(i, data), i.context if i.context else shared) for i in items]


def _fill(
    results: Any, outcomes: Sequence[Sealed | Opened | KeysvcError], items: Sequence[Any], field: str
) -> None:
    add = results.add
    for outcome, item in zip(outcomes, items, strict=True):
        if isinstance(outcome, KeysvcError):
            add(reference=item.reference, error=item_status(outcome))
        elif field == "ciphertext":
            add(ciphertext=outcome[0], key_version=outcome[1], reference=item.reference)
        else:
            add(plaintext=outcome[0], key_version=outcome[1], reference=item.reference)


class CryptoServicer(crypto_pb2_grpc.CryptoServicer):  # type: ignore[misc]
    def __init__(self, fields: FieldCrypto) -> None:
        self._fields = fields

    def Encrypt(self, request: pb.EncryptRequest, context: grpc.ServicerContext) -> pb.EncryptResponse:
        sealed = self._fields.encrypt(request.key, _pairs(request.items, "plaintext", request.context))
        response = pb.EncryptResponse()
        _fill(response.results, sealed, request.items, "ciphertext")
        return response

    def Decrypt(self, request: pb.DecryptRequest, context: grpc.ServicerContext) -> pb.DecryptResponse:
        opened = self._fields.decrypt(_pairs(request.items, "ciphertext", request.context))
        response = pb.DecryptResponse()
        _fill(response.results, opened, request.items, "plaintext")
        return response

    def Rewrap(self, request: pb.RewrapRequest, context: grpc.ServicerContext) -> pb.RewrapResponse:
        sealed = self._fields.rewrap(_pairs(request.items, "ciphertext", request.context))
        response = pb.RewrapResponse()
        _fill(response.results, sealed, request.items, "ciphertext")
        return response

    def GenerateDataKey(
        self, request: pb.GenerateDataKeyRequest, context: grpc.ServicerContext
    ) -> pb.GenerateDataKeyResponse:
        check_batch(len(request.items))
        keys = self._fields.generate_data_keys(
            request.key, [i.context for i in request.items], request.bits or 256
        )
        response = pb.GenerateDataKeyResponse()
        for k, i in zip(keys, request.items, strict=True):
            response.results.add(
                plaintext=k.plaintext, encrypted=k.encrypted, key_version=k.key_version, reference=i.reference
            )
        return response

    def DecryptDataKey(
        self, request: pb.DecryptDataKeyRequest, context: grpc.ServicerContext
    ) -> pb.DecryptDataKeyResponse:
        opened = self._fields.decrypt_data_keys(_pairs(request.items, "encrypted", {}))
        response = pb.DecryptDataKeyResponse()
        _fill(response.results, opened, request.items, "plaintext")
        for result, item in zip(response.results, request.items, strict=True):
            if not result.HasField("error"):
                result.encrypted = item.encrypted
        return response
