"""Prometheus metrics: the standard gRPC server metrics and keysvc's own, under ``keysvc_``.

One :class:`Metrics` object per server process, built in ``keysvc.server.app`` and passed
down (no module-level metric objects, so tests can build as many as they like). It owns
its ``CollectorRegistry``; with ``--workers N`` each worker writes its values to
``PROMETHEUS_MULTIPROC_DIR`` and the parent serves the aggregate (see
:mod:`keysvc.server.workers`).

gRPC metrics follow go-grpc-prometheus (``server_metrics.go``) so stock dashboards work:
``grpc_server_started_total`` and ``grpc_server_handling_seconds`` carry ``grpc_type,
grpc_service, grpc_method``; ``grpc_server_handled_total`` adds ``grpc_code``, spelled as
Go spells it (``OK``, ``InvalidArgument``, ``Unavailable``...), not as Python's enum names.

Labels never carry a value, a token, a request id or any request text: ``key`` is the name
of a key that exists (else ``unknown``), ``principal`` a configured identity (at most
:data:`MAX_PRINCIPALS` distinct, then ``other``), everything else a constant from code.

Hot path: :meth:`Metrics.method` returns a :class:`MethodMetrics` whose label children are
bound once per method (the pipeline caches it), so a call costs a few ``inc``/``observe``.
Values that live elsewhere (DEK cache counters, key ages) are copied in by :meth:`Metrics.sample`,
which runs at scrape time in a single process and every ``interval`` seconds in workers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter as _Counter
from collections.abc import Callable, Sequence
from operator import attrgetter, methodcaller
from typing import Any, Protocol

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.metrics_core import Metric

from keysvc.errors import KeysvcError
from keysvc.kek.base import KekHealth, KekProvider
from keysvc.keys.cache import DekCache
from keysvc.keys.keyring import Keyring

log = logging.getLogger(__name__)

UNKNOWN_KEY = "unknown"
OTHER_PRINCIPAL = "other"
MAX_PRINCIPALS = 200

# Go's codes.Code.String(), which go-grpc-prometheus puts in grpc_code.
GO_CODE_NAMES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}

# Unary calls here take 0.2 ms (cached DEK) to seconds (Vault outage, big batches).
RPC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
KEK_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class JobRecorder(Protocol):
    """What a background job (the scheduler) may report: one call per run.

    ``job`` and ``outcome`` must be constants from code (``rotate-due-keys``, ``ok`` /
    ``error`` / ``skipped``), never data. Jobs declare a structurally identical Protocol
    (or take the bound method as a plain callable) so domain layers need not import this module.
    """

    def job_run(self, job: str, outcome: str, seconds: float) -> None: ...


class AuditRecorder(Protocol):
    """What the audit log may report per append (wire ``metrics.audit_write`` into it)."""

    def audit_write(self, seconds: float, ok: bool) -> None: ...


def split_method(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    _, _, rest = method.partition("/")
    service, _, name = rest.partition("/")
    return service or "unknown", name or "unknown"


_HAS_ERROR = methodcaller("HasField", "error")


# How each batch RPC names its items: (operation label, items field, key source).
# key source: "request" = request.key; or the item field holding an envelope ciphertext.
_ITEM_RPCS: dict[str, tuple[str, str]] = {
    "/keysvc.v1.Crypto/Encrypt": ("encrypt", ""),
    "/keysvc.v1.Crypto/Decrypt": ("decrypt", "ciphertext"),
    "/keysvc.v1.Crypto/Rewrap": ("rewrap", "ciphertext"),
    "/keysvc.v1.Crypto/GenerateDataKey": ("generate-data-key", ""),
    "/keysvc.v1.Crypto/DecryptDataKey": ("decrypt-data-key", "encrypted"),
    "/keysvc.v1.Tokenization/Tokenize": ("tokenize", ""),
    "/keysvc.v1.Tokenization/Detokenize": ("detokenize", ""),
    "/keysvc.v1.Tokenization/Retokenize": ("retokenize", ""),
}
DETOKENIZE_METHOD = "/keysvc.v1.Tokenization/Detokenize"


class MethodMetrics:
    """Pre-bound children for one RPC method; the pipeline calls these on every call."""

    __slots__ = (
        "_detokenize",
        "_get_field",
        "_handled",
        "_handled_children",
        "_item_errors",
        "_item_field",
        "_labels",
        "_metrics",
        "_operation",
        "_seconds",
        "_started",
    )

    def __init__(self, metrics: Metrics, method: str, grpc_type: str = "unary") -> None:
        service, name = split_method(method)
        self._metrics = metrics
        self._labels = (grpc_type, service, name)
        self._started = metrics.grpc_started.labels(*self._labels)
        self._seconds = metrics.grpc_seconds.labels(*self._labels)
        self._handled = metrics.grpc_handled
        self._handled_children: dict[grpc.StatusCode, Any] = {
            grpc.StatusCode.OK: metrics.grpc_handled.labels(*self._labels, "OK")
        }
        item = _ITEM_RPCS.get(method)
        self._operation = item[0] if item else ""
        self._item_field = item[1] if item else ""
        self._get_field = attrgetter(self._item_field or "reference")
        self._item_errors = self._operation not in ("encrypt", "generate-data-key")
        self._detokenize = method == DETOKENIZE_METHOD

    def started(self) -> None:
        self._started.inc()

    def handled(self, code: grpc.StatusCode, seconds: float) -> None:
        child = self._handled_children.get(code)
        if child is None:
            child = self._handled.labels(*self._labels, GO_CODE_NAMES.get(code, "Unknown"))
            self._handled_children[code] = child
        child.inc()
        self._seconds.observe(seconds)

    def items(self, request: Any, response: Any, principal: str) -> None:
        """Count a successful batch call's items per key and outcome (no-op for other methods)."""
        if not self._operation:
            return
        try:
            self._count(request, response, principal)
        except Exception as exc:  # metrics never fail a call
            log.warning("item metrics failed", extra={"error_type": type(exc).__name__})

    def _count(self, request: Any, response: Any, principal: str) -> None:
        results = getattr(response, "results", None)
        if results is None:
            return
        # Encrypt and GenerateDataKey fail as a whole, never per item: no per-item scan.
        errors = list(map(_HAS_ERROR, results)) if self._item_errors else []
        failed = sum(errors)
        ok = len(results) - failed
        m = self._metrics
        if not self._item_field:
            key = m.key_label(request.key, known=True)
            if ok:
                m.item_counter(self._operation, key, "ok").inc(ok)
            if failed:
                m.item_counter(self._operation, key, "error").inc(failed)
        else:
            self._count_by_header(request.items, errors if failed else None)
        if self._detokenize and ok:
            m.detokenized(principal).inc(ok)

    def _count_by_header(self, items: Sequence[Any], errors: list[bool] | None) -> None:
        """Items per key named in each ciphertext's header (format 1: ver, kind, n, name[n])."""
        names = [c[3 : 3 + c[2]] if len(c) > 3 else b"" for c in map(self._get_field, items)]
        m = self._metrics
        if errors is None:
            counts: dict[tuple[bytes, bool], int] = {(raw, False): n for raw, n in _Counter(names).items()}
        else:
            counts = dict(_Counter(zip(names, errors, strict=False)))
        for (raw, failed), n in counts.items():
            try:
                name = raw.decode()
            except UnicodeDecodeError:
                name = ""
            key = m.key_label(name, known=not failed)
            m.item_counter(self._operation, key, "error" if failed else "ok").inc(n)


