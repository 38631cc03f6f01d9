"""``keysvc-admin``: the operator CLI. It only ever talks to the Admin service over gRPC.

Exit codes: 0 ok, 1 usage or local error, 2 the server refused or failed, 130 interrupted.
Connection settings come from KEYSVC_ADDR, KEYSVC_TOKEN (or KEYSVC_TOKEN_FILE),
KEYSVC_CACERT, KEYSVC_CLIENT_CERT and KEYSVC_CLIENT_KEY.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from google.protobuf.json_format import MessageToDict
from keysvc_client import KeyServiceClient, KeysvcError
from keysvc_client._pb.keysvc.v1 import admin_pb2

EXIT_OK, EXIT_LOCAL, EXIT_REMOTE, EXIT_INTERRUPTED = 0, 1, 2, 130

_STATE_NAMES = {
    v: k.removeprefix("VERSION_STATE_").lower().replace("_", "-") for k, v in admin_pb2.VersionState.items()
}
_PURPOSE_NAMES = {
    admin_pb2.KEY_PURPOSE_ENCRYPT: "encrypt",
    admin_pb2.KEY_PURPOSE_FPE: "fpe",
    admin_pb2.KEY_PURPOSE_VAULT_TOKEN: "vault-token",
}


class Output:
    """Renders results as a table (people) or JSON (machines) on stdout."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt

    def rows(self, data: Any, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.fmt == "json":
            click.echo(json.dumps(data, indent=2, sort_keys=True))
            return
        cells = [list(header)] + [[_cell(c) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for row in cells:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_dict(key: admin_pb2.Key) -> dict[str, Any]:
    doc: dict[str, Any] = MessageToDict(key, preserving_proto_field_name=True)
    return doc


def _connect() -> KeyServiceClient:
    return KeyServiceClient.from_env()


def _client_call(fn: Callable[[KeyServiceClient], Any]) -> Any:
    with _connect() as client:
        return fn(client)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-o",
    "--output",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    envvar="KEYSVC_OUTPUT",
    help="Output format.",
)
@click.pass_context
def cli(ctx: click.Context, fmt: str) -> None:
    """Operate keysvc: keys, rotation, retention.

    \b
    Environment: KEYSVC_ADDR (default 127.0.0.1:50051), KEYSVC_TOKEN or KEYSVC_TOKEN_FILE,
    KEYSVC_CACERT, KEYSVC_CLIENT_CERT, KEYSVC_CLIENT_KEY.
    Exit codes: 0 ok, 1 usage or local error, 2 refused or failed by the server.
    """
    ctx.obj = Output(fmt)


@cli.group()
def keys() -> None:
    """Create, inspect and rotate keys."""


@keys.command("create")
@click.argument("name")
@click.option("--purpose", type=click.Choice(["encrypt", "fpe", "vault-token"]), required=True)
@click.option(
    "--format", "fmt", default="", help="Token format for fpe/vault-token keys (digits, pan, ssn, ...)."
)
@click.option(
    "--format-option",
    "format_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Format option, repeatable (e.g. keep_prefix=6).",
)
@click.pass_obj
def keys_create(out: Output, name: str, purpose: str, fmt: str, format_options: tuple[str, ...]) -> None:
    """Create key NAME.

    \b
    Examples:
      keysvc-admin keys create customer-pii --purpose encrypt
      keysvc-admin keys create pan --purpose fpe --format pan
    """
    options = {}
    for item in format_options:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--format-option")
        options[k] = v
    key = _client_call(lambda c: c.admin.create_key(name, purpose, format=fmt, format_options=options))
    _show_key(out, key)


@keys.command("list")
@click.pass_obj
def keys_list(out: Output) -> None:
    """List keys."""
    found = _client_call(lambda c: c.admin.list_keys())
    out.rows(
        {"keys": [key_dict(k) for k in found]},
        ("NAME", "PURPOSE", "PRIMARY", "VERSIONS", "LAST ROTATED"),
        [
            (
                k.name,
                _PURPOSE_NAMES.get(k.purpose, "?"),
                k.primary_version,
                len(k.versions),
                _when(k.last_rotated_at),
            )
            for k in found
        ],
    )


@keys.command("show")
@click.argument("name")
@click.pass_obj
def keys_show(out: Output, name: str) -> None:
    """Show key NAME with its versions and their states."""
    _show_key(out, _client_call(lambda c: c.admin.get_key(name)))


@keys.command("rotate")
@click.argument("name")
@click.pass_obj
def keys_rotate(out: Output, name: str) -> None:
    """Make a new primary version of NAME; older versions still decrypt."""
    _show_key(out, _client_call(lambda c: c.admin.rotate_key(name)))


@cli.group()
def kek() -> None:
    """The key-encryption key that wraps every data key."""


@kek.command("rotate")
@click.option(
    "--resume", is_flag=True, help="Finish an interrupted rotation without creating a new KEK version."
)
@click.pass_obj
def kek_rotate(out: Output, resume: bool) -> None:
    """Rotate the KEK and rewrap every stored data key (plaintext DEKs never leave Vault).

    Safe to rerun: a second run after a crash finishes the job.
    """
    if out.fmt == "table":
        click.echo("rotating the KEK and rewrapping stored data keys...", err=True)
    status = _client_call(lambda c: c.admin.rotate_kek(resume_only=resume))
    if out.fmt == "table":
        moved = ", ".join(f"{n} from v{v}" for v, n in sorted(status.rewrapped_from.items())) or "nothing"
        click.echo(
            f"KEK {status.provider} now at v{status.current_version}; rewrapped {status.rewrapped} ({moved})"
        )
    _show_kek(out, status)


@kek.command("status")
@click.pass_obj
def kek_status(out: Output) -> None:
    """Show which KEK versions the stored data keys are wrapped under."""
    _show_kek(out, _client_call(lambda c: c.admin.kek_status()))


def _show_kek(out: Output, status: admin_pb2.KekStatus) -> None:
    doc = MessageToDict(status, preserving_proto_field_name=True)
    out.rows(doc, ("KEK VERSION", "WRAPPED DEKS"), sorted(status.wrapped_by_version.items()))


def _show_key(out: Output, key: admin_pb2.Key) -> None:
    if out.fmt == "table":
        click.echo(
            f"key {key.name}  purpose {_PURPOSE_NAMES.get(key.purpose, '?')}  primary v{key.primary_version}"
            f"  min decryption v{key.min_decryption_version}"
            + (f"  format {key.format}" if key.format else "")
        )
    out.rows(
        key_dict(key),
        ("VERSION", "STATE", "CREATED", "ENCRYPTIONS", "CHANGED BY"),
        [
            (
                v.version,
                _STATE_NAMES.get(v.state, "?"),
                _when(v.created_at),
                v.encryptions,
                v.state_changed_by,
            )
            for v in key.versions
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point with stable exit codes (click alone would exit 2 on usage errors)."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="keysvc-admin", standalone_mode=False
        )
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_LOCAL)
    except KeysvcError as exc:
        click.echo(f"error: {exc.code.lower()}: {exc.message}", err=True)
        sys.exit(EXIT_REMOTE)
    except OSError as exc:
        click.echo(f"error: {exc.strerror or type(exc).__name__}", err=True)
        sys.exit(EXIT_LOCAL)
    sys.exit(EXIT_OK)
