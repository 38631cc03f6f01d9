"""keysvc-admin approvals / audit / incident / operators / policy through the real server."""

from __future__ import annotations

import json

import click
import pytest

from keysvc.cli.admin import main
from keysvc.cli.governance import GROUPS, parse_time, register
from tests.service.access_env import make_env


@pytest.fixture
def env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.close()


def run(env, monkeypatch, capsys, who, *argv, otp=True):
    monkeypatch.setenv("KEYSVC_ADDR", env.address)
    monkeypatch.setenv("KEYSVC_TOKEN", env.tokens[who])
    monkeypatch.setenv("KEYSVC_OTP", env.otp(who) if otp and who in env.secrets else "")
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_groups_attach_to_a_click_group():
    group = click.Group("cli")
    register(group)
    assert sorted(group.commands) == sorted(g.name for g in GROUPS)


def test_policy_check_explains(env, monkeypatch, capsys):
    code, out, _ = run(
        env,
        monkeypatch,
        capsys,
        "bob",
        "policy",
        "check",
        "--principal",
        "desktop",
        "--op",
        "detokenize",
        "--key",
        "pan",
    )
    assert code == 0 and "ALLOWED" in out and "roles.desktop.rules[0]" in out and "reveal: masked" in out
    code, out, _ = run(
        env,
        monkeypatch,
        capsys,
        "bob",
        "-o",
        "json",
        "policy",
        "check",
        "--principal",
        "ivr",
        "--op",
        "detokenize",
        "--key",
        "pan",
    )
    assert code == 0 and json.loads(out).get("allowed", False) is False


def test_dual_control_through_the_cli(env, monkeypatch, capsys):
    code, out, _ = run(env, monkeypatch, capsys, "alice", "-o", "json", "approvals", "request", "rotate-kek")
    assert code == 0
    approval = json.loads(out)["id"]
    code, _, err = run(env, monkeypatch, capsys, "alice", "approvals", "approve", approval)
    assert code == 2 and "own request" in err
    code, out, _ = run(env, monkeypatch, capsys, "bob", "approvals", "list")
    assert code == 0 and approval in out
    code, out, _ = run(env, monkeypatch, capsys, "bob", "approvals", "approve", approval)
    assert code == 0 and "executed" in out
    code, _, err = run(env, monkeypatch, capsys, "bob", "approvals", "approve", approval)
    assert code == 2


def test_missing_otp_is_refused(env, monkeypatch, capsys):
    code, _, err = run(env, monkeypatch, capsys, "alice", "operators", "list", otp=False)
    assert code == 2 and "one-time code" in err


def test_audit_verify_query_and_incident_commands(env, monkeypatch, capsys):
    code, out, _ = run(env, monkeypatch, capsys, "alice", "operators", "enroll", "erin")
    assert code == 0 and "otpauth://totp/keysvc%3Aerin?secret=" in out
    code, out, _ = run(env, monkeypatch, capsys, "alice", "incident", "freeze", "scratch")
    assert code == 0 and "froze scratch" in out
    code, out, _ = run(env, monkeypatch, capsys, "alice", "incident", "revoke", "ivr")
    assert code == 0 and "within" in out
    code, out, _ = run(
        env,
        monkeypatch,
        capsys,
        "bob",
        "-o",
        "json",
        "audit",
        "query",
        "--principal",
        "alice",
        "--since",
        "1d",
    )
    records = json.loads(out)["records"]
    assert code == 0 and {r["operation"] for r in records} >= {"governance.incident:FreezeKey"}
    code, out, _ = run(env, monkeypatch, capsys, "bob", "incident", "report", "--principal", "alice")
    assert code == 0 and "FreezeKey" in out
    code, out, _ = run(env, monkeypatch, capsys, "bob", "audit", "verify")
    assert code == 0 and "intact" in out
    with env.store._tx() as cur:
        cur.execute("UPDATE gov_audit SET principal = 'mallory' WHERE seq = 2")
    code, out, _ = run(env, monkeypatch, capsys, "bob", "audit", "verify")
    assert code == 2 and "seq 2: modified" in out
    code, out, _ = run(env, monkeypatch, capsys, "bob", "incident", "rotate-all", "--yes")
    assert code == 0 and "customer-pii" in out


def test_parse_time():
    assert parse_time("2026-12-01T10:00:00Z").year == 2026
    assert parse_time("24h") is not None and parse_time(None) is None
    with pytest.raises(click.BadParameter):
        parse_time("yesterday")


def test_enroll_prints_a_terminal_qr_code(monkeypatch, capsys):
    from keysvc.cli import governance

    monkeypatch.setattr(governance.sys.stdout, "isatty", lambda: True)
    governance._print_qr("otpauth://totp/keysvc:alice?secret=JBSWY3DPEHPK3PXP&issuer=keysvc")
    out = capsys.readouterr().out
    assert (len(out.splitlines()) > 10 and "█" in out) or "▀" in out or "▄" in out
