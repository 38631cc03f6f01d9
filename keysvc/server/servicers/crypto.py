"""Crypto service: proto <-> domain translation only."""

from __future__ import annotations

import grpc

from keysvc.errors import InvalidArgument, KeysvcError
from keysvc.keys.fields import FieldCrypto
from keysvc.server.status import item_status
from keysvc_client._pb.keysvc.v1 import crypto_pb2 as pb
from keysvc_client._pb.keysvc.v1 import crypto_pb2_grpc

MAX_BATCH_ITEMS = 10_000


def check_batch(count: int) -> None:
    if count == 0:
        raise InvalidArgument("the request has no items")
    if count > MAX_BATCH_ITEMS:
        raise InvalidArgument(f"a batch may hold at most {MAX_BATCH_ITEMS} items")


class CryptoServicer(crypto_pb2_grpc.CryptoServicer):
    def __init__(self, fields: FieldCrypto) -> None:
        self._fields = fields

    def Encrypt(self, request: pb.EncryptRequest, context: grpc.ServicerContext) -> pb.EncryptResponse:
        check_batch(len(request.items))
        sealed = self._fields.encrypt(request.key, [(i.plaintext, i.context) for i in request.items])
        return pb.EncryptResponse(results=[
            pb.EncryptResult(ciphertext=s.ciphertext, key_version=s.key_version, reference=i.reference)
            for s, i in zip(sealed, request.items, strict=True)
        ])

    def Decrypt(self, request: pb.DecryptRequest, context: grpc.ServicerContext) -> pb.DecryptResponse:
        check_batch(len(request.items))
        opened = self._fields.decrypt([(i.ciphertext, i.context) for i in request.items])
        return pb.DecryptResponse(results=[
            pb.DecryptResult(reference=i.reference, error=item_status(r)) if isinstance(r, KeysvcError)
            else pb.DecryptResult(plaintext=r.plaintext, key_version=r.key_version, reference=i.reference)
            for r, i in zip(opened, request.items, strict=True)
        ])

    def Rewrap(self, request: pb.RewrapRequest, context: grpc.ServicerContext) -> pb.RewrapResponse:
        check_batch(len(request.items))
        sealed = self._fields.rewrap([(i.ciphertext, i.context) for i in request.items])
        return pb.RewrapResponse(results=[
            pb.RewrapResult(reference=i.reference, error=item_status(r)) if isinstance(r, KeysvcError)
            else pb.RewrapResult(ciphertext=r.ciphertext, key_version=r.key_version, reference=i.reference)
            for r, i in zip(sealed, request.items, strict=True)
        ])

    def GenerateDataKey(self, request: pb.GenerateDataKeyRequest,
                        context: grpc.ServicerContext) -> pb.GenerateDataKeyResponse:
        check_batch(len(request.items))
        keys = self._fields.generate_data_keys(request.key, [i.context for i in request.items], request.bits or 256)
        return pb.GenerateDataKeyResponse(results=[
            pb.DataKeyResult(plaintext=k.plaintext, encrypted=k.encrypted, key_version=k.key_version,
                             reference=i.reference)
            for k, i in zip(keys, request.items, strict=True)
        ])

    def DecryptDataKey(self, request: pb.DecryptDataKeyRequest,
                       context: grpc.ServicerContext) -> pb.DecryptDataKeyResponse:
        check_batch(len(request.items))
        opened = self._fields.decrypt_data_keys([(i.encrypted, i.context) for i in request.items])
        return pb.DecryptDataKeyResponse(results=[
            pb.DataKeyResult(reference=i.reference, error=item_status(r)) if isinstance(r, KeysvcError)
            else pb.DataKeyResult(plaintext=r.plaintext, encrypted=i.encrypted, key_version=r.key_version,
                                  reference=i.reference)
            for r, i in zip(opened, request.items, strict=True)
        ])
