"""Key rotation latency and Rewrap throughput through the service, on SQLite and PostgreSQL.

Prints, from one run on this machine, for each store:
  * the time of one RotateKey call (median and p95 over --rotations; target < 50 ms),
  * Rewrap values/s in batches of 1,000 (old-version ciphertexts -> primary; target >= 100,000/s),
and the PostgreSQL / SQLite ratio of each. PostgreSQL is 127.0.0.1:5432 (or KEYSVC_TEST_PG_DSN);
the bench creates and drops its own database, and is skipped (said so) if none is reachable.

Run from the repo root: .venv/bin/python -m bench.rotation [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from bench._harness import keysvc_server, pipelined
from keysvc_client import KeyServiceClient
from keysvc_client._pb.keysvc.v1 import crypto_pb2

FIELD = b"123-45-6789-padded-to-32-bytes!!"
CONTEXT = {"field": "ssn"}
PG_DSN = os.environ.get("KEYSVC_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def pg_database() -> Iterator[str | None]:
    try:
        import psycopg

        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except Exception:
        yield None
        return
    name = f"keysvc_bench_{os.getpid()}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_DSN.rpartition("/")[0] + "/" + name
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(
    store_url: str | None, seconds: float, rotations: int, batch: int, in_flight: int
) -> tuple[list[float], float]:
    extra = ("--store-url", store_url) if store_url else ()
    with keysvc_server(*extra, env={"KEYSVC_SCHEDULER_ENABLED": "false"}) as (address, token), \
            KeyServiceClient(address, token=token, timeout=60) as client:
        client.admin.create_key("customer-pii", "encrypt")
        old = client.encrypt("customer-pii", [FIELD] * batch, context=CONTEXT)
        for _ in range(3):  # warm up
            client.admin.rotate_key("customer-pii")
        times = []
        for _ in range(rotations):
            start = time.perf_counter()
            client.admin.rotate_key("customer-pii")
            times.append((time.perf_counter() - start) * 1000)

        stub = client._crypto
        metadata = (("authorization", f"Bearer {token}"),)
        request = crypto_pb2.RewrapRequest(
            context=CONTEXT, items=[crypto_pb2.RewrapItem(ciphertext=c) for c in old])

        def call(req: crypto_pb2.RewrapRequest) -> grpc.Future:
            return stub.Rewrap.future(req, metadata=metadata, timeout=60)

        check = stub.Rewrap(request, metadata=metadata)
        assert all(not r.HasField("error") for r in check.results)
        pipelined(call, request, 0.5, in_flight)
        rate = pipelined(call, request, seconds, in_flight) * batch
        return times, rate


def report(name: str, times: list[float], rate: float) -> None:
    median, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    print(f"{name:<11} rotate one key  median {median:7.2f} ms  p95 {p95:7.2f} ms   target < 50 ms: "
          f"{'met' if p95 < 50 else 'NOT met'}")
    print(f"{name:<11} Rewrap x1,000   {rate:12,.0f} values/s        target >= 100,000: "
          f"{'met' if rate >= 100_000 else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rotations", type=int, default=40)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=2, help="Rewrap calls kept outstanding.")
    args = parser.parse_args()
    sqlite_times, sqlite_rate = measure(None, args.seconds, args.rotations, args.batch, args.in_flight)
    report("sqlite", sqlite_times, sqlite_rate)
    with pg_database() as url:
        if url is None:
            print("postgresql  skipped: no PostgreSQL reachable at 127.0.0.1:5432 (set KEYSVC_TEST_PG_DSN)")
            return
        pg_times, pg_rate = measure(url, args.seconds, args.rotations, args.batch, args.in_flight)
    report("postgresql", pg_times, pg_rate)
    rotation_ratio = statistics.median(pg_times) / statistics.median(sqlite_times)
    print(f"ratio postgresql/sqlite: rotation median {rotation_ratio:5.2f}x"
          f"  Rewrap throughput {pg_rate / sqlite_rate:5.2f}x")


if __name__ == "__main__":
    main()
