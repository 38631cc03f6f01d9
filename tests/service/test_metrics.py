"""Prometheus metrics: gRPC server metrics, keysvc_ metrics, bounded labels, nothing secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.load import ServerProcess
from keysvc.errors import DecryptionFailed, KekUnavailable
from keysvc.kek.base import KekHealth
from keysvc.server.app import RunningServer, Service, build_service, create_server
from keysvc.server.metrics import Metrics
from keysvc_client import BatchError, KeyServiceClient, KeysvcError, NotFoundError, UnauthenticatedError
from tests.conftest import dev_settings

PLANT = "4111 1111 1111 1111 PLANTED/SECRET"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def label_values(found: Samples, label: str) -> set[str]:
    return {v for (_, labels) in found for k, v in labels if k == label}


@pytest.fixture
def local(tmp_path: Path) -> Iterator[tuple[Service, RunningServer, KeyServiceClient]]:
    settings = dev_settings(tmp_path / "data")
    service = build_service(settings)
    running = create_server(service, "127.0.0.1:0")
    token = settings.dev_token_path.read_text().strip()
    try:
        with KeyServiceClient(f"127.0.0.1:{running.port}", token=token) as client:
            yield service, running, client
    finally:
        running.stop(None)
        service.close()


def test_grpc_and_keysvc_metrics(local):
    service, running, client = local
    client.admin.create_key("k", "encrypt")
    cts = client.encrypt("k", [b"a", b"b", PLANT.encode()], context={"f": PLANT})
    cts.append(b"\x01\x01\x03zzz" + b"\x00" * 40)  # names a key that does not exist
    with pytest.raises(BatchError):
        client.decrypt(cts, context={"f": PLANT})
    with pytest.raises(NotFoundError):
        client.encrypt("no-such-key", [b"x"])
    with pytest.raises(KeysvcError):
        client.encrypt(PLANT, [b"x"])
    with KeyServiceClient(f"127.0.0.1:{running.port}", token="wrong") as anonymous, pytest.raises(
        UnauthenticatedError
    ):
        anonymous.encrypt("k", [b"x"])
    client.admin.create_key("digits", "fpe", format="digits")
    tokens = client.tokenize("digits", ["0123456789", "9876543210"])
    assert client.detokenize("digits", tokens, purpose="test") == ["0123456789", "9876543210"]
    service.metrics.watch_keys(service.keyring)
    text = generate_latest(service.metrics.registry).decode()
    found = samples(text)
    assert value(found, "keysvc_detokenize_items_total", principal="dev") == 2
    assert value(found, "keysvc_items_total", operation="tokenize", key="digits", outcome="ok") == 2
    rpc = {"grpc_type": "unary", "grpc_service": "keysvc.v1.Crypto", "grpc_method": "Encrypt"}
    assert value(found, "grpc_server_started_total", **rpc) == 4
    assert value(found, "grpc_server_handled_total", **rpc, grpc_code="OK") == 1
    assert value(found, "grpc_server_handled_total", **rpc, grpc_code="NotFound") == 2
    assert value(found, "grpc_server_handled_total", **rpc, grpc_code="Unauthenticated") == 1
    assert value(found, "grpc_server_handling_seconds_count", **rpc) == 4
    decrypt = {**rpc, "grpc_method": "Decrypt"}
    assert value(found, "grpc_server_handled_total", **decrypt, grpc_code="OK") == 1
    assert value(found, "keysvc_items_total", operation="encrypt", key="k", outcome="ok") == 3
    assert value(found, "keysvc_items_total", operation="decrypt", key="k", outcome="ok") == 3
    assert value(found, "keysvc_items_total", operation="decrypt", key="unknown", outcome="error") == 1
    assert label_values(found, "key") == {"k", "digits"} | ({"unknown"} & label_values(found, "key"))
    assert value(found, "keysvc_dek_cache_hits_total") >= 2
    assert value(found, "keysvc_dek_cache_entries") >= 1
    assert 0 <= value(found, "keysvc_key_seconds_since_rotation", key="k") < 60
    assert value(found, "keysvc_key_primary_encryptions", key="k") >= 3
    assert value(found, "keysvc_kek_request_seconds_count", provider="local", operation="wrap") == 2  # 2 keys
    assert PLANT not in text and "PLANTED" not in text and "zzz" not in text


def test_scheduler_runs_are_countable_through_the_service(local):
    service, _, _ = local
    service.metrics.job_run("rotate-due-keys", "ok", 0.25)
    service.metrics.job_run("rotate-due-keys", "error", 0.5)
    found = samples(generate_latest(service.metrics.registry).decode())
    assert value(found, "keysvc_scheduler_runs_total", job="rotate-due-keys", outcome="ok") == 1
    assert value(found, "keysvc_scheduler_run_seconds_count", job="rotate-due-keys") == 2


def test_audit_write_hook():
    metrics = Metrics()
    metrics.audit_write(0.002, ok=True)
    metrics.audit_write(0.5, ok=False)
    found = samples(generate_latest(metrics.registry).decode())
    assert value(found, "keysvc_audit_write_seconds_count") == 2
    assert value(found, "keysvc_audit_write_failures_total") == 1


class _FlakyKek:
    name = "fake"

    def __init__(self) -> None:
        self.down = False

    def wrap(self, dek: bytes, binding: bytes) -> bytes:
        if self.down:
            raise KekUnavailable()
        return b"fake:v1:" + dek

    def unwrap(self, wrapped: bytes, binding: bytes) -> bytes:
        if not wrapped.startswith(b"fake:v1:"):
            raise DecryptionFailed()
        return wrapped[8:]

    def unwrap_many(self, items):
        return [self.unwrap(w, b) for w, b in items]

    def rewrap_many(self, items):
        return [w for w, _ in items]

    def rotate(self) -> int:
        return 1

    def current_version(self) -> int:
        return 1

    def kek_version(self, wrapped: bytes) -> int:
        return 1

    def health(self) -> KekHealth:
        return KekHealth(not self.down)

    def close(self) -> None:
        pass


def test_kek_latency_and_errors_by_reason():
    metrics = Metrics()
    inner = _FlakyKek()
    kek = metrics.instrument_kek(inner)
    assert kek.unwrap(kek.wrap(b"k" * 32, b"bind"), b"bind") == b"k" * 32
    with pytest.raises(DecryptionFailed):
        kek.unwrap(b"junk", b"bind")
    inner.down = True
    with pytest.raises(KekUnavailable):
        kek.wrap(b"k" * 32, b"bind")
    assert not kek.health().ok
    found = samples(generate_latest(metrics.registry).decode())
    errors = "keysvc_kek_errors_total"
    assert value(found, errors, provider="fake", operation="wrap", reason="KEK_UNAVAILABLE") == 1
    assert value(found, errors, provider="fake", operation="unwrap", reason="DECRYPTION_FAILED") == 1
    assert value(found, errors, provider="fake", operation="health", reason="UNHEALTHY") == 1
    assert value(found, "keysvc_kek_request_seconds_count", provider="fake", operation="unwrap") == 2


def test_detokenize_principals_are_bounded():
    metrics = Metrics()
    for i in range(300):
        metrics.detokenized(f"svc-{i}").inc()
    found = samples(generate_latest(metrics.registry).decode())
    principals = label_values(found, "principal")
    assert len(principals) <= 201 and "other" in principals


def test_metrics_endpoint_of_a_served_process_has_no_planted_secret(tmp_path):
    with ServerProcess(tmp_path / "data", "--metrics-listen", "127.0.0.1:0", log_level="INFO") as s:
        with s.client() as client:
            client.admin.create_key("k", "encrypt")
            cts = client.encrypt("k", [PLANT.encode()], context={PLANT: PLANT})
            assert client.decrypt(cts, context={PLANT: PLANT}) == [PLANT.encode()]
            for attempt in (lambda: client.encrypt(PLANT, [b"x"]), lambda: client.admin.get_key(PLANT)):
                with pytest.raises(KeysvcError):
                    attempt()
        with grpc.insecure_channel(s.address) as channel:
            from grpc_health.v1 import health_pb2, health_pb2_grpc

            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        text = s.scrape()
    found = samples(text)
    assert value(found, "grpc_server_handled_total", grpc_type="unary", grpc_service="keysvc.v1.Crypto",
                 grpc_method="Encrypt", grpc_code="OK") == 1
    assert value(found, "grpc_server_started_total", grpc_type="unary", grpc_service="grpc.health.v1.Health",
                 grpc_method="Check") == 1
    assert value(found, "keysvc_items_total", operation="decrypt", key="k", outcome="ok") == 1
    assert PLANT not in text and "PLANTED" not in text and "4111 1111" not in text
    assert label_values(found, "key") <= {"k", "unknown"}