class Metrics:
    """Every metric of one server process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None, sample_on_scrape: bool = True) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        if sample_on_scrape:  # registered first: the registry collects in registration order
            r.register(_SampleOnCollect(self.sample))
        grpc_labels = ("grpc_type", "grpc_service", "grpc_method")
        self.grpc_started = Counter(
            "grpc_server_started", "RPCs started on the server.", grpc_labels, registry=r
        )
        self.grpc_handled = Counter(
            "grpc_server_handled",
            "RPCs completed on the server, regardless of success or failure.",
            (*grpc_labels, "grpc_code"),
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Response latency of RPCs handled by the server.",
            grpc_labels,
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.items_total = Counter(
            "keysvc_items",
            "Batch items processed, by operation, key (existing keys only, else 'unknown') and outcome.",
            ("operation", "key", "outcome"),
            registry=r,
        )
        self.detokenize_items = Counter(
            "keysvc_detokenize_items",
            "Items detokenized, by principal (configured identities only).",
            ("principal",),
            registry=r,
        )
        self.cache_hits = Counter("keysvc_dek_cache_hits", "DEK cache hits.", registry=r)
        self.cache_misses = Counter("keysvc_dek_cache_misses", "DEK cache misses.", registry=r)
        self.cache_entries = Gauge(
            "keysvc_dek_cache_entries", "Unwrapped DEKs in cache.", registry=r, multiprocess_mode="livesum"
        )
        self.kek_seconds = Histogram(
            "keysvc_kek_request_seconds",
            "KEK provider call latency, by provider and operation.",
            ("provider", "operation"),
            buckets=KEK_BUCKETS,
            registry=r,
        )
        self.kek_errors = Counter(
            "keysvc_kek_errors",
            "KEK provider calls that failed, by provider, operation and reason.",
            ("provider", "operation", "reason"),
            registry=r,
        )
        self.key_age = Gauge(
            "keysvc_key_seconds_since_rotation",
            "Seconds since the key's primary version was created.",
            ("key",),
            registry=r,
            multiprocess_mode="livemax",
        )
        self.key_primary_encryptions = Gauge(
            "keysvc_key_primary_encryptions",
            "Encryptions reserved on the key's primary version (an upper bound of those done).",
            ("key",),
            registry=r,
            multiprocess_mode="livemax",
        )
        self.scheduler_runs = Counter(
            "keysvc_scheduler_runs",
            "Background job runs, by job and outcome.",
            ("job", "outcome"),
            registry=r,
        )
        self.scheduler_seconds = Histogram(
            "keysvc_scheduler_run_seconds", "Background job run time.", ("job",), registry=r
        )
        self.audit_seconds = Histogram(
            "keysvc_audit_write_seconds", "Audit chain append latency.", buckets=KEK_BUCKETS, registry=r
        )
        self.audit_failures = Counter(
            "keysvc_audit_write_failures",
            "Audit appends that failed (the operation failed closed).",
            registry=r,
        )
        self._items: dict[tuple[str, str, str], Any] = {}
        self._principals: dict[str, Any] = {}
        self._known_keys: frozenset[str] = frozenset()
        self._cache: DekCache | None = None
        self._cache_seen = (0, 0)
        self._keyring: Keyring | None = None
        self._exported_keys: set[str] = set()
        self._lock = threading.Lock()
        self._methods: dict[str, MethodMetrics] = {}

    # -- per call -----------------------------------------------------------------------------

    def method(self, method: str, grpc_type: str = "unary") -> MethodMetrics:
        found = self._methods.get(method)
        if found is None:
            found = self._methods[method] = MethodMetrics(self, method, grpc_type)
        return found

    def key_label(self, name: str, *, known: bool) -> str:
        """``name`` if it is (or, ``known``: the call proved it is) an existing key, else ``unknown``."""
        if known or name in self._known_keys:
            return name
        return UNKNOWN_KEY

    def item_counter(self, operation: str, key: str, outcome: str) -> Any:
        slot = (operation, key, outcome)
        child = self._items.get(slot)
        if child is None:
            child = self._items[slot] = self.items_total.labels(operation, key, outcome)
        return child

    def detokenized(self, principal: str) -> Any:
        child = self._principals.get(principal)
        if child is None:
            if len(self._principals) >= MAX_PRINCIPALS:
                principal = OTHER_PRINCIPAL
            child = self._principals[principal] = self.detokenize_items.labels(principal or "anonymous")
        return child

    # -- jobs ---------------------------------------------------------------------------------

    def job_run(self, job: str, outcome: str, seconds: float) -> None:
        """:class:`JobRecorder`: one background job run."""
        self.scheduler_runs.labels(job, outcome).inc()
        self.scheduler_seconds.labels(job).observe(seconds)

    def audit_write(self, seconds: float, ok: bool) -> None:
        """:class:`AuditRecorder`: one audit append (its latency, and whether it failed)."""
        self.audit_seconds.observe(seconds)
        if not ok:
            self.audit_failures.inc()

    # -- sampled state ------------------------------------------------------------------------

    def watch_cache(self, cache: DekCache) -> None:
        self._cache = cache
        self._cache_seen = (cache.hits, cache.misses)

    def watch_keys(self, keyring: Keyring) -> None:
        """Export per-key age and primary encryptions from this process (one worker only)."""
        self._keyring = keyring

    @property
    def watching_keys(self) -> bool:
        return self._keyring is not None

    def learn_keys(self, keyring: Keyring) -> None:
        """Refresh the set of key names allowed as label values."""
        self._known_keys = frozenset(k.name for k in keyring.all())

    def sample(self) -> None:
        """Copy DEK cache counters and key state into metrics (scrape time or periodic)."""
        with self._lock:
            cache = self._cache
            if cache is not None:
                hits, misses = cache.hits, cache.misses
                seen_hits, seen_misses = self._cache_seen
                if hits > seen_hits:
                    self.cache_hits.inc(hits - seen_hits)
                if misses > seen_misses:
                    self.cache_misses.inc(misses - seen_misses)
                self._cache_seen = (hits, misses)
                self.cache_entries.set(len(cache))
            keyring = self._keyring
            if keyring is None:
                return
            try:
                records = keyring.all()
            except KeysvcError:
                return
            now = time.time()
            names = set()
            for record in records:
                names.add(record.name)
                primary = record.primary
                rotated = record.last_rotated_at or primary.created_at
                self.key_age.labels(record.name).set(max(0.0, now - rotated))
                self.key_primary_encryptions.labels(record.name).set(primary.encryptions)
            if not getattr(values.ValueClass, "_multiprocess", False):  # no removal in multiprocess mode
                for gone in self._exported_keys - names:
                    self.key_age.remove(gone)
                    self.key_primary_encryptions.remove(gone)
            self._exported_keys = names
            self._known_keys = frozenset(names) | self._known_keys

    # -- KEK ------------------------------------------------------------------------------------

    def instrument_kek(self, kek: KekProvider) -> KekProvider:
        return InstrumentedKek(kek, self)


class _SampleOnCollect:
    """A collector that yields nothing but refreshes sampled values before the others are read."""

    def __init__(self, sample: Callable[[], None]) -> None:
        self._sample = sample

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> list[Metric]:
        try:
            self._sample()
        except Exception as exc:  # a failed refresh must not fail the scrape
            log.warning("metrics sample failed", extra={"error_type": type(exc).__name__})
        return []


class Sampler:
    """Calls :meth:`Metrics.sample` every ``interval`` seconds (workers: no scrape in-process)."""

    def __init__(self, metrics: Metrics, keyring: Keyring, interval: float) -> None:
        self._metrics = metrics
        self._keyring = keyring
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                if not self._metrics.watching_keys:  # sample() refreshes the names itself then
                    self._metrics.learn_keys(self._keyring)
                self._metrics.sample()
            except Exception as exc:
                log.warning("metrics sample failed", extra={"error_type": type(exc).__name__})
            if self._stop.wait(self._interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class InstrumentedKek:
    """A :class:`KekProvider` that times every call and counts failures (by error reason)."""

    def __init__(self, inner: KekProvider, metrics: Metrics) -> None:
        self._inner = inner
        self.name = inner.name
        self._errors = metrics.kek_errors
        ops = ("wrap", "unwrap", "unwrap_many", "rewrap_many", "rotate", "health")
        self._timers = {op: metrics.kek_seconds.labels(inner.name, op) for op in ops}

    @property
    def inner(self) -> KekProvider:
        return self._inner

    def _call(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        except KeysvcError as exc:
            self._errors.labels(self.name, op, exc.reason).inc()
            raise
        except Exception:
            self._errors.labels(self.name, op, "ERROR").inc()
            raise
        finally:
            self._timers[op].observe(time.perf_counter() - start)

    def wrap(self, dek: bytes, binding: bytes) -> bytes:
        result: bytes = self._call("wrap", self._inner.wrap, dek, binding)
        return result

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        result: bytes = self._call("unwrap", self._inner.unwrap, wrapped, binding)
        return result

    def unwrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        result: list[bytes] = self._call("unwrap_many", self._inner.unwrap_many, items)
        return result

    def rewrap_many(self, items: Sequence[tuple[bytes, bytes]]) -> list[bytes]:
        result: list[bytes] = self._call("rewrap_many", self._inner.rewrap_many, items)
        return result

    def rotate(self) -> int:
        result: int = self._call("rotate", self._inner.rotate)
        return result

    def current_version(self) -> int:
        return self._inner.current_version()

    def kek_version(self, wrapped: bytes) -> int:
        return self._inner.kek_version(wrapped)

    def health(self) -> KekHealth:
        health: KekHealth = self._call("health", self._inner.health)
        if not health.ok:
            self._errors.labels(self.name, "health", "UNHEALTHY").inc()
        return health

    def close(self) -> None:
        self._inner.close()
