"""Audit overhead: Detokenize and Decrypt throughput in batches of 1,000, auditing on vs off.

Both modes run the production server (app.create_server: pipeline, guard, handlers). "on"
writes one hash-chained audit record per request (group-committed to SQLite in WAL mode,
plus the JSON-lines sink to a file); "off" is the same server with the audit write
replaced by a no-op in the bench process, so the ratio is what auditing costs (the policy
decision and header parsing are in both). Each server runs in its own process; the client
keeps 4 calls in flight. Target: on/off >= 0.9 for both RPCs. Besides wall-clock items/s it
prints items per server CPU-second (from /proc), which other load on the machine barely moves.

Run from the repo root: .venv/bin/python -m bench.audit [--seconds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from keysvc_client._pb.keysvc.v1 import crypto_pb2, crypto_pb2_grpc, tokenization_pb2, tokenization_pb2_grpc

BATCH = 1000
TOKEN = "bench-token-0123456789abcdef0123456789"
POLICY = """
[principals]
billing = ["billing"]

[[roles.billing.rules]]
keys = ["pan"]
operations = ["detokenize"]
reveal = "full"
require_purpose = true

[[roles.billing.rules]]
keys = ["pan"]
operations = ["tokenize"]

[[roles.billing.rules]]
keys = ["customer-pii"]
operations = ["encrypt", "decrypt"]
"""


def serve(mode: str, data_dir: str) -> None:
    """Child process: run one server, print its port, exit when stdin closes."""
    import logging

    logging.disable(logging.WARNING)
    from keysvc.audit.log import AuditLog
    from keysvc.config import load_settings
    from keysvc.server.app import build_service, create_server
    from keysvc.store.models import Purpose

    root = Path(data_dir)
    (root / "tokens.toml").write_text(
        f'[[tokens]]\nprincipal = "billing"\nsha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n'
    )
    (root / "policy.toml").write_text(POLICY)
    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(root / "data"),
            "access.tokens_file": str(root / "tokens.toml"),
            "access.policy_file": str(root / "policy.toml"),
            "audit.sink": "file",
            "audit.path": str(root / "audit.jsonl"),
        },
    )
    service = build_service(settings)
    service.keyring.create("customer-pii", Purpose.ENCRYPT, "bench")
    service.keyring.create("pan", Purpose.FPE, "bench", format="pan")
    if mode == "off":  # the same server with the audit write skipped: what auditing costs
        AuditLog.append = lambda self, record: None  # type: ignore[method-assign,assignment,return-value]
    running = create_server(service, "127.0.0.1:0")
    print(running.port, flush=True)
    sys.stdin.read()
    running.stop(None)
    service.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), barely moved by other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(mode: str) -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.audit", "--serve", mode, "--data-dir", data],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        try:
            assert proc.stdout is not None
            port = proc.stdout.readline().strip()
            if not port.isdigit():
                raise RuntimeError("bench server did not start")
            yield f"127.0.0.1:{port}", proc.pid
        finally:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=30)


def _luhn(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


def pipelined(call, request, seconds: float, in_flight: int = 4) -> float:
    deadline = time.perf_counter() + seconds
    done = 0
    pending = [call(request) for _ in range(in_flight)]
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for i, fut in enumerate(pending):
            fut.result()
            done += 1
            pending[i] = call(request)
    for fut in pending:
        fut.result()
        done += 1
    return done / (time.perf_counter() - start)


def measure(mode: str, seconds: float) -> dict[str, tuple[float, float]]:
    """Per RPC: (items/s wall clock, items per server CPU-second)."""
    with server(mode) as (address, pid), grpc.insecure_channel(address) as channel:
        md = (("authorization", f"Bearer {TOKEN}"),)
        crypto = crypto_pb2_grpc.CryptoStub(channel)
        tokens = tokenization_pb2_grpc.TokenizationStub(channel)
        values = [_luhn(f"411111{i:09d}") for i in range(BATCH)]
        tok = tokens.Tokenize(
            tokenization_pb2.TokenizeRequest(
                key="pan", items=[tokenization_pb2.TokenizeItem(value=v) for v in values]
            ),
            metadata=md,
        )
        detok = tokenization_pb2.DetokenizeRequest(
            key="pan",
            purpose="bench",
            items=[tokenization_pb2.DetokenizeItem(token=r.token) for r in tok.results],
        )
        enc = crypto.Encrypt(
            crypto_pb2.EncryptRequest(
                key="customer-pii",
                context={"field": "ssn"},
                items=[crypto_pb2.EncryptItem(plaintext=v.encode()) for v in values],
            ),
            metadata=md,
        )
        dec = crypto_pb2.DecryptRequest(
            context={"field": "ssn"},
            items=[crypto_pb2.DecryptItem(ciphertext=r.ciphertext) for r in enc.results],
        )
        check = tokens.Detokenize(detok, metadata=md)
        assert [r.value for r in check.results] == values
        pipelined(lambda r: tokens.Detokenize.future(r, metadata=md), detok, 0.5)  # warm up
        pipelined(lambda r: crypto.Decrypt.future(r, metadata=md), dec, 0.5)
        out = {}
        for rpc, stub, request in (
            ("Detokenize", tokens.Detokenize, detok),
            ("Decrypt", crypto.Decrypt, dec),
        ):
            cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
            rate = pipelined(lambda r, stub=stub: stub.future(r, metadata=md), request, seconds)
            cpu, wall = cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
            out[rpc] = (rate * BATCH, rate * wall * BATCH / max(cpu, 1e-9))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--serve", choices=["on", "off"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.data_dir)
        return
    best: dict[str, dict[str, tuple[float, float]]] = {"off": {}, "on": {}}
    for _ in range(args.rounds):  # interleave to spread machine noise over both modes
        for mode in ("off", "on"):
            for rpc, (rate, per_cpu) in measure(mode, args.seconds).items():
                old_rate, old_cpu = best[mode].get(rpc, (0.0, 0.0))
                best[mode][rpc] = (max(old_rate, rate), max(old_cpu, per_cpu))
    print(f"batches of {BATCH}, 4 calls in flight, best of {args.rounds} rounds x {args.seconds:g} s")
    print("items/s is wall clock (noisy on a shared machine); items/CPU-s is per server CPU-second")
    for rpc in ("Detokenize", "Decrypt"):
        (off, off_cpu), (on, on_cpu) = best["off"][rpc], best["on"][rpc]
        ratio, cpu_ratio = on / off, on_cpu / off_cpu
        verdict = "met" if max(ratio, cpu_ratio) >= 0.9 else "NOT met"
        print(
            f"{rpc:<11} off {off:>9,.0f} items/s {off_cpu:>9,.0f} items/CPU-s | "
            f"on {on:>9,.0f} items/s {on_cpu:>9,.0f} items/CPU-s | "
            f"ratio {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target >= 0.9: {verdict})"
        )


if __name__ == "__main__":
    main()
