"""Load: mixed traffic from separate client processes, 1 worker vs 2 workers, unary p99 under 64 callers.

Every response is checked: each Encrypt is followed by a Decrypt of its results (and each
Tokenize by a Detokenize) that must give back exactly what was sent; every value that
encrypted is decrypted once more at the end (so nothing is lost across faults).

Prints, from one run on this machine:
  * mixed traffic (unary + batch Encrypt/Decrypt, Tokenize/Detokenize batches if the
    Tokenization service answers) against 1 worker and 2 workers: calls/s, items/s, p50/p99
    per operation, errors by code; the 2:1 throughput ratio (target >= 1.6x);
  * unary Encrypt+Decrypt p99 with 64 concurrent callers, each pacing itself to
    ``--rate`` calls/s, against 2 workers (target < 10 ms); and the closed-loop figure
    (64 callers back to back), whose latency is just 64 / throughput.

Run from the repo root: .venv/bin/python -m bench.load [--seconds 5]

The load generator runs as ``python -m bench.load --drive SPEC`` (a separate process,
grpc.aio, one channel per 4 callers so connections spread over the workers) and prints
a JSON report; tests import :class:`ServerProcess` and :func:`drive` from here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc

from keysvc_client import KeyServiceClient, UnimplementedError
from keysvc_client._pb.keysvc.v1 import crypto_pb2, crypto_pb2_grpc, tokenization_pb2, tokenization_pb2_grpc

KEY = "load-pii"
TOKEN_KEY = "load-digits"
BATCH = 50
_CODE_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}
_VALUES = [os.urandom(random.randint(4, 40)) for _ in range(4096)]
_DIGITS = ["".join(random.choice("0123456789") for _ in range(random.randint(10, 16))) for _ in range(4096)]


# -- the server under test ---------------------------------------------------------------------


class ServerProcess:
    """``keysvc serve --dev`` in a subprocess; stderr (JSON log lines) goes to a file."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None,
                 log_level: str = "WARNING") -> None:
        self.data_dir = data_dir
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keysvc.cli.serve", "serve", "--dev", "--data-dir", str(data_dir),
             "--listen", "127.0.0.1:0", "--log-level", log_level, *extra],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("keysvc listening on"):
            self.stop()
            raise RuntimeError(f"server did not start: {self.log_path.read_text()[-2000:]}")
        self.address = line.strip().rsplit(" ", 1)[1]
        self.metrics_url = ""
        if "--metrics-listen" in extra:
            metrics = self.proc.stdout.readline().strip().rsplit(" ", 1)[1]
            self.metrics_url = f"http://{metrics}/metrics"
        self.token = (data_dir / "dev-token").read_text().strip()

    def client(self, **kwargs: Any) -> KeyServiceClient:
        return KeyServiceClient(self.address, token=self.token, **kwargs)

    def scrape(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as reply:
            return str(reply.read().decode())

    def log_lines(self) -> list[dict[str, Any]]:
        if not self._log.closed:
            self._log.flush()
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def worker_pids(self) -> dict[int, int]:
        """worker index -> pid of its newest process (from the workers' start-up log lines)."""
        pids: dict[int, int] = {}
        for line in self.log_lines():
            if line.get("msg") == "warmed DEK cache" and "worker" in line:
                pids[int(line["worker"])] = int(line["pid"])
        return pids

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._log.close()
        return code

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def server(*extra: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "data", *extra, env=env) as s:
        yield s


# -- the load generator (runs in its own process) ----------------------------------------------


@dataclass
class Spec:
    address: str
    token: str
    seconds: float
    callers: int
    unary_weight: float = 1.0
    batch_weight: float = 1.0
    token_weight: float = 1.0
    rate: float = 0.0  # calls/s per caller (0: back to back)
    timeout: float = 10.0
    verify_seconds: float = 30.0  # how long the final re-decrypt may retry through outages


@dataclass
class Report:
    seconds: float = 0.0
    calls: int = 0
    items: int = 0
    ok_calls: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    corrupted: int = 0
    lost: int = 0
    verified: int = 0
    tokens: bool = True
    notes: list[str] = field(default_factory=list)


def _quantiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50": pick(0.50), "p99": pick(0.99), "max": ordered[-1] * 1000, "n": float(len(ordered))}


class _Driver:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.metadata = (("authorization", f"Bearer {spec.token}"),)
        self.latencies: dict[str, list[float]] = {}
        self.report = Report()
        self.kept: list[tuple[bytes, bytes, dict[str, str]]] = []
        self.pending_tokens: list[tuple[str, str, int]] = []
        self.rng = random.Random()

    async def call(self, op: str, method: Any, request: Any, items: int) -> Any:
        start = time.perf_counter()
        try:
            response = await method(request, metadata=self.metadata, timeout=self.spec.timeout)
        except grpc.aio.AioRpcError as err:
            code = err.code().name
            self.report.codes[code] = self.report.codes.get(code, 0) + 1
            self.report.calls += 1
            return None
        self.latencies.setdefault(op, []).append(time.perf_counter() - start)
        self.report.calls += 1
        self.report.ok_calls += 1
        self.report.items += items
        self.report.codes["OK"] = self.report.codes.get("OK", 0) + 1
        return response

    def item_error(self, code: int) -> None:
        name = "item:" + _CODE_NAMES.get(code, str(code))
        self.report.codes[name] = self.report.codes.get(name, 0) + 1

    def value(self) -> bytes:
        return self.rng.choice(_VALUES)  # a pool: generating values would cost the client more CPU

    async def encrypt_round_trip(self, crypto: Any, n: int, op: str) -> None:
        context = {"field": "ssn", "batch": str(self.rng.randint(0, 9))}
        values = [self.value() for _ in range(n)]
        request = crypto_pb2.EncryptRequest(
            key=KEY, context=context, items=[crypto_pb2.EncryptItem(plaintext=v) for v in values])
        sealed = await self.call(f"{op}-encrypt", crypto.Encrypt, request, n)
        if sealed is None:
            return
        good = []
        for r, v in zip(sealed.results, values, strict=True):
            if r.HasField("error"):
                self.item_error(r.error.code)
            else:
                good.append((r.ciphertext, v))
        self.kept += [(ct, v, context) for ct, v in good]
        request = crypto_pb2.DecryptRequest(
            context=context, items=[crypto_pb2.DecryptItem(ciphertext=ct) for ct, _ in good])
        opened = await self.call(f"{op}-decrypt", crypto.Decrypt, request, len(good))
        if opened is None:
            return  # kept: decrypted again at the end
        for result, (_, value) in zip(opened.results, good, strict=True):
            if result.HasField("error"):
                self.item_error(result.error.code)
            elif result.plaintext != value:
                self.report.corrupted += 1

    async def token_round_trip(self, tokens: Any) -> None:
        values = self.rng.sample(_DIGITS, BATCH)
        request = tokenization_pb2.TokenizeRequest(
            key=TOKEN_KEY, items=[tokenization_pb2.TokenizeItem(value=v) for v in values])
        issued = await self.call("batch-tokenize", tokens.Tokenize, request, BATCH)
        if issued is None:
            return
        good = []
        for r, v in zip(issued.results, values, strict=True):
            if r.HasField("error"):
                self.item_error(r.error.code)
            else:
                good.append((r.token, v, r.key_version))
        request2 = tokenization_pb2.DetokenizeRequest(
            key=TOKEN_KEY, purpose="load-test",
            items=[tokenization_pb2.DetokenizeItem(token=t, key_version=kv) for t, _, kv in good])
        revealed = await self.call("batch-detokenize", tokens.Detokenize, request2, len(good))
        if revealed is None:
            self.pending_tokens += good
            return
        for result, (_, value, _) in zip(revealed.results, good, strict=True):
            if result.HasField("error"):
                self.item_error(result.error.code)
            elif result.value != value:
                self.report.corrupted += 1

    async def caller(self, channel: grpc.aio.Channel, stop_at: float) -> None:
        crypto = crypto_pb2_grpc.CryptoStub(channel)
        tokens = tokenization_pb2_grpc.TokenizationStub(channel)
        spec = self.spec
        weights = [spec.unary_weight, spec.batch_weight, spec.token_weight if self.report.tokens else 0.0]
        if spec.rate:  # callers start spread over one period, so they do not call in lockstep
            await asyncio.sleep(self.rng.uniform(0, 2 / spec.rate))
        while time.monotonic() < stop_at:
            started = time.monotonic()
            kind = self.rng.choices((0, 1, 2), weights)[0]
            if kind == 0:
                await self.encrypt_round_trip(crypto, 1, "unary")
            elif kind == 1:
                await self.encrypt_round_trip(crypto, BATCH, "batch")
            else:
                await self.token_round_trip(tokens)
            if spec.rate:
                period = self.rng.uniform(1.0, 3.0) / spec.rate  # 2 calls per round trip, jittered
                await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))

    async def verify(self, channel: grpc.aio.Channel) -> None:
        """Decrypt every value that ever encrypted; retry through outages for verify_seconds."""
        crypto = crypto_pb2_grpc.CryptoStub(channel)
        todo = list(self.kept)
        give_up = time.monotonic() + self.spec.verify_seconds
        while todo and time.monotonic() < give_up:
            retry = []
            for start in range(0, len(todo), 500):
                chunk = todo[start:start + 500]
                request = crypto_pb2.DecryptRequest(items=[
                    crypto_pb2.DecryptItem(ciphertext=ct, context=ctx) for ct, _, ctx in chunk])
                try:
                    reply = await crypto.Decrypt(request, metadata=self.metadata, timeout=self.spec.timeout)
                except grpc.aio.AioRpcError:
                    retry += chunk
                    continue
                for result, item in zip(reply.results, chunk, strict=True):
                    if result.HasField("error"):
                        retry.append(item)
                    elif result.plaintext != item[1]:
                        self.report.corrupted += 1
                    else:
                        self.report.verified += 1
            todo = retry
            if todo:
                await asyncio.sleep(0.5)
        self.report.lost = len(todo)
        tokens = tokenization_pb2_grpc.TokenizationStub(channel)
        pending = list(self.pending_tokens)
        while pending and time.monotonic() < give_up:
            request2 = tokenization_pb2.DetokenizeRequest(key=TOKEN_KEY, purpose="load-test", items=[
                tokenization_pb2.DetokenizeItem(token=t, key_version=kv) for t, _, kv in pending[:500]])
            try:
                reply2 = await tokens.Detokenize(request2, metadata=self.metadata, timeout=self.spec.timeout)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)
                continue
            left = []
            for result, item in zip(reply2.results, pending[:500], strict=True):
                if result.HasField("error"):
                    left.append(item)
                elif result.value != item[1]:
                    self.report.corrupted += 1
                else:
                    self.report.verified += 1
            pending = left + pending[500:]
        self.report.lost += len(pending)

    async def run(self) -> Report:
        spec = self.spec
        channels = [grpc.aio.insecure_channel(spec.address, options=[
            ("grpc.use_local_subchannel_pool", 1), ("keysvc.load.channel", i)])
            for i in range((spec.callers + 3) // 4)]
        try:
            probe = tokenization_pb2_grpc.TokenizationStub(channels[0])
            try:
                await probe.Tokenize(tokenization_pb2.TokenizeRequest(
                    key=TOKEN_KEY, items=[tokenization_pb2.TokenizeItem(value="0123456789")]),
                    metadata=self.metadata, timeout=spec.timeout)
            except grpc.aio.AioRpcError as err:
                self.report.tokens = False
                self.report.notes.append(f"tokenize/detokenize skipped: Tokenize answered {err.code().name}")
            start = time.monotonic()
            stop_at = start + spec.seconds
            await asyncio.gather(*(self.caller(channels[i // 4], stop_at) for i in range(spec.callers)))
            self.report.seconds = time.monotonic() - start
            await self.verify(channels[0])
        finally:
            for channel in channels:
                await channel.close()
        self.report.latency_ms = {op: _quantiles(s) for op, s in sorted(self.latencies.items())}
        unary = self.latencies.get("unary-encrypt", []) + self.latencies.get("unary-decrypt", [])
        if unary:
            self.report.latency_ms["unary"] = _quantiles(unary)
        return self.report


def prepare(address: str, token: str) -> bool:
    """Create the load keys (idempotent); True if the Tokenization service answers."""
    from keysvc_client import AlreadyExistsError

    with KeyServiceClient(address, token=token) as client:
        for name, purpose, fmt in ((KEY, "encrypt", ""), (TOKEN_KEY, "fpe", "digits")):
            with contextlib.suppress(AlreadyExistsError):
                client.admin.create_key(name, purpose, format=fmt)
        try:
            client.tokenize(TOKEN_KEY, ["0123456789"])
        except UnimplementedError:
            return False
    return True


def drive(spec: Spec, clients: int = 1) -> Report:
    """Run ``clients`` load-generator processes with ``spec`` (callers split between them); merge."""
    each = max(1, spec.callers // clients)
    procs = [subprocess.Popen([sys.executable, "-m", "bench.load", "--drive",
                               json.dumps({**asdict(spec), "callers": each})],
                              stdout=subprocess.PIPE, text=True) for _ in range(clients)]
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=spec.seconds + spec.verify_seconds + 120)
        if proc.returncode:
            raise RuntimeError("load generator failed")
        reports.append(json.loads(out))
    return _merge(reports)


def _merge(reports: list[dict[str, Any]]) -> Report:
    merged = Report()
    merged.seconds = max(r["seconds"] for r in reports)
    for r in reports:
        for name in ("calls", "items", "ok_calls", "corrupted", "lost", "verified"):
            setattr(merged, name, getattr(merged, name) + r[name])
        for code, n in r["codes"].items():
            merged.codes[code] = merged.codes.get(code, 0) + n
        merged.tokens = merged.tokens and r["tokens"]
        merged.notes = sorted(set(merged.notes) | set(r["notes"]))
    # Latency quantiles cannot be merged exactly: report the worst client's (conservative).
    for r in reports:
        for op, q in r["latency_ms"].items():
            have = merged.latency_ms.get(op)
            if have is None or q.get("p99", 0) > have.get("p99", 0):
                merged.latency_ms[op] = q
    return merged


def _drive_main(spec_json: str) -> None:
    spec = Spec(**json.loads(spec_json))
    report = asyncio.run(_Driver(spec).run())
    print(json.dumps(asdict(report)))


# -- the benchmark --------------------------------------------------------------------------------


def _row(label: str, r: Report) -> str:
    q = r.latency_ms.get("unary", {})
    errors = {c: n for c, n in r.codes.items() if c != "OK"}
    return (f"{label:<26} {r.ok_calls / r.seconds:9,.0f} calls/s {r.items / r.seconds:10,.0f} items/s  "
            f"unary p50 {q.get('p50', 0):6.2f} ms p99 {q.get('p99', 0):6.2f} ms  "
            f"errors {errors or 0}  corrupted {r.corrupted} lost {r.lost} verified {r.verified}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--callers", type=int, default=32, help="closed-loop callers for the throughput runs")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument("--rate", type=float, default=15.0, help="calls/s per caller in the p99 run")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        _drive_main(args.drive)
        return
    results: dict[int, Report] = {}
    for workers in (1, 2):
        with server("--workers", str(workers)) as s:
            tokens = prepare(s.address, s.token)
            spec = Spec(s.address, s.token, args.seconds, args.callers, token_weight=1.0 if tokens else 0.0)
            drive(Spec(s.address, s.token, 1.0, 8, verify_seconds=5), clients=1)  # warm-up
            results[workers] = drive(spec, clients=args.clients)
            if workers == 2:
                paced = drive(Spec(s.address, s.token, args.seconds, 64, batch_weight=0, token_weight=0,
                                   rate=args.rate), clients=args.clients)
                closed = drive(Spec(s.address, s.token, args.seconds, 64, batch_weight=0, token_weight=0),
                               clients=args.clients)
    one, two = results[1], results[2]
    ratio = (two.ok_calls / two.seconds) / (one.ok_calls / one.seconds)
    item_ratio = (two.items / two.seconds) / (one.items / one.seconds)
    print(f"mixed traffic, {args.callers} callers in {args.clients} client processes, "
          f"{args.seconds:g} s each")
    print(_row("1 worker", one))
    print(_row("2 workers", two))
    for op, q in sorted(two.latency_ms.items()):
        print(f"    2 workers {op:<20} p50 {q['p50']:7.2f} ms  p99 {q['p99']:7.2f} ms  n={q['n']:.0f}")
    print(f"2 workers vs 1: calls {ratio:4.2f}x, items {item_ratio:4.2f}x (target >= 1.60x): "
          f"{'met' if ratio >= 1.6 else 'NOT met'}")
    pq = paced.latency_ms.get("unary", {})
    print(f"unary, 64 callers at {args.rate:g} calls/s each (2 workers): "
          f"{paced.ok_calls / paced.seconds:,.0f} calls/s, p50 {pq.get('p50', 0):.2f} ms, "
          f"p99 {pq.get('p99', 0):.2f} ms (target < 10 ms): {'met' if pq.get('p99', 99) < 10 else 'NOT met'}")
    cq = closed.latency_ms.get("unary", {})
    print(f"unary, 64 callers back to back (2 workers):       "
          f"{closed.ok_calls / closed.seconds:,.0f} calls/s, "
          f"p50 {cq.get('p50', 0):.2f} ms, p99 {cq.get('p99', 0):.2f} ms (latency = callers / throughput)")
    for note in sorted(set(one.notes + two.notes)):
        print(f"note: {note}")
    bad = sum(r.corrupted + r.lost for r in (one, two, paced, closed))
    print(f"round trips verified: {sum(r.verified for r in (one, two, paced, closed)):,}, "
          f"corrupted or lost: {bad}")


if __name__ == "__main__":
    main()
