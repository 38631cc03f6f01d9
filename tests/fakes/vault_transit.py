"""A Vault Transit-compatible HTTP server for tests: real HTTP, Vault's JSON bodies, codes and messages.

No Vault binary can be installed here, so this double follows Vault's documented API
(developer.hashicorp.com/vault/api-docs/secret/transit, summarised with the exact error texts
in shared/reference/vault-transit.md) and hvac talks to it over real HTTP, as to Vault. The
tests that use it also run against a real Vault (see ``tests/fakes/vault_fixtures.py``).

Implemented (under each transit mount, per ``X-Vault-Namespace``): ``keys`` (LIST),
``keys/:name`` (POST create, GET read, DELETE), ``keys/:name/config``, ``keys/:name/rotate``,
``encrypt|decrypt|rewrap/:name`` (single and ``batch_input`` with ``reference``, ``context``
on derived keys, ``associated_data``, ``key_version``, ``partial_failure_response_code``),
``datakey/plaintext|wrapped/:name``; ``sys/health``; ``auth/token/lookup-self|renew-self``;
``auth/<mount>/login`` for AppRole and Kubernetes roles configured on the double; ``sys/mounts``
(list, and enable a transit mount).

Crypto is Vault's: ciphertexts are ``vault:v<N>:`` + base64(nonce12 || ct || tag16); a
derived key is HKDF-SHA256(version key, salt=None, info=context); convergent (v3) nonces are
HMAC-SHA256(derived nonce key, plaintext)[:12]. Only the AEAD key types (aes128-gcm96,
aes256-gcm96, chacha20-poly1305) can be created. Not implemented (404 "unsupported path"):
trim, export, backup/restore, BYOK import, sign/verify/hmac, cache-config, config/keys;
namespaces given as a path prefix (only the header is honoured); token policies (every
valid token may do everything).

Fault injection: :meth:`down`/:meth:`up` (connection refused on the same port),
:meth:`slow`, :meth:`fail_with`, :meth:`seal`/:meth:`unseal`, :meth:`expire_token`; every
request is recorded (:meth:`requests_to`, :attr:`requests`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http
import json
import os
import re
import secrets
import socket
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

Json = dict[str, Any]

_KEY_SIZES = {"aes128-gcm96": 16, "aes256-gcm96": 32, "chacha20-poly1305": 32}
_OTHER_TYPES = frozenset({"ed25519", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "rsa-2048", "rsa-3072",
                          "rsa-4096", "hmac"})
_AUTH_FAILED = "cipher: message authentication failed"
_MISSING_CONTEXT = ("missing 'context' for key derivation; the key was created using a derived key, which "
                    "means additional, per-request information must be included in order to perform "
                    "operations with the key")
_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
_B64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/")
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Reply(Exception):
    """An HTTP answer raised from inside a handler."""

    def __init__(self, status: int, body: Json | None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


class _ItemError(Exception):
    """A user error for one encrypt/decrypt/rewrap item (Vault's errutil.UserError)."""


class _Drop(Exception):
    """The double went down while this request waited: close the connection, answer nothing."""


def _errors(status: int, *messages: str) -> _Reply:
    return _Reply(status, {"errors": list(messages)})


def _go_b64decode(text: str) -> bytes:
    """Go's ``base64.StdEncoding.DecodeString``: same acceptance, same error text."""
    n, si = len(text), 0
    quanta: list[str] = []
    while True:
        quantum = ""
        while len(quantum) < 4:
            if si == n:
                if not quantum:
                    return base64.b64decode("".join(quanta))
                raise _ItemError(f"illegal base64 data at input byte {si - len(quantum)}")
            char = text[si]
            si += 1
            if char in _B64_ALPHABET:
                quantum += char
                continue
            if char in "\r\n":
                continue
            if char != "=" or len(quantum) < 2:
                raise _ItemError(f"illegal base64 data at input byte {si - 1}")
            if len(quantum) == 2:
                while si < n and text[si] in "\r\n":
                    si += 1
                if si == n:
                    raise _ItemError(f"illegal base64 data at input byte {n}")
                if text[si] != "=":
                    raise _ItemError(f"illegal base64 data at input byte {si - 1}")
                si += 1
            while si < n and text[si] in "\r\n":
                si += 1
            if si < n:
                raise _ItemError(f"illegal base64 data at input byte {si}")
            quanta.append(quantum + "=" * (4 - len(quantum)))
            return base64.b64decode("".join(quanta))
        quanta.append(quantum)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _duration(value: object, what: str) -> int:
    """Vault's duration fields: integer seconds or a string like ``90s``, ``1h30m``."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise _errors(400, f"invalid {what}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value)
    if text.isdigit():
        return int(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise _errors(400, f"invalid {what}")
    return sum(int(amount) * _UNITS[unit] for amount, unit in parts)


def _bool(body: Json, name: str, default: bool = False) -> bool:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "t"):
        return True
    if str(value).lower() in ("false", "0", "f", ""):
        return False
    raise _errors(400, f'error converting input {value} for field "{name}"')


def _int(source: Json, name: str, default: int = 0) -> int:
    value = source.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _errors(400, f'error converting input {value} for field "{name}"') from None


def _envelope(data: Json | None, *, warnings: list[str] | None = None, auth: Json | None = None,
              mount_type: str = "transit") -> Json:
    return {"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False, "lease_duration": 0,
            "data": data, "wrap_info": None, "warnings": warnings or None, "auth": auth,
            "mount_type": mount_type}


def _ignored(body: Json, known: frozenset[str]) -> list[str]:
    unknown = sorted(set(body) - known)
    return [f"Endpoint ignored these unrecognized parameters: [{' '.join(unknown)}]"] if unknown else []


@dataclass
class _Key:
    """One named Transit key: its versions (random key bytes) and its policy."""

    name: str
    type: str
    derived: bool
    convergent: bool
    exportable: bool
    allow_plaintext_backup: bool
    auto_rotate_period: int
    versions: dict[int, bytes] = field(default_factory=dict)
    created: dict[int, int] = field(default_factory=dict)
    deletion_allowed: bool = False
    min_decryption_version: int = 1
    min_encryption_version: int = 0

    @property
    def latest(self) -> int:
        return max(self.versions)

    def add_version(self, now: float) -> None:
        version = len(self.versions) + 1
        self.versions[version] = os.urandom(32 if self.derived else _KEY_SIZES[self.type])
        self.created[version] = int(now)

    def maybe_auto_rotate(self, now: float) -> None:
        if self.auto_rotate_period and now > self.created[self.latest] + self.auto_rotate_period:
            self.add_version(now)

    def body(self) -> Json:
        data: Json = {
            "name": self.name, "type": self.type, "derived": self.derived,
            "deletion_allowed": self.deletion_allowed, "exportable": self.exportable,
            "allow_plaintext_backup": self.allow_plaintext_backup,
            "keys": {str(v): t for v, t in sorted(self.created.items())},
            "latest_version": self.latest, "min_available_version": 0,
            "min_decryption_version": self.min_decryption_version,
            "min_encryption_version": self.min_encryption_version,
            "supports_encryption": True, "supports_decryption": True, "supports_derivation": True,
            "supports_signing": False, "auto_rotate_period": self.auto_rotate_period,
            "imported_key": False, "convergent_encryption": self.convergent,
        }
        if self.derived:
            data["kdf"] = "hkdf_sha256"
        if self.convergent:
            data["convergent_encryption_version"] = 3
        return data

    def _material(self, version: int, context: bytes) -> tuple[bytes, bytes]:
        """(encryption key, convergent nonce key) for one version and context."""
        size = _KEY_SIZES[self.type]
        raw = self.versions[version]
        if not self.derived:
            return raw, b""
        if not context:
            raise _ItemError(_MISSING_CONTEXT)
        extra = 32 if self.convergent else 0
        okm = HKDF(algorithm=hashes.SHA256(), length=size + extra, salt=None, info=context).derive(raw)
        return okm[:size], okm[size:]

    def _aead(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        return ChaCha20Poly1305(key) if self.type == "chacha20-poly1305" else AESGCM(key)

    def encrypt(self, plaintext: bytes, context: bytes, aad: bytes, version: int) -> tuple[str, int]:
        if version < 0:
            raise _ItemError("requested version for encryption is negative")
        if version > self.latest:
            raise _ItemError("requested version for encryption is higher than the latest key version")
        if version == 0:
            version = self.latest
        elif self.min_encryption_version > 0 and version < self.min_encryption_version:
            raise _ItemError("requested version for encryption is less than the minimum encryption key "
                             "version")
        key, nonce_key = self._material(version, context)
        if self.convergent:
            nonce = hmac.new(nonce_key, plaintext, hashlib.sha256).digest()[:12]
        else:
            nonce = os.urandom(12)
        sealed = nonce + self._aead(key).encrypt(nonce, plaintext, aad or None)
        return f"vault:v{version}:{_b64(sealed)}", version

    def decrypt(self, value: str, context: bytes, aad: bytes) -> bytes:
        if not value.startswith("vault:v"):
            raise _ItemError("invalid ciphertext: no prefix")
        fields = value[len("vault:v"):].split(":", 1)
        if len(fields) != 2:
            raise _ItemError("invalid ciphertext: wrong number of fields")
        if not re.fullmatch(r"[+-]?\d+", fields[0]):
            raise _ItemError("invalid ciphertext: version number could not be decoded")
        version = int(fields[0]) or 1
        if version > self.latest:
            raise _ItemError("invalid ciphertext: version is too new")
        if version < self.min_decryption_version:
            raise _ItemError(_TOO_OLD)
        try:
            sealed = _go_b64decode(fields[1])
        except _ItemError:
            raise _ItemError("invalid ciphertext: could not decode base64") from None
        key, _ = self._material(version, context)
        if len(sealed) < 12:
            raise _ItemError("invalid ciphertext length")
        try:
            return self._aead(key).decrypt(sealed[:12], sealed[12:], aad or None)
        except InvalidTag:
            raise _ItemError(_AUTH_FAILED) from None


@dataclass
class _Token:
    id: str
    policies: list[str]
    renewable: bool
    ttl: int
    issued_at: float
    expires_at: float | None
    max_expires_at: float | None
    path: str
    meta: dict[str, str] | None = None
    accessor: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    def valid(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def auth(self, now: float) -> Json:
        return {"client_token": self.id, "accessor": self.accessor, "policies": self.policies,
                "token_policies": self.policies, "metadata": self.meta,
                "lease_duration": self.remaining(now), "renewable": self.renewable, "entity_id": "",
                "token_type": "service", "orphan": self.path != "auth/token/create", "mfa_requirement": None,
                "num_uses": 0}

    def remaining(self, now: float) -> int:
        return 0 if self.expires_at is None else max(0, round(self.expires_at - now))


@dataclass
class _LoginRole:
    kind: str
    credentials: dict[str, str]
    role_name: str
    token_ttl: int
    token_max_ttl: int
    policies: list[str]


@dataclass
class Request:
    """One request the double received (``path`` without ``/v1/``; ``status`` once answered)."""

    method: str
    path: str
    namespace: str
    body: Json | None
    status: int | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = False

    def __init__(self, port: int, double: VaultTransitDouble) -> None:
        self.double = double
        self.halt = threading.Event()
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (timeouts, down()) are expected; anything else is a bug."""
        if not self.halt.is_set():
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stalls
    timeout = 30
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)
            if self.server.halt.is_set():
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.server.conns_lock:
            self.server.conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            status, body = self.server.double._handle(self.command, url.path, parse_qs(url.query),
                                                      self.headers, raw, self.server.halt)
        except _Drop:
            self.close_connection = True
            return
        data = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD" and status != 204:
                self.wfile.write(data)
        except OSError:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_LIST = do_HEAD = _dispatch


