"""Vault Transit KEK: batched vs one-at-a-time cold start, and Tink's per-message KMS envelope.

Runs against the Transit double (tests/fakes/vault_transit.py: real HTTP on 127.0.0.1,
Python crypto), so absolute numbers are the double's, not a Vault cluster's; the ratios show
the cost of one HTTP round trip per item, which a real Vault over a network only widens.

1. Cold start: the keyring must unwrap N wrapped DEKs (one per key version). keysvc's
   ``VaultTransitProvider.unwrap_many`` sends them in ``batch_input`` requests; the
   alternative is one ``decrypt`` call per DEK.
2. "Without this service": each field is sealed with Tink's ``KmsEnvelopeAead`` whose remote
   AEAD is ``tink.integration.hcvault`` — a fresh DEK per message and one Vault call to wrap
   it (and one to unwrap it on decrypt).

    python -m bench.vault [--deks 200] [--fields 300] [--repeat 3] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import hvac
import tink
from tink import aead
from tink.integration import hcvault

from keysvc.config import VaultSettings
from keysvc.kek.vault_transit import VaultTransitProvider
from tests.fakes.vault_transit import VaultTransitDouble

KEK = "keysvc-kek"
TINK_KEY = "tink-kek"


def _best_of(repeat: int, run: Callable[[], object]) -> float:
    """Median wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def setup_keys(vault: VaultTransitDouble) -> None:
    client = hvac.Client(url=vault.url, token=vault.root_token)
    try:
        client.secrets.transit.create_key(KEK, derived=True)
        client.secrets.transit.create_key(TINK_KEY)  # Tink's integration sends no context: not derived
    finally:
        client.adapter.close()


def bench_cold_start(vault: VaultTransitDouble, n: int, repeat: int) -> tuple[float, float]:
    """Seconds to unwrap ``n`` DEKs: (batched unwrap_many, one unwrap call each)."""
    provider = VaultTransitProvider(VaultSettings(addr=vault.url, token=vault.root_token, key=KEK))
    try:
        provider.check()
        deks = [os.urandom(32) for _ in range(n)]
        items = [(provider.wrap(dek, b"bench|key=%d|version=1" % i), b"bench|key=%d|version=1" % i)
                 for i, dek in enumerate(deks)]
        assert provider.unwrap_many(items) == deks
        batched = _best_of(repeat, lambda: provider.unwrap_many(items))
        single = _best_of(repeat, lambda: [provider.unwrap(w, b) for w, b in items])
    finally:
        provider.close()
    return batched, single


def bench_tink_envelope(vault: VaultTransitDouble, fields: int, repeat: int) -> tuple[float, float]:
    """Fields per second (encrypt, decrypt) with Tink's KmsEnvelopeAead over hcvault."""
    aead.register()
    client = hvac.Client(url=vault.url, token=vault.root_token)
    try:
        envelope = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM,
                                        hcvault.new_aead(f"transit/keys/{TINK_KEY}", client))
        values = [b"4111 1111 1111 %04d" % i for i in range(fields)]
        sealed = [envelope.encrypt(v, b"field=pan") for v in values]
        if [envelope.decrypt(c, b"field=pan") for c in sealed] != values:
            raise tink.TinkError("round trip failed")
        enc = _best_of(repeat, lambda: [envelope.encrypt(v, b"field=pan") for v in values])
        dec = _best_of(repeat, lambda: [envelope.decrypt(c, b"field=pan") for c in sealed])
    finally:
        client.adapter.close()
    return fields / enc, fields / dec


def bench_steady_state(vault: VaultTransitDouble, seconds: float) -> tuple[float, float]:
    """Batch Encrypt fields/s through the service with the local KEK and with Vault Transit."""
    from bench._harness import keysvc_server, pipelined
    from keysvc_client import KeyServiceClient
    from keysvc_client._pb.keysvc.v1 import crypto_pb2

    rates = []
    vault_args = ("--kek-provider", "vault-transit", "--vault-key", KEK)
    for extra, env in (((), {}), (vault_args, {"VAULT_ADDR": vault.url, "VAULT_TOKEN": vault.root_token})):
        with keysvc_server(*extra, env=env) as (address, token), KeyServiceClient(address, token) as client:
            client.admin.create_key("customer-pii", "encrypt")
            request = crypto_pb2.EncryptRequest(key="customer-pii", context={"field": "ssn"}, items=[
                crypto_pb2.EncryptItem(plaintext=b"123-45-6789") for _ in range(1000)])
            metadata = (("authorization", f"Bearer {token}"),)

            def call(req: object, metadata: tuple[tuple[str, str], ...] = metadata) -> object:
                return client._crypto.Encrypt.future(req, metadata=metadata, timeout=30)

            pipelined(call, request, 0.5, 2)
            rates.append(pipelined(call, request, seconds, 2) * 1000)
    return rates[0], rates[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--deks", type=int, default=200, help="wrapped DEKs to unwrap at cold start")
    parser.add_argument("--fields", type=int, default=300, help="fields to seal with Tink's envelope")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--seconds", type=float, default=3.0, help="steady-state measurement time")
    args = parser.parse_args(argv)
    with VaultTransitDouble() as vault:
        setup_keys(vault)
        vault.reset_counts()
        batched, single = bench_cold_start(vault, args.deks, args.repeat)
        print(f"cold start, {args.deks} DEKs: unwrap_many {batched * 1000:.1f} ms, "
              f"one call each {single * 1000:.1f} ms, ratio {single / batched:.1f}x")
        vault.reset_counts()
        enc, dec = bench_tink_envelope(vault, args.fields, args.repeat)
        calls = sum(vault.requests_to(f"transit/{op}/{TINK_KEY}") for op in ("encrypt", "decrypt"))
        messages = 2 * args.fields * (args.repeat + 1)
        print(f"tink KmsEnvelopeAead + hcvault, {args.fields} fields: encrypt {enc:.0f} fields/s, "
              f"decrypt {dec:.0f} fields/s ({calls / messages:.1f} Vault calls per message)")
        local, with_vault = bench_steady_state(vault, args.seconds)
        print(f"steady-state batch Encrypt: local KEK {local:,.0f} fields/s, "
              f"Vault KEK {with_vault:,.0f} fields/s, ratio {with_vault / local:.2f} (target >= 0.95)")
        print(f"speed-up over Tink's per-message Vault envelope: {with_vault / enc:,.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
