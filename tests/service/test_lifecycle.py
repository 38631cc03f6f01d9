"""Key lifecycle through the real server and the operator CLI (every KEK provider x every store)."""

import json

import pytest

from keysvc.cli.admin import main, parse_duration
from keysvc.server.app import build_service, create_server
from keysvc_client import BatchError, KeyServiceClient, KeyVersionDestroyedError
from keysvc_client.rewrap import rewrap_column


@pytest.fixture
def admin(server, token, monkeypatch, capsys):
    monkeypatch.setenv("KEYSVC_ADDR", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("KEYSVC_TOKEN", token)

    def run(*argv):
        with pytest.raises(SystemExit) as info:
            main(list(argv))
        out, err = capsys.readouterr()
        return info.value.code, out, err

    return run


def states(admin, name="k"):
    code, out, _ = admin("-o", "json", "keys", "show", name)
    assert code == 0
    versions = json.loads(out)["versions"]
    return [v["state"].removeprefix("VERSION_STATE_").lower().replace("_", "-") for v in versions]


def test_version_lifecycle_through_the_cli(admin, client):
    assert admin("keys", "create", "k", "--purpose", "encrypt", "--rotate-every", "30d")[0] == 0
    old = client.encrypt("k", [b"v1 data"])
    assert admin("keys", "rotate", "k")[0] == 0
    new = client.encrypt("k", [b"v2 data"])

    code, out, err = admin("keys", "disable", "k", "2")
    assert code == 2 and "primary version cannot change state" in err
    assert admin("keys", "disable", "k", "1")[0] == 0
    assert states(admin) == ["disabled", "primary"]
    with pytest.raises(BatchError) as info:
        client.decrypt(old + new)
    assert "disabled" in str(info.value.results[0].error) and info.value.results[1].value == b"v2 data"
    assert admin("keys", "enable", "k", "1")[0] == 0
    assert client.decrypt(old) == [b"v1 data"]

    code, out, _ = admin("keys", "destroy", "k", "1", "--grace", "7d", "--yes")
    assert code == 0 and "scheduled-for-destruction" in out
    code, out, _ = admin("-o", "json", "keys", "show", "k")
    v1 = json.loads(out)["versions"][0]
    assert v1["state_changed_by"] == "dev" and "destroy_after" in v1
    assert admin("keys", "enable", "k", "1")[0] == 2  # enable is not restore
    assert admin("keys", "restore", "k", "1")[0] == 0
    assert states(admin) == ["active", "primary"]
    assert admin("keys", "restore", "k", "1")[0] == 2

    code, out, _ = admin("keys", "show", "k")
    assert code == 0 and "next rotation 20" in out and "rotate every 30d" in out
    code, out, _ = admin("-o", "json", "keys", "show", "k")
    events = json.loads(out)["history"]
    history = [(e["version"], e.get("from_state", "-"), e["to_state"], e["actor"]) for e in events]
    assert history == [
        (1, "-", "VERSION_STATE_PRIMARY", "dev"),
        (1, "VERSION_STATE_PRIMARY", "VERSION_STATE_ACTIVE", "dev"),
        (2, "-", "VERSION_STATE_PRIMARY", "dev"),
        (1, "VERSION_STATE_ACTIVE", "VERSION_STATE_DISABLED", "dev"),
        (1, "VERSION_STATE_DISABLED", "VERSION_STATE_ACTIVE", "dev"),
        (1, "VERSION_STATE_ACTIVE", "VERSION_STATE_SCHEDULED_FOR_DESTRUCTION", "dev"),
        (1, "VERSION_STATE_SCHEDULED_FOR_DESTRUCTION", "VERSION_STATE_ACTIVE", "dev"),
    ]
    code, out, _ = admin("keys", "show", "k", "--history")
    assert code == 0 and "(created)" in out and "scheduled-for-destruction  active" in out


def test_policy_due_rotation_and_status(admin, client):
    assert admin("keys", "create", "k", "--purpose", "encrypt")[0] == 0
    code, out, _ = admin(
        "-o", "json", "keys", "policy", "k",
        "--rotate-every", "1s", "--keep-versions", "3", "--retain-for", "7y",
    )  # fmt: skip
    policy = json.loads(out)["policy"]
    assert code == 0 and policy == {
        "rotate_every_seconds": "1",
        "keep_versions": 3,
        "retain_for_seconds": str(7 * 365 * 86_400),
    }
    import time

    time.sleep(1.1)
    code, out, _ = admin("-o", "json", "keys", "rotate", "--due")
    assert code == 0 and json.loads(out)["rotated"] == ["k"]
    assert admin("keys", "rotate")[0] == 1  # neither NAME nor --due
    code, out, _ = admin("keys", "policy", "k", "--rotate-every", "0")
    assert code == 0 and "rotate every -" in out
    code, out, _ = admin("-o", "json", "status")
    assert code == 0 and json.loads(out)["keys"] == 1
    code, out, _ = admin("-o", "json", "tokens", "purge-expired")
    assert code == 0 and json.loads(out) == {"purged": 0}
    assert admin("keys", "policy", "k", "--rotate-every", "soon")[0] == 1


def test_retention_plan_equals_apply_through_the_cli(admin, client):
    assert admin("keys", "create", "k", "--purpose", "encrypt")[0] == 0
    assert admin("keys", "create", "other", "--purpose", "encrypt")[0] == 0
    for _ in range(3):
        assert admin("keys", "rotate", "k")[0] == 0
    assert admin("keys", "rotate", "other")[0] == 0
    assert admin("keys", "destroy", "k", "2", "--grace", "0", "--yes")[0] == 0
    # retain-for 1s: versions 1 and 3 (and other's v1) are past it; v2 is already due for destruction
    assert admin("keys", "policy", "k", "--retain-for", "1s")[0] == 0
    assert admin("keys", "policy", "other", "--retain-for", "1s")[0] == 0
    import time

    time.sleep(1.1)
    code, out, _ = admin("-o", "json", "retention", "plan", "--grace", "30d")
    assert code == 0
    plan = [(a["key"], a["version"], a["action"]) for a in json.loads(out)["actions"]]
    assert sorted(plan) == [
        ("k", 1, "schedule"),
        ("k", 2, "destroy"),
        ("k", 3, "schedule"),
        ("other", 1, "schedule"),
    ]
    code, out, _ = admin("-o", "json", "retention", "apply", "--grace", "30d")
    assert code == 0
    applied = [(a["key"], a["version"], a["action"]) for a in json.loads(out)["actions"]]
    assert applied == plan
    assert states(admin) == ["scheduled-for-destruction", "destroyed", "scheduled-for-destruction", "primary"]
    code, out, _ = admin("-o", "json", "retention", "plan")
    assert json.loads(out).get("actions", []) == []


def test_destroy_fails_exactly_its_ciphertexts(client):
    client.admin.create_key("k", "encrypt")
    by_version = {}
    for v in range(1, 4):
        by_version[v] = client.encrypt("k", [b"%d-%d" % (v, i) for i in range(50)], context={"f": "x"})
        client.admin.rotate_key("k")
    client.admin.rotate_key("k")
    client.admin.destroy_version("k", 2, grace_seconds=0)
    assert [a.action for a in client.admin.apply_retention().actions] == ["destroy"]
    everything = by_version[1] + by_version[2] + by_version[3]
    with pytest.raises(BatchError) as info:
        client.decrypt(everything, context={"f": "x"})
    results = info.value.results
    failed = [i for i, r in enumerate(results) if r.error is not None]
    assert failed == list(range(50, 100))
    for i in failed:
        err = results[i].error
        assert isinstance(err, KeyVersionDestroyedError)
        assert err.code == "FAILED_PRECONDITION" and err.message == "key version destroyed"
    assert [r.value for r in results[:50]] == [b"1-%d" % i for i in range(50)]
    key = client.admin.get_key("k")
    assert [v.encryptions > 0 for v in key.versions] == [True, True, True, False, False]

    # the rewrap helper moves what it can and hands back the per-item error for the rest
    seen = []
    out = rewrap_column(
        client, everything, chunk=40, progress=lambda d, t: seen.append((d, t)), context={"f": "x"}
    )
    assert seen[-1] == (150, 150) and len(seen) == 4
    assert all(isinstance(o, KeyVersionDestroyedError) for o in out[50:100])
    assert client.decrypt([o for o in out if isinstance(o, bytes)], context={"f": "x"})[:1] == [b"1-0"]


def test_ten_thousand_values_across_twenty_rotations_survive_a_restart(settings):
    values = [b"value-%05d" % i for i in range(10_000)]
    token = None
    cts = []
    service = build_service(settings)
    running = create_server(service, "127.0.0.1:0")
    try:
        token = settings.dev_token_path.read_text().strip()
        with KeyServiceClient(f"127.0.0.1:{running.port}", token=token) as c:
            c.admin.create_key("k", "encrypt")
            for r in range(20):
                cts += c.encrypt("k", values[r * 500 : (r + 1) * 500], context={"row": "r"})
                c.admin.rotate_key("k")
    finally:
        running.stop(None)
        service.close()
    service = build_service(settings)
    running = create_server(service, "127.0.0.1:0")
    try:
        with KeyServiceClient(f"127.0.0.1:{running.port}", token=token) as c:
            got = []
            for start in range(0, len(cts), 2_500):
                got += c.decrypt(cts[start : start + 2_500], context={"row": "r"})
            assert got == values
            assert c.admin.get_key("k").primary_version == 21
    finally:
        running.stop(None)
        service.close()


def test_completion_and_help(capsys, monkeypatch):
    with pytest.raises(SystemExit) as info:
        main(["completion", "bash"])
    out, _ = capsys.readouterr()
    assert info.value.code == 0 and "_KEYSVC_ADMIN_COMPLETE" in out
    helps = (["--help"], ["keys", "policy", "--help"], ["keys", "destroy", "--help"], ["retention", "--help"])
    for argv in helps:
        with pytest.raises(SystemExit) as info:
            main(argv)
        out, _ = capsys.readouterr()
        assert info.value.code == 0
    assert "Examples" in out or "retention" in out
    assert parse_duration("7y") == 7 * 365 * 86_400 and parse_duration("90") == 90


def test_start_jobs_runs_the_scheduler_unless_disabled(tmp_path):
    from keysvc.keys.scheduler import Scheduler
    from keysvc.server.app import start_jobs
    from tests.conftest import dev_settings

    for enabled, expected in ((True, 1), (False, 0)):
        overrides = {"scheduler.enabled": enabled, "scheduler.interval_seconds": 60}
        service = build_service(dev_settings(tmp_path / f"d{enabled}", **overrides))
        try:
            jobs = start_jobs(service)
            assert len(jobs) == expected and all(isinstance(j, Scheduler) for j in jobs)
            for job in jobs:
                job.stop()
        finally:
            service.close()
