"""The Vault Transit KEK provider: the only module in keysvc that imports hvac.

Wrapping is ``transit/encrypt/<key>`` with ``context`` = base64(binding) on a *derived*
Transit key (``derived=true``: Vault derives a per-binding key with HKDF-SHA256), so a
wrapped DEK only decrypts under the binding it was made with. ``associated_data`` is not
used: ``transit/rewrap`` cannot pass it (hashicorp/vault#29532, #31791), and KEK rotation
must be able to rewrap every DEK inside Vault, without the plaintext leaving it.
Wrapped values are Vault's ASCII ciphertexts ``vault:v<N>:<base64>``. Derivation also
means each binding has its own AES-GCM key, so the 2^32 random-nonce limit applies per
binding (a handful of wraps each), not per Transit key version.

``unwrap_many`` and ``rewrap_many`` send ``batch_input`` requests of up to ``batch_size``
items. If any item of a batch does not decrypt, the whole call raises ``DecryptionFailed``
(the interface returns values, not per-item errors); the keyring can fall back to single
unwraps to find the bad one.

Every Vault call's timeout is ``keysvc.deadlines.timeout(request_timeout_seconds)``, so it
never outlives the caller's gRPC deadline. Calls that are safe to repeat (encrypt, decrypt,
rewrap, reads) are retried up to ``max_retries`` times with jittered exponential backoff
while the deadline allows; rotate is not (a lost reply would create two versions). After
``breaker_failures`` consecutive failed attempts a circuit breaker opens and calls fail
fast with ``KekUnavailable``; ``breaker_reset_seconds`` later one trial call is let
through, and its success closes the breaker.

Authentication: ``token`` (``VAULT_TOKEN`` or ``token_file``; a renewable token is renewed
with ``renew-self`` once two thirds of its TTL have passed, checked before each call),
``approle`` or ``kubernetes`` (logged in again at two thirds of the token TTL, and once
more when Vault answers 403). Secret files are read at each login, so rotated secrets work.

Errors: :meth:`VaultTransitProvider._translate` is the single place where hvac and
requests exceptions become domain errors. Messages are static: they never carry a DEK,
a ciphertext, a token or text from a Vault response, and the original exception is not
chained (hvac's message for a failed batch is the raw body, successful plaintexts included).
"""

from __future__ import annotations

import base64
import binascii
import enum
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import requests
from hvac.api.auth_methods import Kubernetes

from keysvc import deadlines
from keysvc.config import VaultSettings
from keysvc.errors import DecryptionFailed, FailedPrecondition, KekUnavailable, KeysvcError
from keysvc.kek.base import KekHealth

log = logging.getLogger(__name__)

Json = dict[str, Any]

_WRAPPED = re.compile(rb"vault:v(\d+):[A-Za-z0-9+/]+={0,2}")
_AEAD_TYPES = frozenset({"aes256-gcm96", "aes128-gcm96", "chacha20-poly1305"})
_PARTIAL_FAILURE_CODE = 207
_BACKOFF_BASE = 0.05
_BACKOFF_CAP = 1.0
_MIN_TIMEOUT = 0.001
_VAULT_ERRORS = (hvac.exceptions.VaultError, requests.exceptions.ConnectionError, requests.exceptions.Timeout)
_UNAVAILABLE = (hvac.exceptions.VaultDown, hvac.exceptions.InternalServerError, hvac.exceptions.BadGateway,
                hvac.exceptions.RateLimitExceeded, hvac.exceptions.VaultNotInitialized,
                hvac.exceptions.UnexpectedError)


class _Op(enum.Enum):
    CHECK_AUTH = "check-auth"
    CHECK_KEY = "check-key"
    LOGIN = "login"
    WRAP = "encrypt"
    UNWRAP = "decrypt"
    REWRAP = "rewrap"
    ROTATE = "rotate"


class _Next(enum.Enum):
    RETRY = "retry"  # Vault unreachable or failing: back off, try again; counts towards the breaker
    REAUTH = "reauth"  # Vault refused the token: authenticate again once
    RAISE = "raise"  # Vault answered: the error is final


@dataclass(frozen=True)
class _Lease:
    """When the current token must be renewed (token auth) or replaced by a new login."""

    renewable: bool
    refresh_at: float


