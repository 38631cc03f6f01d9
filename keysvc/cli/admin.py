"""``keysvc-admin``: the operator CLI. It only ever talks to the Admin service over gRPC.

Exit codes: 0 ok, 1 usage or local error, 2 the server refused or failed, 130 interrupted.
Connection settings come from KEYSVC_ADDR, KEYSVC_TOKEN (or KEYSVC_TOKEN_FILE),
KEYSVC_CACERT, KEYSVC_CLIENT_CERT and KEYSVC_CLIENT_KEY.

Shell completion (click): ``eval "$(_KEYSVC_ADMIN_COMPLETE=bash_source keysvc-admin)"``
(``zsh_source``, ``fish_source``), or ``keysvc-admin completion bash``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import click
from google.protobuf.json_format import MessageToDict

from keysvc.cli.governance import otp_metadata, register
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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "y": 365 * 86_400}
_DURATION = re.compile(r"^(\d+)([smhdwy]?)$")


def parse_duration(text: str) -> int:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w``, ``7y`` (365 days) or plain seconds."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise click.BadParameter("expected a duration like 30d, 12h, 7y or 0")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: int) -> str:
    if not seconds:
        return "-"
    for unit in ("y", "d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration(str(value))
        except click.BadParameter as exc:
            self.fail(exc.message, param, ctx)


DURATION = Duration()


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
    """A client from KEYSVC_* settings, sending the operator's one-time code (KEYSVC_OTP) if set."""
    return KeyServiceClient.from_env(metadata=otp_metadata(prompt=False))


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
    """Create, inspect, rotate keys and change their versions' states.

    \b
    Version states: primary (encrypts) > active (decrypts) > disabled (nothing, reversible)
    > scheduled-for-destruction (nothing, restorable until its date) > destroyed (shredded).
    """


def _policy_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--rotate-every", type=DURATION, help="Rotate on a schedule, e.g. 30d (0 = off)."),
            click.option(
                "--rotate-after",
                type=click.IntRange(min=0),
                help="Rotate after this many encryptions on the primary (0 = off).",
            ),
            click.option(
                "--keep-versions",
                type=click.IntRange(min=0),
                help="Keep only the newest K versions decryptable (0 = all).",
            ),
            click.option(
                "--retain-for",
                type=DURATION,
                help="Schedule versions for destruction this long after they stop being primary, e.g. 7y.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def _policy(
    base: admin_pb2.KeyPolicy | None,
    rotate_every: int | None,
    rotate_after: int | None,
    keep_versions: int | None,
    retain_for: int | None,
    floor_past_in_use: bool | None = None,
) -> admin_pb2.KeyPolicy:
    policy = admin_pb2.KeyPolicy()
    if base is not None:
        policy.CopyFrom(base)
    if rotate_every is not None:
        policy.rotate_every_seconds = rotate_every
    if rotate_after is not None:
        policy.rotate_after_encryptions = rotate_after
    if keep_versions is not None:
        policy.keep_versions = keep_versions
    if retain_for is not None:
        policy.retain_for_seconds = retain_for
    if floor_past_in_use is not None:
        policy.floor_past_in_use = floor_past_in_use
    return policy


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
@_policy_options
@click.pass_obj
def keys_create(
    out: Output,
    name: str,
    purpose: str,
    fmt: str,
    format_options: tuple[str, ...],
    rotate_every: int | None,
    rotate_after: int | None,
    keep_versions: int | None,
    retain_for: int | None,
) -> None:
    """Create key NAME.

    \b
    Examples:
      keysvc-admin keys create customer-pii --purpose encrypt
      keysvc-admin keys create customer-pii --purpose encrypt --rotate-every 30d --retain-for 7y
      keysvc-admin keys create pan --purpose fpe --format pan
    """
    options = {}
    for item in format_options:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--format-option")
        options[k] = v
    policy = _policy(None, rotate_every, rotate_after, keep_versions, retain_for)
    key = _client_call(
        lambda c: c.admin.create_key(name, purpose, format=fmt, format_options=options, policy=policy)
    )
    _show_key(out, key)


@keys.command("list")
@click.pass_obj
def keys_list(out: Output) -> None:
    """List keys."""
    found = _client_call(lambda c: c.admin.list_keys())
    out.rows(
        {"keys": [key_dict(k) for k in found]},
        ("NAME", "PURPOSE", "PRIMARY", "VERSIONS", "LAST ROTATED", "NEXT ROTATION"),
        [
            (
                k.name,
                _PURPOSE_NAMES.get(k.purpose, "?"),
                k.primary_version,
                len(k.versions),
                _when(k.last_rotated_at),
                _when(k.next_rotation_at),
            )
            for k in found
        ],
    )


