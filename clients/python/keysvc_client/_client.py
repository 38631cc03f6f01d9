"""KeyServiceClient: the thin, typed client for keysvc's gRPC API."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from keysvc_client._admin import AdminClient
from keysvc_client._errors import BatchError, ItemResult, KeysvcError, error_for, from_rpc_error
from keysvc_client._governance import GovernanceClient
from keysvc_client._pb.keysvc.v1 import (
    admin_pb2_grpc,
    common_pb2,
    crypto_pb2,
    crypto_pb2_grpc,
    governance_pb2_grpc,
    tokenization_pb2,
    tokenization_pb2_grpc,
)

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0
Context = Mapping[str, str] | None

# Only calls that change nothing are retried (on UNAVAILABLE), per the gRPC service config.
_IDEMPOTENT = {
    "keysvc.v1.Crypto": ("Decrypt", "DecryptDataKey"),
    "keysvc.v1.Tokenization": ("Detokenize", "Redact"),
    "keysvc.v1.Admin": ("GetKey", "ListKeys", "GetStatus", "GetKekStatus", "PlanRetention"),
}
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": s, "method": m} for s, methods in _IDEMPOTENT.items() for m in methods],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
_CHANNEL_OPTIONS = (
    ("grpc.service_config", _SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    # Server-side gRPC rejects pings more often than every 5 minutes without data.
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)


@dataclass(frozen=True)
class DataKey:
    """A data key from GenerateDataKey: use ``plaintext``, store ``encrypted``."""

    plaintext: bytes = field(repr=False)
    encrypted: bytes
    key_version: int


@dataclass(frozen=True)
class RedactedSpan:
    kind: str
    start: int
    end: int
    word_start: int = 0
    word_end: int = 0
    start_ms: int = 0
    end_ms: int = 0


@dataclass(frozen=True)
class Redaction:
    """Redacted text, the spans found (offsets into the input), and redacted words for word input."""

    text: str
    spans: list[RedactedSpan]
    words: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Token:
    """A token and the key version that issued it."""

    token: str
    key_version: int


def _read(path: str | None) -> bytes | None:
    if not path:
        return None
    with open(path, "rb") as fh:
        return fh.read()


class KeyServiceClient:
    """A connection to keysvc. Thread-safe; reuse one per process; close it (or use ``with``).

    Args:
        target: ``host:port`` of the service.
        token: bearer token sent as ``authorization: Bearer <token>`` on every call.
        root_certificates: PEM CA bundle; when set (or with a client cert) the channel uses TLS.
        private_key: PEM client key for mTLS.
        certificate_chain: PEM client certificate chain for mTLS.
        timeout: default deadline in seconds for every call.
        options: extra gRPC channel options.
        metadata: extra metadata sent on every call (e.g. a one-time code for admin calls).
    """

    def __init__(
        self,
        target: str,
        token: str | None = None,
        *,
        root_certificates: bytes | None = None,
        private_key: bytes | None = None,
        certificate_chain: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        options: Sequence[tuple[str, Any]] = (),
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        opts = [*_CHANNEL_OPTIONS, *options]
        if root_certificates or certificate_chain:
            creds = grpc.ssl_channel_credentials(root_certificates, private_key, certificate_chain)
            self._channel = grpc.secure_channel(target, creds, options=opts)
        else:
            self._channel = grpc.insecure_channel(target, options=opts)
        self._metadata = ((("authorization", f"Bearer {token}"),) if token else ()) + tuple(metadata)
        self._timeout = timeout
        self._crypto = crypto_pb2_grpc.CryptoStub(self._channel)
        self._tokens = tokenization_pb2_grpc.TokenizationStub(self._channel)
        self.admin = AdminClient(admin_pb2_grpc.AdminStub(self._channel), self._invoke)
        self.governance = GovernanceClient(governance_pb2_grpc.GovernanceStub(self._channel), self._invoke)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **kwargs: Any) -> KeyServiceClient:
        """Connect using KEYSVC_ADDR, KEYSVC_TOKEN (or KEYSVC_TOKEN_FILE), KEYSVC_CACERT,
        KEYSVC_CLIENT_CERT and KEYSVC_CLIENT_KEY."""
        env = os.environ if env is None else env
        token = (
            env.get("KEYSVC_TOKEN") or (_read(env.get("KEYSVC_TOKEN_FILE")) or b"").decode().strip() or None
        )
        return cls(
            env.get("KEYSVC_ADDR", "127.0.0.1:50051"),
            token,
            root_certificates=_read(env.get("KEYSVC_CACERT")),
            certificate_chain=_read(env.get("KEYSVC_CLIENT_CERT")),
            private_key=_read(env.get("KEYSVC_CLIENT_KEY")),
            **kwargs,
        )

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> KeyServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _invoke(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    # -- Crypto ---------------------------------------------------------------------------------

    def encrypt(
        self,
        key: str,
        plaintexts: Sequence[bytes],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Encrypt each plaintext under ``key``, binding ``context`` (or per item: ``contexts``) as AAD."""
        request = crypto_pb2.EncryptRequest(
            key=key,
            context=context or {},
            items=[
                crypto_pb2.EncryptItem(plaintext=p, context=c)
                for p, c in _with_contexts(plaintexts, context, contexts)
            ],
        )
        response = self._invoke(self._crypto.Encrypt, request, timeout)
        return _values(response.results, _ciphertext)

    def decrypt(
        self,
        ciphertexts: Sequence[bytes],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Decrypt ciphertexts (each names its key and version) with the context used to encrypt."""
        request = crypto_pb2.DecryptRequest(
            context=context or {},
            items=[
                crypto_pb2.DecryptItem(ciphertext=c, context=x)
                for c, x in _with_contexts(ciphertexts, context, contexts)
            ],
        )
        response = self._invoke(self._crypto.Decrypt, request, timeout)
        return _values(response.results, _plaintext)

    def rewrap(
        self,
        ciphertexts: Sequence[bytes],
        *,
        context: Context = None,
        contexts: Sequence[Context] | None = None,
        timeout: float | None = None,
    ) -> list[bytes]:
        """Re-encrypt ciphertexts under their key's current primary version."""
        request = crypto_pb2.RewrapRequest(
            context=context or {},
            items=[
                crypto_pb2.RewrapItem(ciphertext=c, context=x)
                for c, x in _with_contexts(ciphertexts, context, contexts)
            ],
        )
        response = self._invoke(self._crypto.Rewrap, request, timeout)
        return _values(response.results, _ciphertext)

    def generate_data_key(
        self, key: str, *, context: Context = None, bits: int = 256, timeout: float | None = None
    ) -> DataKey:
        """A fresh data key for client-side bulk encryption (e.g. call recordings)."""
        request = crypto_pb2.GenerateDataKeyRequest(
            key=key, bits=bits, items=[crypto_pb2.DataKeySpec(context=context or {})]
        )
        response = self._invoke(self._crypto.GenerateDataKey, request, timeout)
        return _values(response.results, lambda r: DataKey(r.plaintext, r.encrypted, r.key_version))[0]

    def decrypt_data_key(
        self, encrypted: bytes, *, context: Context = None, timeout: float | None = None
    ) -> bytes:
        """The plaintext of a data key returned by :meth:`generate_data_key` (audited)."""
        request = crypto_pb2.DecryptDataKeyRequest(
            items=[crypto_pb2.DecryptDataKeyItem(encrypted=encrypted, context=context or {})]
        )
        response = self._invoke(self._crypto.DecryptDataKey, request, timeout)
        return _values(response.results, _plaintext)[0]

    # -- Tokenization ---------------------------------------------------------------------------

    def tokenize(
        self, key: str, values: Sequence[str], *, tweak: bytes = b"", timeout: float | None = None
    ) -> list[str]:
        """Tokens for ``values`` under ``key`` (format-preserving or vaulted, per the key)."""
        return [t.token for t in self.tokenize_versioned(key, values, tweak=tweak, timeout=timeout)]

    def tokenize_versioned(
        self, key: str, values: Sequence[str], *, tweak: bytes = b"", timeout: float | None = None
    ) -> list[Token]:
        """Tokens with the key version that made them: keep the version beside an FF1 token
        whose format cannot carry it, and pass it back to :meth:`detokenize` after rotations."""
        request = tokenization_pb2.TokenizeRequest(
            key=key, tweak=tweak, items=[tokenization_pb2.TokenizeItem(value=v) for v in values]
        )
        response = self._invoke(self._tokens.Tokenize, request, timeout)
        return _values(response.results, _versioned_token)

    def detokenize(
        self,
        key: str,
        tokens: Sequence[str],
        *,
        purpose: str,
        tweak: bytes = b"",
        masked: bool = False,
        key_versions: Sequence[int] | None = None,
        timeout: float | None = None,
    ) -> list[str]:
        """The values behind ``tokens``; ``purpose`` is required and audited.

        ``masked`` asks for masked values (e.g. ``************1111``); ``key_versions`` gives
        the version each token was issued under (0 = let the service infer it).
        """
        versions = list(key_versions) if key_versions is not None else [0] * len(tokens)
        if len(versions) != len(tokens):
            raise ValueError("pass one key version per token")
        reveal = tokenization_pb2.REVEAL_MASKED if masked else tokenization_pb2.REVEAL_UNSPECIFIED
        request = tokenization_pb2.DetokenizeRequest(
            key=key,
            tweak=tweak,
            purpose=purpose,
            reveal=reveal,
            items=[
                tokenization_pb2.DetokenizeItem(token=t, key_version=v)
                for t, v in zip(tokens, versions, strict=True)
            ],
        )
        response = self._invoke(self._tokens.Detokenize, request, timeout)
        return _values(response.results, _value)

    def retokenize(
        self, key: str, tokens: Sequence[Token], *, tweak: bytes = b"", timeout: float | None = None
    ) -> list[Token]:
        """Move tokens issued under older key versions to the primary version (FF1 keys)."""
        request = tokenization_pb2.RetokenizeRequest(
            key=key,
            tweak=tweak,
            items=[tokenization_pb2.DetokenizeItem(token=t.token, key_version=t.key_version) for t in tokens],
        )
        response = self._invoke(self._tokens.Retokenize, request, timeout)
        return _values(response.results, _versioned_token)

    def redact(self, text: str, *, masked: bool = False, timeout: float | None = None) -> Redaction:
        """Find and replace card numbers, CVVs, expiry dates, SSNs, phones and emails in ``text``.

        Replacements are labels such as ``[PAN]``, or masks (``[PAN ****1111]``) with ``masked``.
        """
        style = tokenization_pb2.REDACTION_STYLE_MASK if masked else tokenization_pb2.REDACTION_STYLE_LABEL
        request = tokenization_pb2.RedactRequest(style=style, items=[tokenization_pb2.RedactItem(text=text)])
        response = self._invoke(self._tokens.Redact, request, timeout)
        return _values(response.results, _redaction)[0]

    def redact_words(
        self, words: Sequence[tuple[str, int, int]], *, masked: bool = False, timeout: float | None = None
    ) -> Redaction:
        """Redact a transcript given as (word, start_ms, end_ms); spans carry word indexes and times,
        and ``.words`` holds one redacted word per input word (so audio can be bleeped)."""
        style = tokenization_pb2.REDACTION_STYLE_MASK if masked else tokenization_pb2.REDACTION_STYLE_LABEL
        item = tokenization_pb2.RedactItem(
            words=[tokenization_pb2.Word(text=w, start_ms=s, end_ms=e) for w, s, e in words]
        )
        request = tokenization_pb2.RedactRequest(style=style, items=[item])
        response = self._invoke(self._tokens.Redact, request, timeout)
        return _values(response.results, _redaction)[0]


def _redaction(result: Any) -> Redaction:
    spans = [
        RedactedSpan(s.kind, s.start, s.end, s.word_start, s.word_end, s.start_ms, s.end_ms)
        for s in result.spans
    ]
    return Redaction(result.text, spans, [w.text for w in result.words])


def _versioned_token(result: Any) -> Token:
    return Token(str(result.token), int(result.key_version))


def _with_contexts(
    data: Sequence[bytes], context: Context, contexts: Sequence[Context] | None
) -> list[tuple[bytes, Mapping[str, str]]]:
    """Pair each item with its own context; with one shared ``context`` items carry none
    (the request carries it once)."""
    if contexts is None:
        return [(d, {}) for d in data]
    if context is not None or len(contexts) != len(data):
        raise ValueError("pass either context, or one context per item")
    return [(d, c or {}) for d, c in zip(data, contexts, strict=True)]


def _plaintext(result: Any) -> bytes:
    return bytes(result.plaintext)


def _ciphertext(result: Any) -> bytes:
    return bytes(result.ciphertext)


def _value(result: Any) -> str:
    return str(result.value)


def _item_error(status: common_pb2.Status) -> KeysvcError:
    reason = ""
    for detail in status.details:
        info = common_pb2.ErrorReason()
        if detail.Unpack(info):
            reason = info.reason
    return error_for(status.code, status.message, reason)


def _values(results: Sequence[Any], value: Callable[[Any], T]) -> list[T]:
    """Each result's value, or BatchError carrying every item when any failed."""
    if not any(r.HasField("error") for r in results):
        return [value(r) for r in results]
    items = [
        ItemResult(None, _item_error(r.error), r.reference)
        if r.HasField("error")
        else ItemResult(value(r), None, r.reference)
        for r in results
    ]
    raise BatchError(items)