class VaultTransitDouble:
    """A Transit-compatible Vault on 127.0.0.1 (port chosen at start, kept across down()/up()).

    Use as a context manager; ``url`` and ``root_token`` are what a client needs.
    ``clock`` (wall-clock seconds) drives token TTLs, key creation times and auto-rotation.
    """

    def __init__(self, *, mounts: tuple[str, ...] = ("transit",),
                 clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._mounts = sorted(mounts, key=len, reverse=True)
        self._lock = threading.RLock()
        self._lifecycle = threading.Lock()
        self._keys: dict[tuple[str, str], dict[str, _Key]] = {}
        self._tokens: dict[str, _Token] = {}
        self._roles: dict[str, dict[str, _LoginRole]] = {}
        self._requests: list[Request] = []
        self._sealed = False
        self._delay = 0.0
        self._fail: tuple[int, int | None, str | None] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.root_token = "hvs." + secrets.token_urlsafe(18)
        self._tokens[self.root_token] = _Token(self.root_token, ["root"], False, 0, clock(), None, None,
                                               "auth/token/root")

    # lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> VaultTransitDouble:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def up(self) -> None:
        """Listen (again, on the same port after :meth:`down`)."""
        with self._lifecycle:
            if self._server is not None:
                return
            server = _Server(self._port, self)
            self._port = server.server_address[1]
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"vault-double-{self._port}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread

    def down(self) -> None:
        """Stop listening and drop every open connection: clients get connection refused/reset."""
        with self._lifecycle:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            self._server = self._thread = None
            server.halt.set()
            server.shutdown()
            with server.conns_lock:
                conns = list(server.conns)
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            server.server_close()
            thread.join()

    def close(self) -> None:
        self.down()

    # fault injection -------------------------------------------------------------------------

    def slow(self, seconds: float) -> None:
        """Delay every request by ``seconds`` before answering (0 to stop)."""
        self._delay = seconds

    def fail_with(self, status: int, n: int | None = None, *, path: str | None = None) -> None:
        """Answer the next ``n`` requests (all if None; only paths containing ``path``) with ``status``."""
        self._fail = (status, n, path)

    def clear_faults(self) -> None:
        """Undo :meth:`slow` and :meth:`fail_with`."""
        self._delay = 0.0
        self._fail = None

    def seal(self) -> None:
        self._sealed = True

    def unseal(self) -> None:
        self._sealed = False

    def expire_token(self, token: str) -> None:
        """Make ``token`` expire now: Vault answers 403 permission denied from then on."""
        with self._lock:
            self._tokens[token].expires_at = self._clock()

    # setup -----------------------------------------------------------------------------------

    def create_token(self, *, ttl: float = 3600, renewable: bool = True, max_ttl: float | None = None,
                     policies: tuple[str, ...] = ("default",)) -> str:
        """A service token (``ttl`` seconds, renewable up to ``max_ttl`` seconds after issue)."""
        return self._issue("auth/token/create", list(policies), int(ttl), renewable, max_ttl, None).id

    def enable_approle(self, role_id: str, secret_id: str, *, mount: str = "approle",
                       role_name: str = "keysvc", token_ttl: int = 3600, token_max_ttl: int = 0,
                       policies: tuple[str, ...] = ("keysvc",)) -> None:
        """Accept ``role_id``/``secret_id`` at ``auth/<mount>/login``."""
        self._roles.setdefault(mount, {})[role_id] = _LoginRole(
            "approle", {"secret_id": secret_id}, role_name, token_ttl, token_max_ttl, list(policies))

    def enable_kubernetes(self, role: str, jwt: str, *, mount: str = "kubernetes", token_ttl: int = 3600,
                          token_max_ttl: int = 0, policies: tuple[str, ...] = ("keysvc",)) -> None:
        """Accept ``role`` with the service-account ``jwt`` at ``auth/<mount>/login``."""
        self._roles.setdefault(mount, {})[role] = _LoginRole(
            "kubernetes", {"jwt": jwt}, role, token_ttl, token_max_ttl, list(policies))

    # observation -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, part: str) -> int:
        """How many requests hit a path containing the segments ``part`` (e.g. "decrypt")."""
        needle = f"/{part.strip('/')}/"
        return sum(1 for r in self.requests if needle in f"/{r.path}/")

    def tokens(self) -> list[str]:
        """Ids of the tokens issued by logins and :meth:`create_token`, oldest first (not the root token)."""
        with self._lock:
            return [t for t in self._tokens if t != self.root_token]

    def reset_counts(self) -> None:
        with self._lock:
            self._requests.clear()

    # request handling ------------------------------------------------------------------------

    def _handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, raw: bytes,
                halt: threading.Event) -> tuple[int, Json | None]:
        namespace = (headers.get("X-Vault-Namespace") or "").strip("/")
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        record = Request(method, path.removeprefix("/v1/").strip("/"), namespace,
                         body if isinstance(body, dict) else None)
        with self._lock:
            self._requests.append(record)
        if self._delay and halt.wait(self._delay):
            raise _Drop
        if halt.is_set():
            raise _Drop
        try:
            self._inject_fault(record.path)
            if not isinstance(body, dict):
                raise _errors(400, "failed to parse JSON input: invalid JSON object")
            with self._lock:
                status, answer = self._route(method, record.path, query, headers, body, namespace)
        except _Reply as reply:
            status, answer = reply.status, reply.body
        record.status = status
        return status, answer

    def _inject_fault(self, path: str) -> None:
        with self._lock:
            if self._fail is None:
                return
            status, left, only = self._fail
            if only is not None and only not in path:
                return
            if left is not None:
                self._fail = (status, left - 1, only) if left > 1 else None
        try:
            phrase = http.HTTPStatus(status).phrase.lower()
        except ValueError:
            phrase = "error"
        raise _errors(status, phrase)

    def _route(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Json,
               namespace: str) -> tuple[int, Json | None]:
        if path == "sys/health":
            return self._health(query)
        if self._sealed:
            raise _errors(503, "Vault is sealed")
        parts = path.split("/")
        if len(parts) == 3 and parts[0] == "auth" and parts[2] == "login" and parts[1] in self._roles:
            return self._login(parts[1], body)
        token = self._authenticate(headers)
        if path == "auth/token/lookup-self" and method in ("GET", "POST", "PUT"):
            return 200, _envelope(self._lookup(token), mount_type="token")
        if path == "auth/token/renew-self" and method in ("POST", "PUT"):
            return self._renew(token, body)
        if path == "sys/mounts" and method == "GET":
            mounts = {f"{m}/": {"type": "transit", "description": "", "options": None} for m in self._mounts}
            return 200, {**mounts, **_envelope(mounts, mount_type="system")}
        if path.startswith("sys/mounts/") and method in ("POST", "PUT"):
            if body.get("type") != "transit":
                raise _errors(400, f"plugin not found in the catalog: {body.get('type')}")
            self._mounts = sorted({*self._mounts, path[len("sys/mounts/"):]}, key=len, reverse=True)
            return 204, None
        for mount in self._mounts:
            if path.startswith(mount + "/"):
                return self._transit(method, self._keys.setdefault((namespace, mount), {}),
                                     path[len(mount) + 1:].split("/"), query, body)
        raise _errors(404, f'no handler for route "{path}". route entry not found.')

    def _health(self, query: dict[str, list[str]]) -> tuple[int, Json]:
        def code(name: str, default: int) -> int:
            return int(query[name][0]) if name in query else default

        status = code("sealedcode", 503) if self._sealed else code("activecode", 200)
        return status, {
            "initialized": True, "sealed": self._sealed, "standby": self._sealed,
            "performance_standby": False, "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled", "server_time_utc": int(time.time()), "version": "1.19.0",
            "enterprise": False, "cluster_name": "vault-cluster-double", "cluster_id": "double",
            "echo_duration_ms": 0, "clock_skew_ms": 0,
        }

    # tokens and auth -------------------------------------------------------------------------

    def _issue(self, path: str, policies: list[str], ttl: int, renewable: bool, max_ttl: float | None,
               meta: dict[str, str] | None) -> _Token:
        now = self._clock()
        token = _Token("hvs." + secrets.token_urlsafe(18), policies, renewable, ttl, now,
                       now + ttl if ttl else None, now + max_ttl if max_ttl else None, path, meta)
        with self._lock:
            self._tokens[token.id] = token
        return token

    def _authenticate(self, headers: Any) -> _Token:
        value = headers.get("X-Vault-Token") or ""
        bearer = headers.get("Authorization") or ""
        if not value and bearer.startswith("Bearer "):
            value = bearer[len("Bearer "):]
        token = self._tokens.get(value)
        if token is None or not token.valid(self._clock()):
            raise _errors(403, "permission denied")
        return token

    def _lookup(self, token: _Token) -> Json:
        now = self._clock()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token.issued_at))
        expire = None if token.expires_at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                      time.gmtime(token.expires_at))
        return {"accessor": token.accessor, "creation_time": int(token.issued_at), "creation_ttl": token.ttl,
                "display_name": "token", "entity_id": "", "expire_time": expire, "explicit_max_ttl": 0,
                "id": token.id, "issue_time": stamp, "meta": token.meta, "num_uses": 0,
                "orphan": token.path != "auth/token/create", "path": token.path, "policies": token.policies,
                "renewable": token.renewable, "ttl": token.remaining(now), "type": "service"}

    def _renew(self, token: _Token, body: Json) -> tuple[int, Json]:
        if not token.renewable or token.expires_at is None:
            raise _errors(400, "lease is not renewable")
        now = self._clock()
        increment = _duration(body.get("increment"), "increment") or token.ttl
        expires, warnings = now + increment, []
        if token.max_expires_at is not None and expires > token.max_expires_at:
            expires = token.max_expires_at
            warnings.append(f'TTL of "{increment}s" exceeded the effective max_ttl of '
                            f'"{int(expires - now)}s"; TTL value is capped accordingly')
        token.expires_at = expires
        return 200, _envelope(None, warnings=warnings, auth=token.auth(now), mount_type="token")

    def _login(self, mount: str, body: Json) -> tuple[int, Json]:
        roles = self._roles[mount]
        kind = next(iter(roles.values())).kind
        if kind == "approle":
            role_id, secret_id = str(body.get("role_id") or ""), str(body.get("secret_id") or "")
            if not role_id:
                raise _errors(400, "missing role_id")
            role = roles.get(role_id)
            if role is None or not hmac.compare_digest(role.credentials["secret_id"], secret_id):
                raise _errors(400, "invalid role or secret ID")
            meta = {"role_name": role.role_name}
        else:
            name, jwt = str(body.get("role") or ""), str(body.get("jwt") or "")
            if not name:
                raise _errors(400, "missing role")
            if not jwt:
                raise _errors(400, "missing jwt")
            role = roles.get(name)
            if role is None:
                raise _errors(400, f'invalid role name "{name}"')
            if not hmac.compare_digest(role.credentials["jwt"], jwt):
                raise _errors(403, "permission denied")
            meta = {"role": name, "service_account_name": "keysvc", "service_account_namespace": "default"}
        token = self._issue(f"auth/{mount}/login", role.policies, role.token_ttl, True,
                            role.token_max_ttl or None, meta)
        return 200, _envelope(None, auth=token.auth(self._clock()), mount_type=kind)

    # transit ---------------------------------------------------------------------------------

    def _transit(self, method: str, keys: dict[str, _Key], parts: list[str], query: dict[str, list[str]],
                 body: Json) -> tuple[int, Json | None]:
        update = method in ("POST", "PUT")
        match parts:
            case ["keys"] | ["keys", ""] if method == "LIST" or (method == "GET" and query.get("list")):
                if not keys:
                    raise _errors(404)
                return 200, _envelope({"keys": sorted(keys)})
            case ["keys", name] if method == "GET":
                key = self._existing(keys, name)
                if key is None:
                    raise _errors(404)
                return 200, _envelope(key.body())
            case ["keys", name] if update:
                return self._create(keys, name, body)
            case ["keys", name] if method == "DELETE":
                return self._delete(keys, name)
            case ["keys", name, "config"] if update:
                return self._config(keys, name, body)
            case ["keys", name, "rotate"] if update:
                key = self._existing(keys, name)
                if key is None:
                    raise _errors(400, "key not found")
                key.add_version(self._clock())
                return 200, _envelope(key.body())
            case ["encrypt", name] if update:
                return self._encrypt(keys, name, body)
            case ["decrypt", name] if update:
                return self._decrypt(keys, name, body)
            case ["rewrap", name] if update:
                return self._rewrap(keys, name, body)
            case ["datakey", kind, name] if update:
                return self._datakey(keys, kind, name, body)
            case ["keys", *_] | ["encrypt" | "decrypt" | "rewrap", _] | ["datakey", _, _]:
                raise _errors(405, "1 error occurred:\n\t* unsupported operation\n\n")
        raise _errors(404, "1 error occurred:\n\t* unsupported path\n\n")

    def _existing(self, keys: dict[str, _Key], name: str) -> _Key | None:
        key = keys.get(name)
        if key is not None:
            key.maybe_auto_rotate(self._clock())
        return key

    def _new_key(self, name: str, key_type: str, derived: bool, convergent: bool, body: Json) -> _Key:
        if key_type not in _KEY_SIZES:
            if key_type in _OTHER_TYPES:
                raise _errors(400, f"key type {key_type} is not implemented by the Vault test double")
            raise _errors(400, f"unknown key type {key_type}")
        if convergent and not derived:
            raise _errors(400, "convergent encryption requires derivation to be enabled")
        period = _duration(body.get("auto_rotate_period"), "auto_rotate_period")
        if period and period < 3600:
            raise _errors(400, "auto rotate period must be 0 to disable or at least an hour")
        key = _Key(name, key_type, derived, convergent, _bool(body, "exportable"),
                   _bool(body, "allow_plaintext_backup"), period)
        key.add_version(self._clock())
        return key

    def _create(self, keys: dict[str, _Key], name: str, body: Json) -> tuple[int, Json]:
        key = self._existing(keys, name)
        if key is not None:
            return 200, _envelope(key.body(), warnings=[f"key {name} already existed"])
        key = self._new_key(name, str(body.get("type") or "aes256-gcm96"), _bool(body, "derived"),
                            _bool(body, "convergent_encryption"), body)
        keys[name] = key
        return 200, _envelope(key.body())

    def _delete(self, keys: dict[str, _Key], name: str) -> tuple[int, None]:
        key = keys.get(name)
        if key is None:
            raise _errors(400, f"error deleting policy {name}: could not delete key; not found")
        if not key.deletion_allowed:
            raise _errors(400, f"error deleting policy {name}: deletion is not allowed for this key")
        del keys[name]
        return 204, None

    def _config(self, keys: dict[str, _Key], name: str, body: Json) -> tuple[int, Json]:
        key = self._existing(keys, name)
        if key is None:
            raise _errors(400, f"no existing key named {name} could be found")
        warnings = []
        min_dec, min_enc = key.min_decryption_version, key.min_encryption_version
        if body.get("min_decryption_version") is not None:
            min_dec = _int(body, "min_decryption_version")
            if min_dec < 0:
                raise _errors(400, "min decryption version cannot be negative")
            if min_dec == 0:
                min_dec = 1
                warnings.append("since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1")
            if min_dec > key.latest:
                raise _errors(400, f"cannot set min decryption version of {min_dec}, "
                                   f"latest key version is {key.latest}")
        if body.get("min_encryption_version") is not None:
            min_enc = _int(body, "min_encryption_version")
            if min_enc < 0:
                raise _errors(400, "min encryption version cannot be negative")
            if min_enc > key.latest:
                raise _errors(400, f"cannot set min encryption version of {min_enc}, "
                                   f"latest key version is {key.latest}")
        if min_enc and min_enc < min_dec:
            raise _errors(400, "cannot set min encryption/decryption values; min encryption version of "
                               f"{min_enc} must be greater than or equal to min decryption version of "
                               f"{min_dec}")
        if key.exportable and not _bool(body, "exportable", True):
            raise _errors(400, "exportability cannot be disabled after enabling")
        if key.allow_plaintext_backup and not _bool(body, "allow_plaintext_backup", True):
            raise _errors(400, "plaintext backup cannot be disabled after enabling")
        period = key.auto_rotate_period
        if body.get("auto_rotate_period") is not None:
            period = _duration(body["auto_rotate_period"], "auto_rotate_period")
            if period and period < 3600:
                raise _errors(400, "auto rotate period must be 0 to disable or at least an hour")
        key.min_decryption_version, key.min_encryption_version = min_dec, min_enc
        key.deletion_allowed = _bool(body, "deletion_allowed", key.deletion_allowed)
        key.exportable = _bool(body, "exportable", key.exportable)
        key.allow_plaintext_backup = _bool(body, "allow_plaintext_backup", key.allow_plaintext_backup)
        key.auto_rotate_period = period
        return 200, _envelope(key.body(), warnings=warnings)

    # data operations -------------------------------------------------------------------------

    def _items(self, body: Json, fields: tuple[str, ...], missing: str) -> tuple[list[Json], bool]:
        """The request as a list of items, and whether it was a batch request."""
        batch = body.get("batch_input")
        if batch is None:
            if body.get(fields[0]) is None:
                raise _errors(400, missing)
            return [{name: body[name] for name in fields if body.get(name) is not None}], False
        if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
            raise _errors(400, "failed to parse batch input: expected a list of objects")
        if not batch:
            raise _errors(400, "missing batch input to process")
        with_context = [bool(item.get("context")) for item in batch]
        if any(with_context) and not all(with_context):
            raise _errors(400, "context should be set either in all the request blocks or in none")
        return batch, True

    def _run(self, items: list[Json], one: Callable[[Json], Json]) -> list[Json]:
        results = []
        for item in items:
            reference = str(item.get("reference") or "")
            try:
                results.append({**one(item), "reference": reference})
            except _ItemError as err:
                results.append({"error": str(err), "reference": reference})
        return results

    def _answer(self, results: list[Json], batch: bool, body: Json, warnings: list[str], *,
                batch_errors_fail: bool = True) -> tuple[int, Json]:
        if not batch:
            result = results[0]
            if "error" in result:
                raise _errors(400, result["error"])
            return 200, _envelope({k: v for k, v in result.items() if k != "reference"}, warnings=warnings)
        failed = sum(1 for r in results if "error" in r)
        status = 200
        if failed and batch_errors_fail:
            status = 400
            code = body.get("partial_failure_response_code")
            if failed < len(results) and code is not None:
                if isinstance(code, int) and 1 <= code <= 599:
                    status = code
                else:
                    warnings = [*warnings, "invalid HTTP response code override from "
                                           "partial_failure_response_code, reverting to HTTP 400"]
        return status, _envelope({"batch_results": results}, warnings=warnings)

    @staticmethod
    def _decode(item: Json, name: str) -> bytes:
        value = item.get(name)
        return _go_b64decode(str(value)) if value else b""

    def _encrypt(self, keys: dict[str, _Key], name: str, body: Json) -> tuple[int, Json]:
        known = frozenset({"plaintext", "context", "key_version", "associated_data", "nonce", "batch_input",
                           "type", "convergent_encryption", "partial_failure_response_code", "reference"})
        items, batch = self._items(body, ("plaintext", "context", "key_version", "associated_data", "nonce"),
                                   "missing plaintext to encrypt")
        key = self._existing(keys, name)
        if key is None:  # upsert, as Vault does for a token with the create capability
            key = self._new_key(name, str(body.get("type") or "aes256-gcm96"), bool(items[0].get("context")),
                                _bool(body, "convergent_encryption"), {})
            keys[name] = key

        def one(item: Json) -> Json:
            plaintext = _go_b64decode(str(item.get("plaintext") or ""))
            context = self._decode(item, "context")
            aad = self._decode(item, "associated_data")
            ciphertext, version = key.encrypt(plaintext, context, aad, _int(item, "key_version"))
            return {"ciphertext": ciphertext, "key_version": version}

        return self._answer(self._run(items, one), batch, body, _ignored(body, known))

    def _decrypt(self, keys: dict[str, _Key], name: str, body: Json) -> tuple[int, Json]:
        known = frozenset({"ciphertext", "context", "associated_data", "nonce", "batch_input",
                           "partial_failure_response_code", "reference"})
        items, batch = self._items(body, ("ciphertext", "context", "associated_data", "nonce"),
                                   "missing ciphertext to decrypt")
        key = self._existing(keys, name)
        if key is None:
            raise _errors(400, "encryption key not found")

        def one(item: Json) -> Json:
            if not item.get("ciphertext"):
                raise _ItemError("missing ciphertext to decrypt")
            context = self._decode(item, "context")
            aad = self._decode(item, "associated_data")
            return {"plaintext": _b64(key.decrypt(str(item["ciphertext"]), context, aad))}

        return self._answer(self._run(items, one), batch, body, _ignored(body, known))

    def _rewrap(self, keys: dict[str, _Key], name: str, body: Json) -> tuple[int, Json]:
        known = frozenset({"ciphertext", "context", "key_version", "nonce", "batch_input", "reference"})
        items, batch = self._items(body, ("ciphertext", "context", "key_version", "nonce"),
                                   "missing ciphertext to rewrap")
        key = self._existing(keys, name)
        if key is None:
            raise _errors(400, "encryption key not found")

        def one(item: Json) -> Json:
            if not item.get("ciphertext"):
                raise _ItemError("missing ciphertext to rewrap")
            context = self._decode(item, "context")
            plaintext = key.decrypt(str(item["ciphertext"]), context, b"")  # rewrap has no associated_data
            ciphertext, version = key.encrypt(plaintext, context, b"", _int(item, "key_version"))
            return {"ciphertext": ciphertext, "key_version": version}

        results = self._run(items, one)
        return self._answer(results, batch, body, _ignored(body, known), batch_errors_fail=False)

    def _datakey(self, keys: dict[str, _Key], kind: str, name: str, body: Json) -> tuple[int, Json]:
        if kind not in ("plaintext", "wrapped"):
            raise _errors(400, "Invalid path, must be 'plaintext' or 'wrapped'")
        bits = _int(body, "bits", 256)
        if bits not in (128, 256, 512):
            raise _errors(400, "invalid bit length")
        key = self._existing(keys, name)
        if key is None:
            raise _errors(400, "encryption key not found")
        try:
            context = self._decode(body, "context")
            secret = os.urandom(bits // 8)
            ciphertext, version = key.encrypt(secret, context, b"", _int(body, "key_version"))
        except _ItemError as err:
            raise _errors(400, str(err)) from None
        data: Json = {"ciphertext": ciphertext, "key_version": version}
        if kind == "plaintext":
            data["plaintext"] = _b64(secret)
        known = frozenset({"context", "bits", "key_version", "nonce"})
        return 200, _envelope(data, warnings=_ignored(body, known))

