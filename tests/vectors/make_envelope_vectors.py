"""Regenerate tests/vectors/envelope_v1.json (run from the repo root).

The vectors are built with raw AES-GCM from `cryptography` and the byte layout in
docs/FORMATS.md, not with keysvc.crypto.envelope, so the test checks the code
against the written format rather than against itself.
"""

import json
import struct
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

CASES = [
    {"name": "empty context", "key": "customer-pii", "version": 1, "plaintext": "123-45-6789", "context": {}},
    {
        "name": "one context pair",
        "key": "customer-pii",
        "version": 7,
        "plaintext": "4111111111111111",
        "context": {"field": "pan"},
    },
    {
        "name": "context sorted by key bytes",
        "key": "k",
        "version": 4294967295,
        "plaintext": "",
        "context": {"tenant": "acme", "field": "notes", "Z": "upper sorts first"},
    },
    {
        "name": "unicode",
        "key": "notes.v2",
        "version": 2,
        "plaintext": "caf\u00e9 \u2603",
        "context": {"lang": "fr"},
    },
]
DEK = bytes(range(32))
NONCE = bytes.fromhex("000102030405060708090a0b")


def context_bytes(ctx: dict[str, str]) -> bytes:
    pairs = sorted((k.encode(), v.encode()) for k, v in ctx.items())
    out = struct.pack(">I", len(pairs))
    for k, v in pairs:
        out += struct.pack(">I", len(k)) + k + struct.pack(">I", len(v)) + v
    return out


def build(case: dict) -> dict:
    name = case["key"].encode()
    header = bytes((1, 1, len(name))) + name + struct.pack(">I", case["version"])
    aad = header + context_bytes(case["context"])
    ct = header + NONCE + AESGCM(DEK).encrypt(NONCE, case["plaintext"].encode(), aad)
    return {**case, "dek": DEK.hex(), "nonce": NONCE.hex(), "aad": aad.hex(), "ciphertext": ct.hex()}


if __name__ == "__main__":
    doc = {
        "provenance": "keysvc envelope format v1 (docs/FORMATS.md), built independently of keysvc with "
        "cryptography's AESGCM by tests/vectors/make_envelope_vectors.py",
        "vectors": [build(c) for c in CASES],
    }
    Path("tests/vectors/envelope_v1.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