@keys.command("show")
@click.argument("name")
@click.option("--history", is_flag=True, help="Also list every recorded state change (who, when).")
@click.pass_obj
def keys_show(out: Output, name: str, history: bool) -> None:
    """Show key NAME: policy, last and next rotation, versions with their states and use.

    \b
    Examples:
      keysvc-admin keys show customer-pii
      keysvc-admin keys show customer-pii --history
      keysvc-admin -o json keys show customer-pii | jq '.versions[] | {version, encryptions}'
    """
    key = _client_call(lambda c: c.admin.get_key(name))
    _show_key(out, key)
    if history and out.fmt == "table":
        click.echo("")
        out.rows(
            None,
            ("WHEN", "VERSION", "FROM", "TO", "BY"),
            [
                (
                    _when(e.at),
                    e.version,
                    _STATE_NAMES.get(e.from_state, "?") if e.from_state else "(created)",
                    _STATE_NAMES.get(e.to_state, "?"),
                    e.actor,
                )
                for e in key.history
            ],
        )


@keys.command("rotate")
@click.argument("name", required=False)
@click.option("--due", is_flag=True, help="Rotate every key whose policy says it is due (for cron).")
@click.pass_obj
def keys_rotate(out: Output, name: str | None, due: bool) -> None:
    """Make a new primary version of NAME; older versions still decrypt.

    \b
    Examples:
      keysvc-admin keys rotate customer-pii
      keysvc-admin keys rotate --due        # what the in-server scheduler does every minute
    """
    if due == bool(name):
        raise click.UsageError("give either NAME or --due")
    if name:
        _show_key(out, _client_call(lambda c: c.admin.rotate_key(name)))
        return
    result = _client_call(lambda c: c.admin.rotate_due_keys())
    out.rows(
        MessageToDict(result, preserving_proto_field_name=True),
        ("ROTATED",),
        [(n,) for n in result.rotated],
    )
    if out.fmt == "table":
        if not result.rotated:
            click.echo("no key was due", err=True)
        for key, floor in sorted(result.floors.items()):
            click.echo(f"{key}: min decryption version raised to v{floor}", err=True)


@keys.command("policy")
@click.argument("name")
@_policy_options
@click.option(
    "--floor-past-in-use/--no-floor-past-in-use",
    default=None,
    help="Let --keep-versions raise the decryption floor past versions still in use.",
)
@click.option(
    "--min-decryption-version",
    type=click.IntRange(min=0),
    default=0,
    help="Set the decryption floor explicitly (0 = keep).",
)
@click.pass_obj
def keys_policy(
    out: Output,
    name: str,
    rotate_every: int | None,
    rotate_after: int | None,
    keep_versions: int | None,
    retain_for: int | None,
    floor_past_in_use: bool | None,
    min_decryption_version: int,
) -> None:
    """Change NAME's rotation and retention policy (options not given stay as they are).

    \b
    Examples:
      keysvc-admin keys policy customer-pii --rotate-every 30d --keep-versions 3 --retain-for 7y
      keysvc-admin keys policy pan --rotate-after 1000000
      keysvc-admin keys policy customer-pii --rotate-every 0     # stop scheduled rotation
    """

    def change(c: KeyServiceClient) -> admin_pb2.Key:
        current = c.admin.get_key(name)
        policy = _policy(
            current.policy, rotate_every, rotate_after, keep_versions, retain_for, floor_past_in_use
        )
        return c.admin.update_key_policy(name, policy, min_decryption_version)

    _show_key(out, _client_call(change))


@keys.command("disable")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.pass_obj
def keys_disable(out: Output, name: str, version: int) -> None:
    """Stop VERSION of NAME from decrypting (reversible with `keys enable`).

    The primary version cannot be disabled: rotate first. Other replicas stop using it
    within 5 seconds.
    """
    _show_key(out, _client_call(lambda c: c.admin.disable_version(name, version)))


@keys.command("enable")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.pass_obj
def keys_enable(out: Output, name: str, version: int) -> None:
    """Make a disabled VERSION of NAME decrypt again."""
    _show_key(out, _client_call(lambda c: c.admin.enable_version(name, version)))


@keys.command("destroy")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--grace", type=DURATION, default="7d", show_default=True, help="Time left to restore it.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def keys_destroy(out: Output, name: str, version: int, grace: int, yes: bool) -> None:
    """Schedule VERSION of NAME for destruction (crypto-shredding).

    It stops decrypting now; after the grace period its wrapped data key is erased and
    every ciphertext under it fails with "key version destroyed". Until then,
    `keys restore NAME VERSION` undoes it.

    \b
    Examples:
      keysvc-admin keys destroy customer-pii 3
      keysvc-admin keys destroy customer-pii 3 --grace 30d --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("destroying a key version needs confirmation: pass --yes")
        click.confirm(
            f"Destroy {name} v{version} after {format_duration(grace) if grace else 'no'} grace period?",
            abort=True,
            err=True,
        )
    _show_key(out, _client_call(lambda c: c.admin.destroy_version(name, version, grace_seconds=grace)))


@keys.command("restore")
@click.argument("name")
@click.argument("version", type=click.IntRange(min=1))
@click.pass_obj
def keys_restore(out: Output, name: str, version: int) -> None:
    """Cancel the scheduled destruction of VERSION of NAME (it becomes active)."""
    _show_key(out, _client_call(lambda c: c.admin.restore_version(name, version)))


@cli.group()
def retention() -> None:
    """Retention: schedule versions past their key's retain-for, shred those past their grace."""


