"""A guarded server (pipeline + guard + Governance) with a policy, tokens and two operators.

Built with keysvc.server.app.create_server, the production server builder. The guard's clock
is a fake one that tests move forward, so each operator call can use a fresh TOTP step.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from keysvc.access import totp
from keysvc.audit.store import Operator
from keysvc.config import load_settings
from keysvc.server.app import RunningServer, Service, build_service, create_server
from keysvc.store.models import Purpose
from keysvc_client._pb.keysvc.v1 import (
    admin_pb2_grpc,
    crypto_pb2_grpc,
    governance_pb2_grpc,
    tokenization_pb2_grpc,
)

POLICY = """
[principals]
ivr = ["ivr"]
desktop = ["desktop"]
billing = ["billing"]
app = ["app"]
alice = ["operator"]
bob = ["operator"]
carol = ["operator", "app", "billing"]
nobody = []
"spiffe://cc.example/ns/crm/*" = ["app"]
"dns:recorder.cc.example" = ["app"]

[[roles.ivr.rules]]
keys = ["pan", "ssn"]
operations = ["tokenize", "redact"]

[[roles.ivr.rules]]
operations = ["redact"]

[[roles.desktop.rules]]
keys = ["pan"]
operations = ["detokenize"]
reveal = "masked"

[[roles.billing.rules]]
keys = ["pan"]
operations = ["detokenize"]
reveal = "full"
require_purpose = true

[[roles.app.rules]]
keys = ["customer-pii", "scratch"]
operations = ["encrypt", "decrypt", "rewrap", "datakey"]
quota_per_minute = 50000

[[roles.app.rules]]
keys = ["pan"]
operations = ["tokenize", "retokenize"]

[[roles.operator.rules]]
operations = ["admin.*", "governance.*"]
"""

PRINCIPALS = ("ivr", "desktop", "billing", "app", "alice", "bob", "carol", "nobody")


class FakeClock:
    def __init__(self, start: float = 1_900_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Env:
    service: Service
    running: RunningServer
    tokens: dict[str, str]
    secrets: dict[str, bytes]
    clock: FakeClock
    data_dir: Path
    policy_path: Path
    tokens_path: Path
    audit_path: Path
    channels: list[grpc.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def store(self) -> Any:
        return self.running.governance.store

    def otp(self, operator: str) -> str:
        """A fresh code for ``operator`` (moves the clock one TOTP step forward)."""
        self.clock.advance(totp.STEP_SECONDS)
        return totp.code_at(self.secrets[operator], self.clock())

    def metadata(self, who: str | None, otp: str | None = None) -> list[tuple[str, str]]:
        md = []
        if who is not None:
            md.append(("authorization", f"Bearer {self.tokens.get(who, 'unknown-token-' + who)}"))
        if otp is None and who in self.secrets:
            otp = self.otp(who)
        if otp:
            md.append((totp.OTP_METADATA_KEY, otp))
        return md

    def stubs(self) -> dict[str, Any]:
        channel = grpc.insecure_channel(self.address)
        self.channels.append(channel)
        return {
            "Crypto": crypto_pb2_grpc.CryptoStub(channel),
            "Tokenization": tokenization_pb2_grpc.TokenizationStub(channel),
            "Admin": admin_pb2_grpc.AdminStub(channel),
            "Governance": governance_pb2_grpc.GovernanceStub(channel),
        }

    def close(self) -> None:
        for channel in self.channels:
            channel.close()
        self.running.stop(None)
        self.service.close()


def make_env(tmp_path: Path, store_url: str = "", refresh_seconds: float = 0.5, **overrides: Any) -> Env:
    data = tmp_path / "data"
    data.mkdir(parents=True, exist_ok=True)
    tokens = {
        name: f"tok-{name}-" + hashlib.sha256(name.encode() + str(tmp_path).encode()).hexdigest()[:24]
        for name in PRINCIPALS
    }
    tokens_path = tmp_path / "tokens.toml"
    tokens_path.write_text(
        "".join(
            f'[[tokens]]\nprincipal = "{name}"\nsha256 = "{hashlib.sha256(tok.encode()).hexdigest()}"\n\n'
            for name, tok in tokens.items()
        )
    )
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(textwrap.dedent(POLICY))
    audit_path = tmp_path / "audit.jsonl"
    settings = load_settings(
        None,
        env={},
        overrides={
            "data_dir": str(data),
            "access.tokens_file": str(tokens_path),
            "access.policy_file": str(policy_path),
            "access.refresh_seconds": refresh_seconds,
            "access.reload_seconds": 0.0,
            "audit.sink": "file",
            "audit.path": str(audit_path),
            **({"store.url": store_url} if store_url else {}),
            **overrides,
        },
    )
    service = build_service(settings)
    keyring = service.keyring
    keyring.create("customer-pii", Purpose.ENCRYPT, "setup")
    keyring.create("scratch", Purpose.ENCRYPT, "setup")
    keyring.create("pan", Purpose.FPE, "setup", format="pan")
    keyring.create("ssn", Purpose.FPE, "setup", format="ssn")
    clock = FakeClock()
    running = create_server(service, "127.0.0.1:0", clock=clock)
    store = running.governance.store
    secrets = {}
    for name in ("alice", "bob", "carol"):
        secret = totp.new_secret()
        store.put_operator(
            Operator(name, service.kek.wrap(secret, totp.totp_binding(name)), clock(), "setup", 0)
        )
        secrets[name] = secret
    store.revoke("carol", "setup", clock())
    running.governance.guard.revoked.invalidate()
    return Env(service, running, tokens, secrets, clock, data, policy_path, tokens_path, audit_path)
