"""Operator second factor: RFC 6238 TOTP (SHA-1, 6 digits, 30 s), via ``cryptography``.

A code is accepted for the current 30-second step or one step either side (clock skew).
``verify`` returns the matching step; the caller records it as the operator's last used
step with a conditional update, so a code (or an earlier one) can never be used twice.

Secrets are 20 random bytes, stored only wrapped by the KEK provider under the binding
``totp_binding(name)``, so a wrapped secret cannot be moved to another operator.
"""

from __future__ import annotations

import base64
import hmac
import os
import time
from urllib.parse import quote

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from keysvc.crypto.context import encode_context

STEP_SECONDS = 30
DIGITS = 6
SKEW_STEPS = 1
ISSUER = "keysvc"
OTP_METADATA_KEY = "x-keysvc-otp"


def new_secret() -> bytes:
    return os.urandom(20)


def totp_binding(operator: str) -> bytes:
    return b"keysvc-totp-v1" + encode_context({"operator": operator})


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, DIGITS, SHA1(), STEP_SECONDS, enforce_key_length=False)  # noqa: S303 (RFC 6238)


def code_at(secret: bytes, at: float) -> str:
    return _totp(secret).generate(int(at)).decode()


def verify(secret: bytes, code: str, now: float | None = None) -> int | None:
    """The step a valid ``code`` belongs to (within the skew window), else None."""
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = time.time() if now is None else now
    step = int(now // STEP_SECONDS)
    totp = _totp(secret)
    found = None
    for candidate in range(step - SKEW_STEPS, step + SKEW_STEPS + 1):
        expected = totp.generate(candidate * STEP_SECONDS)
        if hmac.compare_digest(expected, code.encode()):
            found = candidate
    return found


def provisioning_uri(secret: bytes, operator: str) -> str:
    """The otpauth:// URI an authenticator app enrols from (holds the secret: show it once)."""
    b32 = base64.b32encode(secret).decode().rstrip("=")
    label = quote(f"{ISSUER}:{operator}", safe="")
    return (
        f"otpauth://totp/{label}?secret={b32}&issuer={ISSUER}&algorithm=SHA1"
        f"&digits={DIGITS}&period={STEP_SECONDS}"
    )