def _show_plan(out: Output, plan: admin_pb2.RetentionPlan) -> None:
    out.rows(
        MessageToDict(plan, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        ("KEY", "VERSION", "ACTION", "DESTROY AFTER"),
        [(a.key, a.version, a.action, _when(a.destroy_after)) for a in plan.actions],
    )


@retention.command("plan")
@click.option("--grace", type=DURATION, default="7d", show_default=True, help="Grace for new schedules.")
@click.pass_obj
def retention_plan(out: Output, grace: int) -> None:
    """Show what `retention apply` would do now (dry run; changes nothing).

    \b
    Example:
      keysvc-admin retention plan -o json
    """
    _show_plan(out, _client_call(lambda c: c.admin.plan_retention(grace_seconds=grace)))


@retention.command("apply")
@click.option("--grace", type=DURATION, default="7d", show_default=True, help="Grace for new schedules.")
@click.pass_obj
def retention_apply(out: Output, grace: int) -> None:
    """Do what `retention plan` shows: schedule versions, erase those past their grace period.

    Safe to rerun: after a crash the next run does what is left.
    """

    def apply(c: KeyServiceClient) -> admin_pb2.RetentionPlan:
        if out.fmt == "table":
            pending = len(c.admin.plan_retention(grace_seconds=grace).actions)
            click.echo(f"applying {pending} retention action(s)...", err=True)
        return c.admin.apply_retention(grace_seconds=grace)

    done = _client_call(apply)
    _show_plan(out, done)
    if out.fmt == "table":
        click.echo(f"done: {len(done.actions)} action(s) applied", err=True)


@cli.group()
def tokens() -> None:
    """The token vault."""


@tokens.command("purge-expired")
@click.pass_obj
def tokens_purge_expired(out: Output) -> None:
    """Delete vaulted tokens past their TTL now (the scheduler also does this)."""
    purged = _client_call(lambda c: c.admin.purge_expired_tokens())
    out.rows({"purged": purged}, ("PURGED",), [(purged,)])


@cli.command("status")
@click.pass_obj
def status(out: Output) -> None:
    """Server version, store, KEK provider health and key count."""
    st = _client_call(lambda c: c.admin.status())
    out.rows(
        MessageToDict(st, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
        ("VERSION", "STORE", "KEK PROVIDER", "KEK HEALTHY", "KEYS"),
        [(st.version, st.store, st.kek_provider, "yes" if st.kek_healthy else "NO", st.keys)],
    )


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    Examples:
      eval "$(keysvc-admin completion bash)"      # in ~/.bashrc
      keysvc-admin completion fish > ~/.config/fish/completions/keysvc-admin.fish
    """
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        raise click.UsageError("unsupported shell")
    click.echo(cls(cli, {}, "keysvc-admin", "_KEYSVC_ADMIN_COMPLETE").source())


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
        p = key.policy
        click.echo(
            f"key {key.name}  purpose {_PURPOSE_NAMES.get(key.purpose, '?')}  primary v{key.primary_version}"
            f"  min decryption v{key.min_decryption_version}"
            + (f"  format {key.format}" if key.format else "")
        )
        click.echo(
            f"last rotated {_when(key.last_rotated_at)}  next rotation {_when(key.next_rotation_at)}"
            f"  policy: rotate every {format_duration(p.rotate_every_seconds)},"
            f" after {p.rotate_after_encryptions or '-'} encryptions, keep {p.keep_versions or 'all'},"
            f" retain for {format_duration(p.retain_for_seconds)}"
            + (", floor past in-use" if p.floor_past_in_use else "")
        )
    out.rows(
        key_dict(key),
        ("VERSION", "STATE", "CREATED", "ENCRYPTIONS", "LAST USED", "CHANGED", "CHANGED BY", "DESTROY AFTER"),
        [
            (
                v.version,
                _STATE_NAMES.get(v.state, "?"),
                _when(v.created_at),
                v.encryptions,
                _when(v.last_used_at),
                _when(v.state_changed_at),
                v.state_changed_by,
                _when(v.destroy_after),
            )
            for v in key.versions
        ],
    )


register(cli)


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
