"""``keysvc serve --workers 2``: one port, aggregated metrics, crash replacement, jobs in one worker."""

from __future__ import annotations

import os
import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.load import ServerProcess
from keysvc.server.workers import reserve_port
from keysvc_client import KeyServiceClient
from keysvc_client._pb.keysvc.v1 import admin_pb2, admin_pb2_grpc
from tests.service.test_metrics import samples, value

pytestmark = pytest.mark.slow

ENCRYPT = {"grpc_type": "unary", "grpc_service": "keysvc.v1.Crypto", "grpc_method": "Encrypt"}


def _round_trips(s: ServerProcess, n: int) -> None:
    """n fresh connections (so SO_REUSEPORT spreads them), one Encrypt + Decrypt each."""
    for i in range(n):
        with KeyServiceClient(s.address, token=s.token) as client:
            value_ = f"value-{i}".encode()
            assert client.decrypt(client.encrypt("k", [value_])) == [value_]


def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def _jobs_lines(s: ServerProcess) -> list[dict]:
    return [line for line in s.log_lines() if line.get("msg") == "started background jobs"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers(tmp_path):
    multiproc = tmp_path / "multiproc"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale garbage from a previous run")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    with ServerProcess(tmp_path / "data", "--workers", "2", "--metrics-listen", "127.0.0.1:0",
                       env=env, log_level="INFO") as s:
        assert not (multiproc / "counter_999999.db").exists()
        first = s.worker_pids()
        assert set(first) == {0, 1} and len(set(first.values())) == 2
        with s.client() as client:
            client.admin.create_key("k", "encrypt")
        _round_trips(s, 30)
        served_by = {line["pid"] for line in s.log_lines() if line.get("logger") == "keysvc.access"}
        assert served_by == set(first.values())
        found = samples(s.scrape())
        assert value(found, "grpc_server_started_total", **ENCRYPT) == 30
        assert value(found, "keysvc_items_total", operation="decrypt", key="k", outcome="ok") == 30
        jobs = _jobs_lines(s)
        assert [(j["worker"], j["pid"]) for j in jobs] == [(0, first[0])]

        # A worker killed outright is replaced; the jobs move to worker 0's replacement.
        os.kill(first[0], signal.SIGKILL)
        _wait_for(lambda: len(_jobs_lines(s)) == 2)
        second = s.worker_pids()
        assert second[1] == first[1] and _alive(second[0])
        jobs = _jobs_lines(s)
        assert [(j["worker"], j["pid"]) for j in jobs] == [(0, first[0]), (0, second[0])]
        _round_trips(s, 10)
        found = samples(s.scrape())
        assert value(found, "grpc_server_started_total", **ENCRYPT) == 40  # the dead worker's count stays

        assert s.stop(signal.SIGTERM) == 0
    for pid in second.values():
        assert not _alive(pid)
    assert not list(multiproc.glob("gauge_live*"))


def test_port_zero_and_announce_once(tmp_path):
    with ServerProcess(tmp_path / "data", "--workers", "2") as s:
        assert s.address.startswith("127.0.0.1:") and not s.address.endswith(":0")
        with s.client() as client:
            assert client.admin.status().keys == 0
        assert s.stop(signal.SIGINT) == 0
        assert s.proc.stdout is not None


def test_health_only_port(tmp_path):
    sock, _, port = reserve_port("127.0.0.1:0")
    sock.close()
    with ServerProcess(tmp_path / "data", "--health-listen", f"127.0.0.1:{port}") as s, \
            grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:  # only health is served there
            admin_pb2_grpc.AdminStub(channel).GetStatus(
                admin_pb2.GetStatusRequest(), metadata=(("authorization", f"Bearer {s.token}"),))
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
