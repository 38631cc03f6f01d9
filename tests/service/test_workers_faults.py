"""Faults under load: Vault down and back, a worker SIGKILLed, a key rotated and another disabled mid-run.

A load generator (separate processes, bench.load) drives mixed traffic at ``--workers 2``
with Vault Transit (the double) as KEK provider and a 1 s DEK cache TTL, so the outage
really is felt. Afterwards every value that was ever encrypted (or tokenized) must decrypt
(or detokenize) to what was sent, and the only non-OK status is UNAVAILABLE (documented
for KEK outages and for calls in flight on a worker that died). PostgreSQL restarts are
covered by the store's own tests.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from bench.load import KEY, Report, ServerProcess, Spec, drive, prepare
from keysvc_client import BatchError, FailedPreconditionError, UnavailableError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ALLOWED = {"OK", "UNAVAILABLE", "item:UNAVAILABLE"}


def _retry(action, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        try:
            return action()
        except UnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_faults_under_load_lose_nothing(tmp_path, vault, vault_double):
    key = vault.create_key(derived=True)
    env = {
        "VAULT_ADDR": vault.addr,
        "VAULT_TOKEN": vault.token,
        "KEYSVC_CACHE_DEK_TTL_SECONDS": "1",
        "KEYSVC_VAULT_REQUEST_TIMEOUT_SECONDS": "1",
        "KEYSVC_VAULT_BREAKER_RESET_SECONDS": "0.3",
    }
    extra = (
        "--workers",
        "2",
        "--kek-provider",
        "vault-transit",
        "--vault-mount",
        vault.mount,
        "--vault-key",
        key,
    )
    with ServerProcess(tmp_path / "data", *extra, env=env, log_level="INFO") as s:
        tokens = prepare(s.address, s.token)
        with s.client() as client:  # a second key whose old version will be disabled mid-run
            client.admin.create_key("other", "encrypt")
            old = [b"other-%d" % i for i in range(50)]
            sealed = client.encrypt("other", old, context={"f": "x"})
            client.admin.rotate_key("other")
        spec = Spec(
            s.address,
            s.token,
            seconds=6.0,
            callers=12,
            token_weight=1.0 if tokens else 0.0,
            timeout=10.0,
            verify_seconds=20.0,
        )
        result: list[Report] = []
        load = threading.Thread(target=lambda: result.append(drive(spec, clients=1)))
        load.start()
        time.sleep(1.0)
        vault_double.down()
        time.sleep(1.5)
        vault_double.up()
        time.sleep(0.5)
        before = s.worker_pids()
        os.kill(before[1], signal.SIGKILL)
        time.sleep(0.5)
        with s.client() as client:
            rotated = _retry(lambda: client.admin.rotate_key(KEY))
            _retry(lambda: client.admin.disable_version("other", 1))
            time.sleep(1.5)  # past the documented bound for every worker to see the new state
            with pytest.raises(BatchError) as refused:
                client.decrypt(sealed, context={"f": "x"})
            assert {type(r.error) for r in refused.value.results} == {FailedPreconditionError}
            assert {str(r.error) for r in refused.value.results} == {"key version disabled"}
            _retry(lambda: client.admin.enable_version("other", 1))
        assert rotated.primary_version == 2
        load.join(timeout=90)
        assert not load.is_alive()
        after = s.worker_pids()
        assert after[1] != before[1]
        with s.client() as client:
            time.sleep(1.5)
            assert _retry(lambda: client.decrypt(sealed, context={"f": "x"})) == old
        assert s.stop() == 0
        log = s.log_path.read_text()
    report = result[0]
    assert report.ok_calls > 100
    assert report.corrupted == 0 and report.lost == 0, report
    assert report.verified > 0
    assert set(report.codes) <= ALLOWED, report.codes
    assert report.codes.get("UNAVAILABLE", 0) + report.codes.get("item:UNAVAILABLE", 0) > 0  # it was felt
    assert '"level": "error"' not in log  # no unexpected exception anywhere
