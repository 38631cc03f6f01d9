"""Encrypt throughput through the service beside a trivial echo server and in-process AES-GCM.

Prints, from one run on this machine:
  * unary Encrypt calls/s vs a Python gRPC echo server with the same message sizes (target >= 0.8x),
  * batch Encrypt fields/s in batches of 1,000 (target >= 200,000 fields/s),
  * in-process AES-GCM fields/s (the crypto floor) and the service's share of it.

Run from the repo root: .venv/bin/python -m bench.encrypt [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent import futures

import grpc
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench._harness import keysvc_server, pipelined
from keysvc_client import KeyServiceClient
from keysvc_client._pb.keysvc.v1 import crypto_pb2

FIELD = b"123-45-6789-padded-to-32-bytes!!"
CONTEXT = {"field": "ssn"}
ECHO_METHOD = "/bench.Echo/Echo"


def serve_echo() -> None:
    """A trivial sync gRPC server: the ceiling for any Python gRPC service here."""
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Echo": grpc.unary_unary_rpc_method_handler(lambda req, ctx: req)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


def echo_rate(seconds: float, in_flight: int) -> float:
    command = [sys.executable, "-m", "bench.encrypt", "--echo-server"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline()) if proc.stdout else 0
        payload = crypto_pb2.EncryptRequest(key="customer-pii", items=[
            crypto_pb2.EncryptItem(plaintext=FIELD, context=CONTEXT)]).SerializeToString()
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary(ECHO_METHOD)
            pipelined(echo.future, payload, 0.5, in_flight)
            return pipelined(echo.future, payload, seconds, in_flight)
    finally:
        proc.terminate()
        proc.wait()


def service_rates(seconds: float, in_flight: int, batch: int) -> tuple[float, float]:
    with keysvc_server() as (address, token), KeyServiceClient(address, token=token) as client:
        client.admin.create_key("customer-pii", "encrypt")
        stub = client._crypto
        metadata = (("authorization", f"Bearer {token}"),)
        one = crypto_pb2.EncryptRequest(key="customer-pii", items=[
            crypto_pb2.EncryptItem(plaintext=FIELD, context=CONTEXT)])

        def unary(request: crypto_pb2.EncryptRequest) -> grpc.Future:
            return stub.Encrypt.future(request, metadata=metadata, timeout=30)

        pipelined(unary, one, 0.5, in_flight)
        unary_rate = pipelined(unary, one, seconds, in_flight)
        many = crypto_pb2.EncryptRequest(key="customer-pii", items=[
            crypto_pb2.EncryptItem(plaintext=FIELD, context=CONTEXT) for _ in range(batch)])
        pipelined(unary, many, 0.5, 2)
        batch_rate = pipelined(unary, many, seconds, 2) * batch
        return unary_rate, batch_rate


def aes_floor(seconds: float, batch: int) -> float:
    from keysvc.crypto import envelope
    aead = AESGCM(AESGCM.generate_key(256))
    header = envelope.encode_header(envelope.Kind.FIELD, "customer-pii", 1)
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        nonces = os.urandom(12 * batch)
        for i in range(batch):
            aead.encrypt(nonces[i * 12:(i + 1) * 12], FIELD, header)
        done += batch
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo()
        return
    echo = echo_rate(args.seconds, args.in_flight)
    unary, batch = service_rates(args.seconds, args.in_flight, args.batch)
    floor = aes_floor(args.seconds, args.batch)
    print(f"echo server (ceiling)        {echo:12,.0f} calls/s")
    print(f"unary Encrypt                {unary:12,.0f} calls/s   "
          f"ratio {unary / echo:5.2f}x echo (target >= 0.80)")
    print(f"batch Encrypt x{args.batch:<6}        {batch:12,.0f} fields/s  target >= 200,000: "
          f"{'met' if batch >= 200_000 else 'NOT met'}")
    print(f"in-process AES-GCM (floor)   {floor:12,.0f} fields/s  service = {batch / floor:5.2f}x floor")


if __name__ == "__main__":
    main()
