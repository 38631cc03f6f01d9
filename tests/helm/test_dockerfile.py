"""The server image's Dockerfile, checked without a Docker engine.

``dockerfile`` (PyPI, 3.4.0) parses with Docker's own Go parser (moby/buildkit), so what
is asserted here is what a build would see: stages, base images, USER, ENTRYPOINT/CMD.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
VALUES = ROOT / "helm" / "keysvc" / "values.yaml"
# python:<3.11.patch>-slim[-<debian release>], never a floating tag.
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(scope="module")
def commands() -> tuple[Any, ...]:
    parsed: tuple[Any, ...] = dockerfile.parse_file(str(DOCKERFILE))
    return parsed


def stages(commands: tuple[Any, ...]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for command in commands:
        if command.cmd == "FROM":
            out.append([])
        assert out, "instruction before the first FROM"
        out[-1].append(command)
    return out


def base_image(from_command: Any) -> str:
    image: str = from_command.value[0]
    return image


def test_multi_stage_with_named_stages(commands: tuple[Any, ...]) -> None:
    froms = [c for c in commands if c.cmd == "FROM"]
    assert len(froms) >= 2
    for command in froms:
        assert len(command.value) == 3 and command.value[1].upper() == "AS", command.original
    names = [c.value[2] for c in froms]
    assert names[0] == "builder"
    copies = [c for c in stages(commands)[-1] if c.cmd == "COPY"]
    assert any("--from=builder" in c.flags for c in copies), (
        "the final stage copies the venv from the builder"
    )


def test_base_images_are_pinned_slim_python_311(commands: tuple[Any, ...]) -> None:
    bases = [base_image(c) for c in commands if c.cmd == "FROM"]
    for base in bases:
        assert "latest" not in base
        assert PINNED_BASE.match(base), f"unpinned or unexpected base image {base!r}"
    # The venv's interpreter symlinks only work if both stages share the base image.
    assert len(set(bases)) == 1


def test_final_base_has_a_digest_pin_or_its_placeholder(commands: tuple[Any, ...]) -> None:
    final = base_image(stages(commands)[-1][0])
    text = DOCKERFILE.read_text()
    if "@sha256:" not in final:
        assert re.search(r"^# base-digest: sha256:\S+", text, re.MULTILINE), "digest placeholder comment"
        assert f"FROM {final}@sha256:<digest>" in text, "comment says how to pin it"


def test_final_user_is_numeric_and_not_root(commands: tuple[Any, ...]) -> None:
    final = stages(commands)[-1]
    users = [c for c in final if c.cmd == "USER"]
    assert users, "the final stage sets USER"
    user = users[-1].value[0]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, user
    assert gid == "" or (gid.isdigit() and int(gid) != 0), user
    # Nothing after USER runs as anyone else.
    after = final[final.index(users[-1]) + 1 :]
    assert not [c for c in after if c.cmd == "RUN"]
    # The chart runs the pod as the same user.
    values = yaml.safe_load(VALUES.read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["securityContext"]["runAsUser"] == int(uid)


def test_no_add_of_urls_and_no_add_at_all(commands: tuple[Any, ...]) -> None:
    adds = [c for c in commands if c.cmd == "ADD"]
    for command in adds:
        assert not any(re.match(r"^[a-z][a-z0-9+.-]*://", v) for v in command.value), command.original
    assert adds == [], "COPY is enough here; ADD's URL and archive magic is not wanted"


def test_entrypoint_and_cmd_are_exec_form(commands: tuple[Any, ...]) -> None:
    final = stages(commands)[-1]
    entrypoint = [c for c in final if c.cmd == "ENTRYPOINT"]
    cmd = [c for c in final if c.cmd == "CMD"]
    assert len(entrypoint) == 1 and len(cmd) == 1
    assert entrypoint[0].json and entrypoint[0].value == ("keysvc",)
    assert cmd[0].json and cmd[0].value == ("serve", "--config", "/etc/keysvc/keysvc.toml")
    # No shell-form health checks or entrypoints anywhere.
    for command in commands:
        if command.cmd in {"ENTRYPOINT", "CMD"}:
            assert command.json, command.original
        if command.cmd == "HEALTHCHECK":
            assert "CMD-SHELL" not in command.value and command.json, command.original


def test_exposes_the_ports_the_chart_uses(commands: tuple[Any, ...]) -> None:
    exposed = {int(p.split("/")[0]) for c in commands if c.cmd == "EXPOSE" for p in c.value}
    values = yaml.safe_load(VALUES.read_text())
    assert {values["server"]["port"], values["server"]["healthPort"], values["metrics"]["port"]} <= exposed


def test_builder_installs_client_and_server_wheels_offline(commands: tuple[Any, ...]) -> None:
    builder = stages(commands)[0]
    runs = " ".join(c.value[0] for c in builder if c.cmd == "RUN")
    assert re.search(r"pip wheel .*\./clients/python \.", runs), "wheels of the client and the server"
    assert "--no-index" in runs, "the install step resolves only the wheels just built"
    env = {}
    for command in stages(commands)[-1]:
        if command.cmd == "ENV":
            env.update(dict(zip(command.value[::2], command.value[1::2], strict=True)))
    assert "/opt/keysvc/bin" in env["PATH"]
    values = yaml.safe_load(VALUES.read_text())
    assert env["PROMETHEUS_MULTIPROC_DIR"] == values["metrics"]["multiprocDir"]


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "*", "allowlist: everything is excluded unless re-included"
    included = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
    for secret_or_local in (".venv", ".git", ".keysvc", "tests", "helm"):
        assert not any(inc == secret_or_local or inc.startswith(secret_or_local + "/") for inc in included)
    # Everything the Dockerfile COPYs from the context is re-included.
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE.read_text(), re.MULTILINE)
    for source in " ".join(copied).split():
        assert source.rstrip("/") in included, source
