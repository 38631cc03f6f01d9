import json

import pytest

from keysvc.cli.admin import main


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


def test_create_rotate_show_list(admin):
    assert admin("keys", "create", "customer-pii", "--purpose", "encrypt")[0] == 0
    code, out, _ = admin("keys", "rotate", "customer-pii")
    assert code == 0 and "primary v2" in out
    code, out, _ = admin("-o", "json", "keys", "show", "customer-pii")
    doc = json.loads(out)
    assert code == 0 and doc["primary_version"] == 2
    assert [v["state"] for v in doc["versions"]] == ["VERSION_STATE_ACTIVE", "VERSION_STATE_PRIMARY"]
    code, out, _ = admin("keys", "list")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["customer-pii", "encrypt", "2"]


def test_exit_codes(admin, monkeypatch):
    assert admin("keys", "create", "k", "--purpose", "encrypt")[0] == 0
    code, _, err = admin("keys", "create", "k", "--purpose", "encrypt")
    assert code == 2 and "already exists" in err
    assert admin("keys", "show", "missing")[0] == 2
    assert admin("keys", "frobnicate")[0] == 1
    assert admin("keys", "create", "k2")[0] == 1  # --purpose missing
    assert admin("keys", "create", "k3", "--purpose", "fpe", "--format-option", "oops")[0] == 1
    monkeypatch.setenv("KEYSVC_TOKEN", "wrong")
    code, _, err = admin("keys", "list")
    assert code == 2 and "unauthenticated" in err
