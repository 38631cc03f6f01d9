"""Planted secrets never reach a log line or an error message."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keysvc.keys.fields import FieldCrypto
from keysvc_client import BatchError, InternalError, KeyServiceClient, KeysvcError

PLANT = "4111 1111 1111 1111 PLANTED/SECRET"  # not a valid key name, so no key is named after it


def test_unexpected_exception_becomes_opaque_internal(client, monkeypatch, caplog):
    client.admin.create_key("k", "encrypt")

    def explode(self, key, items, kind=None):
        raise RuntimeError(f"bug while handling {items[0][0].decode()}")

    monkeypatch.setattr(FieldCrypto, "encrypt", explode)
    with caplog.at_level(logging.DEBUG), pytest.raises(InternalError) as info:
        client.encrypt("k", [PLANT.encode()])
    assert "internal error (id " in str(info.value)
    assert PLANT not in str(info.value)
    from keysvc.server.logs import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any("unexpected error" in line for line in lines)
    assert not any(PLANT in line for line in lines)


def _collect_errors(client, key):
    """Drive every error path we can reach with the planted value in the request."""
    messages = []
    attempts = [
        lambda: client.decrypt([PLANT.encode()]),
        lambda: client.decrypt(
            client.encrypt(key, [PLANT.encode()], context={"f": PLANT}), context={"f": "x"}
        ),
        lambda: client.encrypt(PLANT, [PLANT.encode()]),
        lambda: client.admin.create_key(PLANT, "encrypt"),
        lambda: client.admin.get_key(PLANT),
        lambda: (
            client.encrypt(key, [PLANT.encode()], context={PLANT: PLANT})
            and client.decrypt([b"\x01\x01" + PLANT.encode()])
        ),
        lambda: client.generate_data_key(PLANT),
        lambda: client.decrypt_data_key(PLANT.encode()),
    ]
    for attempt in attempts:
        try:
            attempt()
        except BatchError as exc:
            messages += [str(exc)] + [str(e) for _, e in exc.errors]
        except KeysvcError as exc:
            messages.append(str(exc))
    return messages


def test_planted_plaintext_never_in_server_log_or_errors(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keysvc.cli.serve",
            "serve",
            "--dev",
            "--data-dir",
            str(data),
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "DEBUG",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("keysvc listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        token = (data / "dev-token").read_text().strip()
        with KeyServiceClient(f"127.0.0.1:{port}", token=token) as client:
            client.admin.create_key("k", "encrypt")
            messages = _collect_errors(client, "k")
            client.admin.rotate_key("k")
            assert client.decrypt(client.encrypt("k", [PLANT.encode()])) == [PLANT.encode()]
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=20)
    assert len(messages) >= 8
    assert not [m for m in messages if PLANT in m or PLANT[:16] in m]
    assert PLANT[:16] not in stderr and "PLANTED" not in stderr
    assert proc.returncode == 0
    db = (data / "keysvc.db").read_bytes() + b"".join(p.read_bytes() for p in Path(data).glob("keysvc.db-*"))
    assert PLANT.encode() not in db
