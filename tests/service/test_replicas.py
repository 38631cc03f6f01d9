"""Two real server processes on one PostgreSQL: rotations and state changes cross over within
the documented bound (5 s; in practice metadata_ttl_seconds = 1 s), the scheduler makes one
version per due period, and no replica encrypts under a version disabled elsewhere."""

import itertools
import os
import subprocess
import sys
import time

import pytest

from keysvc_client import BatchError, FailedPreconditionError, KeyServiceClient
from keysvc_client._pb.keysvc.v1 import admin_pb2

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BOUND = 5.0


def start(data, url, kek):
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "keysvc.cli.serve", "serve", "--dev", "--data-dir", str(data)),
            *("--listen", "127.0.0.1:0", "--store-url", url, "--log-level", "WARNING"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "KEYSVC_KEK_LOCAL_PATH": str(kek),
            "KEYSVC_SCHEDULER_INTERVAL_SECONDS": "0.3",
        },
    )
    line = proc.stdout.readline()
    assert line.startswith("keysvc listening on 127.0.0.1:"), line
    token = (data / "dev-token").read_text().strip()
    client = KeyServiceClient(f"127.0.0.1:{line.rsplit(':', 1)[1].strip()}", token=token)
    return proc, client


@pytest.fixture
def replicas(tmp_path, pg_url):
    started = [start(tmp_path / "a", pg_url, tmp_path / "kek.json")]
    started.append(start(tmp_path / "b", pg_url, tmp_path / "kek.json"))
    yield [c for _, c in started]
    for proc, client in started:
        client.close()
        proc.terminate()
        proc.wait(timeout=20)
        proc.stdout.close()


def until(predicate, bound=BOUND):
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < bound, "not visible within the bound"
        time.sleep(0.05)
    return time.monotonic() - start


def test_rotation_and_disable_cross_replicas_within_the_bound(replicas):
    a, b = replicas
    a.admin.create_key("k", "encrypt")
    old = b.encrypt("k", [b"v1"])
    assert a.decrypt(old) == [b"v1"]
    a.admin.rotate_key("k")

    def b_encrypts_under_v2():
        ct = b.encrypt("k", [b"x"])[0]
        return a.decrypt([ct]) == [b"x"] and _version(a, ct) == 2

    until(b_encrypts_under_v2)
    a.admin.disable_version("k", 1)
    disabled_at = time.monotonic()

    def b_refuses_v1():
        try:
            b.decrypt(old)
        except BatchError as exc:
            return isinstance(exc.results[0].error, FailedPreconditionError)
        return False

    until(b_refuses_v1)
    # after the bound, every encryption anywhere is under the primary, never the disabled v1
    time.sleep(max(0.0, 1.5 - (time.monotonic() - disabled_at)))
    for client in (a, b):
        for ct in client.encrypt("k", [b"y"] * 20):
            assert _version(a, ct) == 2
    a.admin.enable_version("k", 1)
    until(lambda: not b_refuses_v1())
    assert b.decrypt(old) == [b"v1"]


def _version(client, ct):
    from keysvc.crypto.envelope import parse_header

    return parse_header(ct).key_version


def test_scheduler_on_two_replicas_makes_one_version_per_period(replicas):
    a, b = replicas
    policy = admin_pb2.KeyPolicy(rotate_every_seconds=1)
    a.admin.create_key("k", "encrypt", policy=policy)
    time.sleep(4.2)
    key = b.admin.get_key("k")
    created = [v.created_at.ToNanoseconds() / 1e9 for v in key.versions]
    assert 3 <= len(created) <= 5  # 4.2 s / 1 s periods, each rotated within one 0.3 s tick of due
    gaps = [later - earlier for earlier, later in itertools.pairwise(created)]
    assert all(gap >= 1.0 for gap in gaps), gaps  # never two versions in one period
    assert all(v.state_changed_by in ("dev", "keysvc:scheduler") for v in key.versions)
