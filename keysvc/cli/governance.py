"""``keysvc-admin`` groups for the Governance service: approvals, audit, incident, operators, policy.

They talk only to the Governance service (and Admin's GetKey to fill in a policy change)
over gRPC, through keysvc_client. Operators are asked for their one-time code
(hidden prompt on a terminal) unless KEYSVC_OTP is set; KEYSVC_OTP="" sends none (the
dev principal in --dev mode needs none). Attach to keysvc-admin with ``register(cli)``.

Exit codes as keysvc-admin: 0 ok, 1 usage or local error, 2 refused or failed by the
server, and 2 from ``audit verify`` when the chain does not verify.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import segno
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from keysvc_client import KeyServiceClient
from keysvc_client._governance import OTP_METADATA_KEY, GovernanceClient
from keysvc_client._pb.keysvc.v1 import admin_pb2

EXIT_OK, EXIT_LOCAL, EXIT_REMOTE, EXIT_INTERRUPTED = 0, 1, 2, 130
_RELATIVE = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _fmt() -> str:
    ctx = click.get_current_context()
    root = ctx.find_root().obj
    return str(getattr(root, "fmt", None) or (root.get("fmt") if isinstance(root, dict) else None) or "table")


def _otp(prompt: bool) -> str:
    if "KEYSVC_OTP" in os.environ:
        return os.environ["KEYSVC_OTP"].strip()
    if prompt and sys.stdin.isatty():
        return str(click.prompt("one-time code", hide_input=True, default="", show_default=False)).strip()
    return ""


def otp_metadata(*, prompt: bool = True) -> list[tuple[str, str]]:
    """The operator's one-time code as call metadata: KEYSVC_OTP, else (with ``prompt``) a
    hidden prompt on a terminal; none when empty."""
    code = _otp(prompt)
    return [(OTP_METADATA_KEY, code)] if code else []


def _call(fn: Callable[[GovernanceClient, KeyServiceClient], Any]) -> Any:
    with KeyServiceClient.from_env(metadata=otp_metadata()) as client:
        return fn(client.governance, client)


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (``2026-12-01T10:00:00Z``) or an age like ``30m``, ``24h``, ``7d`` before now."""
    if not value:
        return None
    match = _RELATIVE.fullmatch(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("expected ISO 8601 or an age like 24h / 7d") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return datetime.fromtimestamp(ts.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _doc(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [list(header)] + [["-" if c in (None, "") else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _emit(data: Any, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if _fmt() == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        _table(header, rows)


def _show_approval(approval: Any) -> None:
    _emit(
        _doc(approval),
        ("ID", "STATE", "REQUESTED BY", "EXPIRES", "SUMMARY"),
        [(approval.id, approval.state, approval.requested_by, _when(approval.expires_at), approval.summary)],
    )


# -- approvals ---------------------------------------------------------------------------------


@click.group()
def approvals() -> None:
    """Dual control: file a sensitive change, have a second operator approve it."""


@approvals.group("request")
def approvals_request() -> None:
    """File a dual-controlled change; another operator runs it with `approvals approve ID`."""


@approvals_request.command("destroy-version")
@click.argument("key")
@click.argument("version", type=int)
@click.option("--grace-seconds", type=int, default=0, help="Restorable for this long (0 = server default).")
def request_destroy(key: str, version: int, grace_seconds: int) -> None:
    """Schedule VERSION of KEY for destruction (crypto-shredding)."""
    _show_approval(_call(lambda g, c: g.request_destroy_version(key, version, grace_seconds)))


@approvals_request.command("apply-retention")
def request_retention() -> None:
    """Apply the retention plan (schedules expired versions for destruction)."""
    _show_approval(
        _call(
            lambda g, c: g.request_approval("/keysvc.v1.Admin/ApplyRetention", admin_pb2.RetentionRequest())
        )
    )


@approvals_request.command("rotate-kek")
@click.option("--resume", is_flag=True, help="Only finish an interrupted rotation.")
def request_rotate_kek(resume: bool) -> None:
    """Rotate the KEK and rewrap every stored data key."""
    inner = admin_pb2.RotateKekRequest(resume_only=resume)
    _show_approval(_call(lambda g, c: g.request_approval("/keysvc.v1.Admin/RotateKek", inner)))


@approvals_request.command("update-policy")
@click.argument("key")
@click.option("--rotate-every-seconds", type=int)
@click.option("--rotate-after-encryptions", type=int)
@click.option("--keep-versions", type=int)
@click.option("--retain-for-seconds", type=int)
@click.option("--min-decryption-version", type=int)
def request_update_policy(key: str, **changes: int | None) -> None:
    """Change KEY's rotation/retention policy (unset options keep their current value)."""

    def run(g: GovernanceClient, c: KeyServiceClient) -> Any:
        current = c.admin.get_key(key)
        policy = admin_pb2.KeyPolicy()
        policy.CopyFrom(current.policy)
        for name in (
            "rotate_every_seconds",
            "rotate_after_encryptions",
            "keep_versions",
            "retain_for_seconds",
        ):
            if changes.get(name) is not None:
                setattr(policy, name, changes[name])
        floor = changes.get("min_decryption_version")
        inner = admin_pb2.UpdateKeyPolicyRequest(
            name=key,
            policy=policy,
            min_decryption_version=current.min_decryption_version if floor is None else floor,
        )
        return g.request_approval("/keysvc.v1.Admin/UpdateKeyPolicy", inner)

    _show_approval(_call(run))


@approvals_request.command("revoke-operator")
@click.argument("name")
def request_revoke_operator(name: str) -> None:
    """Remove operator NAME's second factor (they can no longer make admin calls)."""
    _show_approval(_call(lambda g, c: g.request_revoke_operator(name)))


@approvals_request.command("unfreeze")
@click.argument("key")
def request_unfreeze(key: str) -> None:
    """Let KEY decrypt and detokenize again after `incident freeze`."""
    _show_approval(_call(lambda g, c: g.request_unfreeze(key)))


@approvals_request.command("unrevoke")
@click.argument("principal")
def request_unrevoke(principal: str) -> None:
    """Lift the revocation of PRINCIPAL (after `incident revoke`)."""
    _show_approval(_call(lambda g, c: g.request_unrevoke(principal)))


@approvals.command("approve")
@click.argument("approval_id")
def approvals_approve(approval_id: str) -> None:
    """Approve request APPROVAL_ID (filed by another operator); it executes now, once."""
    done = _call(lambda g, c: g.approve(approval_id))
    _show_approval(done.approval)


@approvals.command("list")
@click.option("--all", "include_done", is_flag=True, help="Include executed, failed and expired requests.")
def approvals_list(include_done: bool) -> None:
    """List pending approval requests."""
    found = _call(lambda g, c: g.list_approvals(include_done))
    _emit(
        {"approvals": [_doc(a) for a in found]},
        ("ID", "STATE", "REQUESTED BY", "APPROVED BY", "EXPIRES", "SUMMARY"),
        [(a.id, a.state, a.requested_by, a.approved_by, _when(a.expires_at), a.summary) for a in found],
    )


# -- audit -------------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """The hash-chained audit trail."""


@audit.command("query")
@click.option("--principal", default="")
@click.option("--key", default="")
@click.option("--operation", default="", help="e.g. detokenize:Detokenize, admin.write:RotateKey")
@click.option("--since", default=None, help="ISO 8601 or an age (24h, 7d).")
@click.option("--until", default=None, help="ISO 8601 or an age.")
@click.option("--limit", type=int, default=1000, show_default=True)
def audit_query(
    principal: str, key: str, operation: str, since: str | None, until: str | None, limit: int
) -> None:
    """Audit records matching every filter given, oldest first."""
    records = _call(
        lambda g, c: g.query_audit(
            principal=principal,
            key=key,
            operation=operation,
            since=parse_time(since),
            until=parse_time(until),
            limit=limit,
        )
    )
    _emit(
        {"records": [_doc(r) for r in records]},
        ("SEQ", "TIME", "PRINCIPAL", "OPERATION", "KEYS", "ITEMS", "RESULT", "REQUEST ID"),
        [
            (
                r.seq,
                _when(r.time),
                r.principal,
                r.operation,
                ",".join(r.keys),
                r.items,
                r.result,
                r.request_id,
            )
            for r in records
        ],
    )


@audit.command("verify")
def audit_verify() -> None:
    """Check the chain; exit 0 only when no record was modified, deleted, inserted or reordered."""
    report = _call(lambda g, c: g.verify_audit())
    if _fmt() == "json":
        click.echo(json.dumps(_doc(report), indent=2, sort_keys=True))
    elif report.ok:
        click.echo(f"audit chain intact: {report.records} records, head seq {report.head_seq}")
    else:
        click.echo(f"audit chain BROKEN ({len(report.problems)} problems in {report.records} records):")
        for p in report.problems:
            click.echo(f"  seq {p.seq}: {p.kind}: {p.detail}")
    if not report.ok:
        sys.exit(EXIT_REMOTE)


# -- incident ----------------------------------------------------------------------------------


@click.group()
def incident() -> None:
    """Incident response: revoke, freeze, report, rotate everything."""


@incident.command("revoke")
@click.argument("principal")
def incident_revoke(principal: str) -> None:
    """Refuse every call from PRINCIPAL (token or certificate) on every replica."""
    done = _call(lambda g, c: g.revoke_principal(principal))
    click.echo(
        f"revoked {done.principal}: effective on every replica within {done.effective_within_seconds:g} s"
    )


@incident.command("freeze")
@click.argument("key")
def incident_freeze(key: str) -> None:
    """Stop decrypt and detokenize on KEY now (undo: `approvals request unfreeze KEY`)."""
    done = _call(lambda g, c: g.freeze_key(key))
    click.echo(f"froze {done.key}: decrypt/detokenize refused; unfreeze needs dual control")


@incident.command("unfreeze")
@click.argument("key")
def incident_unfreeze(key: str) -> None:
    """File the dual-controlled unfreeze of KEY (another operator approves it)."""
    _show_approval(_call(lambda g, c: g.request_unfreeze(key)))


@incident.command("report")
@click.option("--principal", required=True)
@click.option("--since", default=None, help="ISO 8601 or an age (24h, 7d).")
@click.option("--until", default=None)
def incident_report(principal: str, since: str | None, until: str | None) -> None:
    """What PRINCIPAL touched: keys, versions, operations and item counts (the blast radius)."""
    report = _call(lambda g, c: g.incident_report(principal, parse_time(since), parse_time(until)))
    _emit(
        _doc(report),
        ("KEY", "OPERATION", "VERSIONS", "REQUESTS", "ITEMS", "DENIED", "FIRST", "LAST"),
        [
            (
                u.key,
                u.operation,
                ",".join(str(v) for v in u.versions),
                u.requests,
                u.items,
                u.denied,
                _when(u.first),
                _when(u.last),
            )
            for u in report.usage
        ],
    )


@incident.command("rotate-all")
@click.confirmation_option(prompt="Rotate every key now?")
def incident_rotate_all() -> None:
    """Emergency rotation: a new primary version for every key (old data stays readable)."""
    done = _call(lambda g, c: g.rotate_all_keys())
    _emit(_doc(done), ("ROTATED",), [(k,) for k in done.rotated])
    for failure in done.failed:
        click.echo(f"failed: {failure}", err=True)
    if done.failed:
        sys.exit(EXIT_REMOTE)


# -- operators ---------------------------------------------------------------------------------


@click.group()
def operators() -> None:
    """Operators: principals with an enrolled second factor (TOTP)."""


@operators.command("enroll")
@click.argument("name")
def operators_enroll(name: str) -> None:
    """Enrol operator NAME and print the otpauth:// URI for their authenticator app (shown once)."""
    done = _call(lambda g, c: g.enroll_operator(name))
    if _fmt() == "json":
        click.echo(json.dumps(_doc(done), indent=2, sort_keys=True))
        return
    click.echo(f"enrolled operator {done.name}; add this to their authenticator app (shown once):")
    click.echo(done.provisioning_uri)
    _print_qr(done.provisioning_uri)


def _print_qr(uri: str) -> None:
    """The otpauth URI as a QR code, when stdout is a terminal (scan it with the authenticator app)."""
    if sys.stdout.isatty():
        segno.make(uri).terminal(out=sys.stdout, compact=True)


@operators.command("list")
def operators_list() -> None:
    """List enrolled operators."""
    found = _call(lambda g, c: g.list_operators())
    _emit(
        {"operators": [_doc(o) for o in found]},
        ("NAME", "ENROLLED", "BY"),
        [(o.name, _when(o.enrolled_at), o.enrolled_by) for o in found],
    )


@operators.command("revoke")
@click.argument("name")
def operators_revoke(name: str) -> None:
    """File the dual-controlled removal of operator NAME."""
    _show_approval(_call(lambda g, c: g.request_revoke_operator(name)))


# -- policy ------------------------------------------------------------------------------------


@click.group()
def policy() -> None:
    """The role policy."""


@policy.command("check")
@click.option("--principal", required=True)
@click.option("--op", "operation", required=True, help="encrypt, decrypt, detokenize, admin.write, ...")
@click.option("--key", default="")
@click.option("--purpose", default="")
def policy_check(principal: str, operation: str, key: str, purpose: str) -> None:
    """Say whether PRINCIPAL may do OP on KEY, which rule decides and why."""
    done = _call(lambda g, c: g.check_policy(principal, operation, key, purpose))
    if _fmt() == "json":
        click.echo(json.dumps(_doc(done), indent=2, sort_keys=True))
        return
    click.echo(f"{'ALLOWED' if done.allowed else 'DENIED'}: {done.reason}")
    if done.rule:
        click.echo(f"rule: {done.rule}")
    if done.roles:
        click.echo(f"roles: {', '.join(done.roles)}")
    if done.reveal:
        click.echo(f"reveal: {done.reveal}")
    if done.quota_per_minute:
        click.echo(f"quota: {done.quota_per_minute} items/minute")
    if done.require_purpose:
        click.echo("purpose required")


GROUPS = (approvals, audit, incident, operators, policy)


def register(cli: click.Group) -> None:
    """Attach the Governance groups to keysvc-admin's ``cli`` group."""
    for group in GROUPS:
        cli.add_command(group)
