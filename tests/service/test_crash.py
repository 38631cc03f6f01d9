"""kill -9 in the middle of a rotation, a retention apply and a rewrap; the next run completes.

The server is a real subprocess; ``KEYSVC_TEST_CRASH_AT`` (keysvc.keys.faults) freezes it at a
named step, the test waits for the marker file and sends SIGKILL. Runs on SQLite and PostgreSQL.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from keysvc_client import BatchError, KeyServiceClient, KeysvcError, KeyVersionDestroyedError
from keysvc_client.rewrap import rewrap_column

pytestmark = pytest.mark.slow


class Server:
    def __init__(self, data: Path, store_url: str | None, **env: str) -> None:
        args = [sys.executable, "-m", "keysvc.cli.serve", "serve", "--dev", "--data-dir", str(data)]
        args += ["--listen", "127.0.0.1:0", "--log-level", "WARNING"]
        if store_url:
            args += ["--store-url", store_url]
        self.log_path = data.parent / f"server-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "KEYSVC_SCHEDULER_ENABLED": "false", **env},
        )
        line = self.proc.stdout.readline()
        if not line.startswith("keysvc listening on 127.0.0.1:"):
            self.proc.wait(timeout=10)
            raise AssertionError(f"server did not start: {line!r} {self.log_path.read_text()[-2000:]}")
        self.port = int(line.rsplit(":", 1)[1])
        self.client = KeyServiceClient(
            f"127.0.0.1:{self.port}", token=(data / "dev-token").read_text().strip(), timeout=20
        )

    def kill9(self) -> None:
        self.client.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.log.close()

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def store_url(store_overrides):
    return store_overrides.get("store.url")


@pytest.fixture
def start(tmp_path, store_url):
    started = []

    def run(**env):
        s = Server(tmp_path / "data", store_url, **env)
        started.append(s)
        return s

    yield run
    for s in started:
        if s.proc.poll() is None:
            s.kill9()


def crash_at(tmp_path, point, skip=0):
    marker = tmp_path / f"crashed-{point}"
    env = {"KEYSVC_TEST_CRASH_AT": point, "KEYSVC_TEST_CRASH_MARKER": str(marker)}
    if skip:
        env["KEYSVC_TEST_CRASH_SKIP"] = str(skip)
    return marker, env


def freeze_then_kill(server, marker, call):
    errors = []

    def go():
        try:
            call(server.client)
        except KeysvcError as exc:
            errors.append(exc)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, "the server never reached the crash point"
        time.sleep(0.02)
    server.kill9()
    t.join(timeout=20)
    return errors


@pytest.mark.parametrize("point", ["rotate.wrapped", "rotate.stored"])
def test_kill_during_rotation(tmp_path, start, point):
    s = start()
    s.client.admin.create_key("k", "encrypt")
    before = s.client.encrypt("k", [b"a", b"b"])
    s.stop()

    marker, env = crash_at(tmp_path, point)
    s = start(**env)
    freeze_then_kill(s, marker, lambda c: c.admin.rotate_key("k"))

    s = start()
    key = s.client.admin.get_key("k")
    committed = point == "rotate.stored"
    assert [v.version for v in key.versions] == ([1, 2] if committed else [1])
    assert sum(v.state == 1 for v in key.versions) == 1  # exactly one primary
    assert s.client.decrypt(before) == [b"a", b"b"]
    after = s.client.encrypt("k", [b"c"])
    assert s.client.decrypt(after) == [b"c"]
    assert s.client.admin.rotate_key("k").primary_version == key.primary_version + 1
    assert s.client.decrypt(before + after) == [b"a", b"b", b"c"]
    s.stop()


def test_kill_during_retention_apply(tmp_path, start):
    s = start()
    s.client.admin.create_key("k", "encrypt")
    keep = s.client.encrypt("k", [b"keep"])
    for _ in range(3):
        s.client.admin.rotate_key("k")
    for v in (1, 2, 3):
        s.client.admin.destroy_version("k", v, grace_seconds=0)
    s.stop()

    marker, env = crash_at(tmp_path, "retention.applied")
    s = start(**env)
    plan = s.client.admin.plan_retention()
    assert [(a.version, a.action) for a in plan.actions] == [(1, "destroy"), (2, "destroy"), (3, "destroy")]
    freeze_then_kill(s, marker, lambda c: c.admin.apply_retention())

    s = start()
    key = s.client.admin.get_key("k")
    assert [v.state for v in key.versions] == [5, 4, 4, 1]  # one destroyed, two still scheduled, primary
    remaining = s.client.admin.plan_retention()
    assert [(a.version, a.action) for a in remaining.actions] == [(2, "destroy"), (3, "destroy")]
    done = s.client.admin.apply_retention()
    assert [(a.version, a.action) for a in done.actions] == [(2, "destroy"), (3, "destroy")]
    assert [v.state for v in s.client.admin.get_key("k").versions] == [5, 5, 5, 1]
    assert s.client.admin.plan_retention().actions == []
    with pytest.raises(BatchError) as info:
        s.client.decrypt(keep)
    assert isinstance(info.value.results[0].error, KeyVersionDestroyedError)
    new = s.client.encrypt("k", [b"new"])
    assert s.client.decrypt(new) == [b"new"]
    s.stop()


def test_kill_during_rewrap(tmp_path, start):
    s = start()
    s.client.admin.create_key("k", "encrypt")
    values = [b"row-%04d" % i for i in range(3000)]
    column = s.client.encrypt("k", values, context={"t": "calls"})
    s.client.admin.rotate_key("k")
    s.stop()

    def persist(offset, results):
        for i, r in enumerate(results):
            if isinstance(r, bytes):
                column[offset + i] = r

    marker, env = crash_at(tmp_path, "rewrap.sealed", skip=1)  # the second chunk freezes
    s = start(**env)
    errors = freeze_then_kill(
        s, marker, lambda c: rewrap_column(c, column, chunk=1000, context={"t": "calls"}, write=persist)
    )
    assert errors  # the caller saw the server go away

    s = start()
    assert s.client.decrypt(column, context={"t": "calls"}) == values  # nothing became unreadable
    out = rewrap_column(s.client, column, chunk=1000, context={"t": "calls"}, write=persist)
    assert all(isinstance(o, bytes) for o in out)
    assert s.client.decrypt(column, context={"t": "calls"}) == values
    s.client.admin.disable_version("k", 1)  # nothing left under v1
    assert s.client.decrypt(column, context={"t": "calls"}) == values
    s.stop()