class _DeadlineAdapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]
    """hvac's JSON adapter with every request's timeout bounded by the caller's deadline."""

    def __init__(self, *args: Any, default_timeout: float = 5.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_timeout = default_timeout

    def request(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = max(deadlines.timeout(self.default_timeout), _MIN_TIMEOUT)
        return super().request(*args, **kwargs)


class _Breaker:
    """Consecutive-failure circuit breaker with a single half-open trial."""

    def __init__(self, threshold: int, reset_seconds: float, clock: Callable[[], float]) -> None:
        self._threshold = max(1, threshold)
        self._reset = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial: int | None = None

    @property
    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None

    def allow(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial is None and self._clock() - self._opened_at >= self._reset:
                self._trial = threading.get_ident()
                return True
            return False

    def success(self) -> None:
        with self._lock:
            if self._opened_at is not None:
                log.warning("vault circuit breaker closed", extra={"provider": VaultTransitProvider.name})
            self._failures, self._opened_at, self._trial = 0, None, None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial is not None or (self._opened_at is None and self._failures >= self._threshold):
                if self._trial is None:
                    log.warning("vault circuit breaker opened",
                                extra={"provider": VaultTransitProvider.name, "count": self._failures})
                self._opened_at, self._trial = self._clock(), None

    def release(self) -> None:
        """End this thread's trial if it ended without a verdict."""
        with self._lock:
            if self._trial == threading.get_ident():
                self._trial = None


class VaultTransitProvider:
    """Wraps DEKs with Vault Transit (see the module docstring for the contract)."""

    name = "vault"

    def __init__(self, settings: VaultSettings, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, batch_size: int = 250) -> None:
        _validate(settings)
        self._settings = settings
        self._clock = clock
        self._sleep = sleep
        self._batch_size = max(1, batch_size)
        self._random = random.Random()
        self._breaker = _Breaker(settings.breaker_failures, settings.breaker_reset_seconds, clock)
        self._auth_lock = threading.RLock()
        self._lease: _Lease | None = None
        self._token_refused = False
        cert = (settings.client_cert, settings.client_key) if settings.client_cert else ()
        # cert=() rather than None and an explicit token: hvac would otherwise read VAULT_CLIENT_CERT,
        # VAULT_TOKEN and ~/.vault-token itself; VaultSettings is the one source.
        timeout = settings.request_timeout_seconds
        self._client = hvac.Client(url=settings.addr, token="", cert=cert, verify=settings.cacert or True,
                                   namespace=settings.namespace or None, timeout=timeout,
                                   adapter=_DeadlineAdapter, default_timeout=timeout)
        base = f"/v1/{settings.mount.strip('/')}"
        self._key_path = f"{base}/keys/{settings.key}"
        self._encrypt_path = f"{base}/encrypt/{settings.key}"
        self._decrypt_path = f"{base}/decrypt/{settings.key}"
        self._rewrap_path = f"{base}/rewrap/{settings.key}"

    # KekProvider ------------------------------------------------------------------------------

    def wrap(self, dek: bytes, binding: bytes) -> bytes:
        body = {"plaintext": _b64(dek), "context": _context(binding)}
        return _wrapped(_data(self._call(_Op.WRAP, "POST", self._encrypt_path, body)).get("ciphertext"))

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        body = {"ciphertext": _ciphertext(wrapped), "context": _context(binding)}
        return _plaintext(_data(self._call(_Op.UNWRAP, "POST", self._decrypt_path, body)).get("plaintext"))

    def unwrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Unwrap in ``batch_input`` requests; DecryptionFailed if any item fails."""
        out: list[bytes] = []
        for chunk in _chunks(items, self._batch_size):
            batch = [{"ciphertext": _ciphertext(w), "context": _context(b)} for w, b in chunk]
            body = {"batch_input": batch, "partial_failure_response_code": _PARTIAL_FAILURE_CODE}
            results = _batch_results(self._call(_Op.UNWRAP, "POST", self._decrypt_path, body), len(batch))
            out.extend(_plaintext(result.get("plaintext")) for result in results)
        return out

    def rewrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        """Rewrap inside Vault (``transit/rewrap``); DecryptionFailed if any item fails."""
        out: list[bytes] = []
        for chunk in _chunks(items, self._batch_size):
            batch = [{"ciphertext": _ciphertext(w), "context": _context(b)} for w, b in chunk]
            body = {"batch_input": batch}
            results = _batch_results(self._call(_Op.REWRAP, "POST", self._rewrap_path, body), len(batch))
            out.extend(_wrapped(result.get("ciphertext")) for result in results)
        return out

    def rotate(self) -> int:
        """Rotate the Transit key (not retried: a lost reply must not create two versions)."""
        data = _data(self._call(_Op.ROTATE, "POST", f"{self._key_path}/rotate", retry=False))
        if "latest_version" not in data:  # older Vault versions answer 204 without a body
            data = _data(self._call(_Op.ROTATE, "GET", self._key_path))
        return _version(data.get("latest_version"))

    def current_version(self) -> int:
        return _version(_data(self._call(_Op.CHECK_KEY, "GET", self._key_path)).get("latest_version"))

    def kek_version(self, wrapped: bytes) -> int:
        match = _WRAPPED.fullmatch(wrapped)
        if match is None:
            raise DecryptionFailed()
        return int(match.group(1)) or 1  # Vault reads v0 as v1

    def health(self) -> KekHealth:
        """``sys/health`` (a standby is fine: it forwards), the breaker and the last auth outcome."""
        try:
            response = self._client.sys.read_health_status(method="GET", standby_ok=True,
                                                           performance_standby_code=200)
        except _VAULT_ERRORS:
            return KekHealth(ok=False, detail="vault unreachable")
        status = 200 if isinstance(response, dict) else int(response.status_code)
        if status == 503:
            return KekHealth(ok=False, detail="vault sealed")
        if status != 200:
            return KekHealth(ok=False, detail=f"vault health status {status}")
        if self._breaker.is_open:
            return KekHealth(ok=False, detail="circuit breaker open after failed vault calls")
        if self._token_refused:
            return KekHealth(ok=False, detail="vault refused the token")
        return KekHealth(ok=True)

    def close(self) -> None:
        self._client.adapter.close()

    # start-up check ---------------------------------------------------------------------------

    def check(self) -> None:
        """At start: authenticate and verify the Transit key; FailedPrecondition says what to fix."""
        data = _data(self._call(_Op.CHECK_KEY, "GET", self._key_path, auth_op=_Op.CHECK_AUTH))
        if data.get("derived") is not True:
            raise FailedPrecondition(
                f"Vault Transit key {self._key_ref} is not derived, so it cannot bind a wrapped DEK to its "
                f"key: derivation cannot be enabled later, create a new key with "
                f"`{self._vault_cli} write -f {self._mount}/keys/<key> derived=true` and set vault.key to it")
        if data.get("type") not in _AEAD_TYPES:
            raise FailedPrecondition(
                f"Vault Transit key {self._key_ref} is not an encryption key: create one with "
                f"`{self._vault_cli} write -f {self._mount}/keys/<key> derived=true` and set vault.key to it")

    # calls, retries, breaker ------------------------------------------------------------------

    def _call(self, op: _Op, method: str, path: str, body: Json | None = None, *, retry: bool = True,
              auth_op: _Op = _Op.LOGIN) -> Json:
        """One logical Vault call: auth, deadline-bounded attempts, backoff and the breaker."""
        attempts = 1 + (max(0, self._settings.max_retries) if retry else 0)
        attempt, reauthenticated = 0, False
        while True:
            if deadlines.timeout(math.inf) <= 0 or not self._breaker.allow():
                raise KekUnavailable()
            try:
                outcome = self._attempt(op, auth_op, method, path, body)
            finally:
                self._breaker.release()
            if isinstance(outcome, dict):
                self._token_refused = False
                return outcome
            error, action, used_token = outcome
            if action is _Next.REAUTH:
                if not reauthenticated and self._reauthenticate(used_token):
                    reauthenticated = True
                    continue
                self._token_refused = True
                raise error
            attempt += 1
            if action is _Next.RAISE or attempt >= attempts:
                raise error
            delay = self._backoff(attempt)
            if delay >= deadlines.timeout(math.inf):
                raise error
            self._sleep(delay)

    def _attempt(self, op: _Op, auth_op: _Op, method: str, path: str,
                 body: Json | None) -> Json | tuple[KeysvcError, _Next, str]:
        phase, token = auth_op, ""
        try:
            self._ensure_token()
            phase, token = op, self._client.token
            response = self._client.adapter.request(method, path, json=body)
        except _VAULT_ERRORS as exc:
            error, action = self._translate(exc, phase)
        else:
            self._breaker.success()
            return _json(response)
        if action is _Next.RETRY:
            self._breaker.failure()
        else:
            self._breaker.success()
        return error, action, token

    def _backoff(self, attempt: int) -> float:
        ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _translate(self, exc: Exception, op: _Op) -> tuple[KeysvcError, _Next]:
        """The one place hvac and requests exceptions become domain errors (and what to do next)."""
        extra = {"provider": self.name, "error_type": type(exc).__name__, "method": op.value}
        if isinstance(exc, requests.exceptions.SSLError) and op in (_Op.CHECK_AUTH, _Op.CHECK_KEY):
            return FailedPrecondition(
                f"TLS with Vault at {self._settings.addr} failed: check vault.addr, vault.cacert and the "
                f"client certificate"), _Next.RAISE
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, *_UNAVAILABLE)):
            log.warning("vault call failed", extra=extra)
            return KekUnavailable(), _Next.RETRY
        log.info("vault refused a call", extra=extra)
        vault_errors = getattr(exc, "errors", None) or []
        if isinstance(exc, hvac.exceptions.Forbidden | hvac.exceptions.Unauthorized):
            if op is _Op.CHECK_AUTH:
                return FailedPrecondition(self._auth_hint()), _Next.RAISE
            if op is _Op.CHECK_KEY:
                return FailedPrecondition(
                    f"Vault denied reading {self._mount}/keys/{self._settings.key}: the token's policy needs "
                    f"read on it and update on {self._mount}/encrypt|decrypt|rewrap/{self._settings.key}"
                ), _Next.RAISE
            return KekUnavailable(), _Next.REAUTH
        if op is _Op.CHECK_AUTH:
            return FailedPrecondition(self._auth_hint()), _Next.RAISE
        if isinstance(exc, hvac.exceptions.InvalidPath) and op is _Op.CHECK_KEY:
            if vault_errors:  # Vault lists a reason only when the whole mount is missing
                return FailedPrecondition(
                    f"Vault has no Transit engine at {self._mount}/: run `{self._vault_cli} secrets enable "
                    f"-path={self._mount} transit`, then `{self._vault_cli} write -f {self._mount}/keys/"
                    f"{self._settings.key} derived=true`"), _Next.RAISE
            return FailedPrecondition(
                f"Vault Transit key {self._key_ref} does not exist: run "
                f"`{self._vault_cli} write -f {self._mount}/keys/{self._settings.key} derived=true`"
            ), _Next.RAISE
        if (isinstance(exc, hvac.exceptions.InvalidRequest) and op in (_Op.UNWRAP, _Op.REWRAP)
                and "encryption key not found" not in vault_errors):
            return DecryptionFailed(), _Next.RAISE
        return KekUnavailable(), _Next.RAISE

    # authentication ---------------------------------------------------------------------------

    def _ensure_token(self) -> None:
        with self._auth_lock:
            if self._lease is None:
                self._authenticate()
            elif self._clock() >= self._lease.refresh_at:
                if self._settings.auth != "token":
                    self._authenticate()
                elif self._lease.renewable:
                    auth = _json(self._client.auth.token.renew_self()).get("auth") or {}
                    self._lease = self._new_lease(auth.get("lease_duration"), renewable=True)

    def _authenticate(self) -> None:
        s = self._settings
        if s.auth == "token":
            self._client.token = s.token or _read(s.token_file, "vault.token_file")
            data = _data(_json(self._client.auth.token.lookup_self()))
            self._lease = self._new_lease(data.get("ttl"), renewable=data.get("renewable") is True)
            return
        if s.auth == "approle":
            response = self._client.auth.approle.login(
                s.role_id, _read(s.secret_id_file, "vault.secret_id_file"), mount_point=self._auth_mount)
        else:
            response = Kubernetes(self._client.adapter).login(
                s.role, _read(s.jwt_file, "vault.jwt_file"), mount_point=self._auth_mount)
        auth = _json(response).get("auth") or {}
        self._lease = self._new_lease(auth.get("lease_duration"), renewable=False)
        log.info("logged in to vault", extra={"provider": self.name, "method": s.auth})

    def _new_lease(self, ttl: object, *, renewable: bool) -> _Lease:
        seconds = ttl if isinstance(ttl, int | float) and not isinstance(ttl, bool) else 0
        refresh_at = self._clock() + seconds * 2 / 3 if seconds > 0 else math.inf
        if self._settings.auth == "token" and not renewable:
            refresh_at = math.inf  # nothing to do before it expires
        return _Lease(renewable=renewable, refresh_at=refresh_at)

    def _reauthenticate(self, used_token: str) -> bool:
        """After a 403: True if a retry may now succeed (new login, or a new token in token_file)."""
        s = self._settings
        with self._auth_lock:
            if self._client.token != used_token:
                return True  # another thread already authenticated again
            if s.auth != "token":
                self._lease = None
                log.warning("vault refused the token; logging in again", extra={"provider": self.name})
                return True
            if not s.token and s.token_file and _read(s.token_file, "vault.token_file") != used_token:
                self._lease = None
                return True
            log.warning("vault refused the token", extra={"provider": self.name})
            return False

    # naming -----------------------------------------------------------------------------------

    @property
    def _mount(self) -> str:
        return self._settings.mount.strip("/")

    @property
    def _key_ref(self) -> str:
        ns = f" in namespace {self._settings.namespace}" if self._settings.namespace else ""
        return f"{self._mount}/keys/{self._settings.key}{ns}"

    @property
    def _vault_cli(self) -> str:
        return f"vault -namespace={self._settings.namespace}" if self._settings.namespace else "vault"

    @property
    def _auth_mount(self) -> str:
        return self._settings.auth_mount.strip("/") or self._settings.auth

    def _auth_hint(self) -> str:
        s = self._settings
        if s.auth == "token":
            return ("Vault refused the token (missing, expired or revoked): set VAULT_TOKEN or "
                    "vault.token_file to a valid token")
        if s.auth == "approle":
            return (f"Vault AppRole login at auth/{self._auth_mount}/login failed: check vault.role_id and "
                    f"the secret ID in {s.secret_id_file}")
        return (f"Vault Kubernetes login at auth/{self._auth_mount}/login failed for role {s.role}: check "
                f"the role and the service-account token in {s.jwt_file}")


def _validate(s: VaultSettings) -> None:
    problems = []
    if s.auth not in ("token", "approle", "kubernetes"):
        problems.append("vault.auth must be token, approle or kubernetes")
    if s.auth == "token" and not (s.token or s.token_file):
        problems.append("no Vault token: set VAULT_TOKEN or vault.token_file")
    if s.auth == "approle" and not (s.role_id and s.secret_id_file):
        problems.append("vault.auth = approle needs vault.role_id and vault.secret_id_file")
    if s.auth == "kubernetes" and not (s.role and s.jwt_file):
        problems.append("vault.auth = kubernetes needs vault.role and vault.jwt_file")
    if bool(s.client_cert) != bool(s.client_key):
        problems.append("vault.client_cert and vault.client_key must be set together")
    for name, path in (("cacert", s.cacert), ("client_cert", s.client_cert), ("client_key", s.client_key)):
        if path and not Path(path).is_file():
            problems.append(f"vault.{name} is not a file: {path}")
    if not s.key or not s.mount.strip("/"):
        problems.append("vault.mount and vault.key must be set")
    if problems:
        raise FailedPrecondition("; ".join(problems))


def _read(path: str, setting: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError:
        raise FailedPrecondition(f"cannot read {setting}: {path}") from None
    if not value:
        raise FailedPrecondition(f"{setting} is empty: {path}")
    return value


def _chunks(items: Sequence[tuple[bytes, bytes]], size: int) -> Iterator[Sequence[tuple[bytes, bytes]]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _context(binding: bytes) -> str:
    if not binding:
        raise ValueError("a binding is required: it is the derivation context of the wrapped DEK")
    return _b64(binding)


def _ciphertext(wrapped: bytes) -> str:
    if _WRAPPED.fullmatch(wrapped) is None:
        raise DecryptionFailed()
    return wrapped.decode("ascii")


def _json(response: Any) -> Json:
    """hvac's JSONAdapter gives a dict for 200 and the Response for other 2xx codes."""
    if isinstance(response, dict):
        return response
    if response.status_code == 204:
        return {}
    try:
        doc = response.json()
    except requests.exceptions.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        raise KekUnavailable()
    return doc


def _data(doc: Json) -> Json:
    data = doc.get("data")
    if data is None and not doc:
        return {}
    if not isinstance(data, dict):
        raise KekUnavailable()
    return data


def _batch_results(doc: Json, count: int) -> list[Json]:
    results = _data(doc).get("batch_results")
    if not isinstance(results, list) or len(results) != count:
        raise KekUnavailable()
    if not all(isinstance(result, dict) for result in results):
        raise KekUnavailable()
    if any(result.get("error") for result in results):
        raise DecryptionFailed()
    return results


def _wrapped(value: object) -> bytes:
    if not isinstance(value, str) or _WRAPPED.fullmatch(value.encode("ascii", "replace")) is None:
        raise KekUnavailable()
    return value.encode("ascii")


def _plaintext(value: object) -> bytes:
    if not isinstance(value, str):
        raise KekUnavailable()
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise KekUnavailable() from None


def _version(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise KekUnavailable()
    return value
