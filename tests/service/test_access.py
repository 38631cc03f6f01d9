"""Authorization, second factor, dual control, freezes, revocation and audit through a real
server on port 0 (pipeline + guard + Governance, see tests/service/access_env.py)."""

from __future__ import annotations

import json
import logging
import time

import grpc
import pytest

from keysvc.access.policy import PolicySource
from keysvc.audit.log import AuditLog
from keysvc.crypto.envelope import Kind, encode_header
from keysvc.server.guard import SPECS, Guard
from keysvc_client._pb.keysvc.v1 import (
    admin_pb2,
    crypto_pb2,
    governance_pb2,
    tokenization_pb2,
)
from tests.service.access_env import Env, make_env

PLANT = "4111 1111 1111 1111 PLANTED/SECRET"
FAKE_CT = encode_header(Kind.FIELD, "customer-pii", 1) + bytes(12 + 16 + 4)
FAKE_DK = encode_header(Kind.DATA_KEY, "customer-pii", 1) + bytes(12 + 16 + 32)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""
    e = make_env(tmp_path, url)
    yield e
    e.close()


@pytest.fixture
def sqlite_env(tmp_path):
    e = make_env(tmp_path)
    yield e
    e.close()


def call(stub, request, metadata):
    try:
        return grpc.StatusCode.OK, stub(request, metadata=metadata, timeout=20)
    except grpc.RpcError as err:
        return err.code(), err.details()


# -- the authorization matrix --------------------------------------------------------------------

_ALLOWED_BY = {
    "encrypt": "app",
    "decrypt": "app",
    "rewrap": "app",
    "datakey": "app",
    "tokenize": "ivr",
    "redact": "ivr",
    "detokenize": "billing",
    "retokenize": "app",
}


def _request_for(service: str, method: str):
    from keysvc_client._pb.keysvc.v1 import admin_pb2 as a
    from keysvc_client._pb.keysvc.v1 import crypto_pb2 as c
    from keysvc_client._pb.keysvc.v1 import governance_pb2 as g
    from keysvc_client._pb.keysvc.v1 import tokenization_pb2 as t

    module = {"Crypto": c, "Tokenization": t, "Admin": a, "Governance": g}[service]
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    cls = getattr(module, descriptor.input_type.name, None)
    if cls is None:  # the input type lives in another module (common)
        from google.protobuf import message_factory

        cls = message_factory.GetMessageClass(descriptor.input_type)
    req = cls()
    fields = req.DESCRIPTOR.fields_by_name
    if method == "FreezeKey":
        req.key = "scratch"
        return req
    for name in ("key", "name"):
        if name in fields and fields[name].type == fields[name].TYPE_STRING:
            setattr(req, name, "pan" if service == "Tokenization" else "customer-pii")
    if method in ("Decrypt", "Rewrap"):
        req.items.add(ciphertext=FAKE_CT)
    elif method == "DecryptDataKey":
        req.items.add(encrypted=FAKE_DK)
    elif method == "Encrypt":
        req.items.add(plaintext=b"x")
    elif method == "GenerateDataKey":
        req.items.add()
    elif method == "Tokenize":
        req.items.add(value="4111111111111111")
    elif method in ("Detokenize", "Retokenize"):
        req.items.add(token="4111111111111111")
        if method == "Detokenize":
            req.purpose = "chargeback"
    elif method == "Redact":
        req.items.add(text="call me")
    return req


def _all_methods():
    from keysvc_client._pb.keysvc.v1 import admin_pb2 as a
    from keysvc_client._pb.keysvc.v1 import crypto_pb2 as c
    from keysvc_client._pb.keysvc.v1 import governance_pb2 as g
    from keysvc_client._pb.keysvc.v1 import tokenization_pb2 as t

    for service, module in (("Crypto", c), ("Tokenization", t), ("Admin", a), ("Governance", g)):
        for method in module.DESCRIPTOR.services_by_name[service].methods:
            yield service, method.name


def test_every_rpc_has_a_guard_spec():
    missing = [f"{s}/{m}" for s, m in _all_methods() if f"/keysvc.v1.{s}/{m}" not in SPECS]
    # Methods added by others fall back to an audited admin.write change (fail closed).
    assert all(m.startswith("Admin/") for m in missing), missing


def test_authorization_matrix(sqlite_env):
    env = sqlite_env
    stubs = env.stubs()
    failures = []
    for service, method in _all_methods():
        full = f"/keysvc.v1.{service}/{method}"
        spec = SPECS.get(full)
        operation = spec.operation if spec else "admin.write"
        stub = getattr(stubs[service], method)
        with_rule = _ALLOWED_BY.get(operation, "alice")
        without_rule = "nobody" if with_rule != "app" else "ivr"
        cases = {
            "no credentials": ([], {grpc.StatusCode.UNAUTHENTICATED}),
            "unknown principal": (env.metadata("stranger"), {grpc.StatusCode.UNAUTHENTICATED}),
            "revoked principal": (env.metadata("carol"), {grpc.StatusCode.UNAUTHENTICATED}),
            "without the rule": (env.metadata(without_rule), {grpc.StatusCode.PERMISSION_DENIED}),
        }
        for label, (metadata, expected) in cases.items():
            code, _ = call(stub, _request_for(service, method), metadata)
            if code not in expected:
                failures.append(f"{full} {label}: {code.name}")
        code, details = call(stub, _request_for(service, method), env.metadata(with_rule))
        dual = spec is not None and spec.dual is not None and spec.dual(_request_for(service, method))
        if dual:
            if code is not grpc.StatusCode.PERMISSION_DENIED or "dual control" not in details:
                failures.append(f"{full} with the rule (dual control): {code.name} {details}")
        elif code in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.INTERNAL,
        ):
            failures.append(f"{full} with the rule: {code.name} {details}")
    assert not failures, "\n".join(failures)
    report = env.store.verify()
    assert report.ok and report.records > 100


def test_every_denial_is_audited(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    call(s["Tokenization"].Detokenize, _request_for("Tokenization", "Detokenize"), env.metadata("ivr"))
    call(s["Crypto"].Decrypt, _request_for("Crypto", "Decrypt"), env.metadata("carol"))
    call(s["Crypto"].Decrypt, _request_for("Crypto", "Decrypt"), env.metadata("stranger"))
    call(s["Crypto"].Encrypt, _request_for("Crypto", "Encrypt"), [])
    records = env.store.query()
    assert [(r.record.principal, r.record.result) for r in records] == [
        ("ivr", "PERMISSION_DENIED"),
        ("carol", "UNAUTHENTICATED"),
        ("", "UNAUTHENTICATED"),
        ("", "UNAUTHENTICATED"),
    ]
    assert records[0].record.keys == ("pan",) and records[0].record.purpose == "chargeback"
    assert [r.record.operation for r in records[2:]] == ["unauthenticated:Decrypt", "unauthenticated:Encrypt"]
    assert env.store.verify().ok


# -- roles: IVR, desktop, billing ----------------------------------------------------------------


def _tokenize(env: Env, values):
    s = env.stubs()
    code, resp = call(
        s["Tokenization"].Tokenize,
        tokenization_pb2.TokenizeRequest(
            key="pan", items=[tokenization_pb2.TokenizeItem(value=v) for v in values]
        ),
        env.metadata("ivr"),
    )
    assert code is grpc.StatusCode.OK
    return [r.token for r in resp.results]


def _detokenize(env: Env, who, tokens, purpose="chargeback", reveal=tokenization_pb2.REVEAL_FULL):
    request = tokenization_pb2.DetokenizeRequest(
        key="pan",
        purpose=purpose,
        reveal=reveal,
        items=[tokenization_pb2.DetokenizeItem(token=t) for t in tokens],
    )
    return call(env.stubs()["Tokenization"].Detokenize, request, env.metadata(who))


def test_ivr_tokenizes_desktop_sees_masked_billing_needs_a_purpose(env):
    pans = ["4111111111111111", "5500000000000004"]
    tokens = _tokenize(env, pans)
    code, _ = _detokenize(env, "ivr", tokens)
    assert code is grpc.StatusCode.PERMISSION_DENIED
    for reveal in (tokenization_pb2.REVEAL_FULL, tokenization_pb2.REVEAL_UNSPECIFIED):
        code, resp = _detokenize(env, "desktop", tokens, reveal=reveal)
        assert code is grpc.StatusCode.OK
        values = [r.value for r in resp.results]
        assert all(r.masked for r in resp.results)
        assert values != pans and [v[-4:] for v in values] == [p[-4:] for p in pans]
    code, resp = _detokenize(env, "billing", tokens)
    assert code is grpc.StatusCode.OK and [r.value for r in resp.results] == pans
    code, _details = _detokenize(env, "billing", tokens, purpose="")
    assert code is grpc.StatusCode.PERMISSION_DENIED
    detokenize = [r.record for r in env.store.query(operation="detokenize:Detokenize")]
    assert [(r.principal, r.result) for r in detokenize] == [
        ("ivr", "PERMISSION_DENIED"),
        ("desktop", "OK"),
        ("desktop", "OK"),
        ("billing", "OK"),
        ("billing", "PERMISSION_DENIED"),
    ]
    assert detokenize[3].items == 2 and detokenize[3].versions == {"pan": [1]}


def test_decrypt_authorizes_by_header_key_and_lets_garbage_fail_opaquely(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    code, resp = call(
        s["Crypto"].Encrypt,
        crypto_pb2.EncryptRequest(key="customer-pii", items=[crypto_pb2.EncryptItem(plaintext=b"v")]),
        env.metadata("app"),
    )
    ct = resp.results[0].ciphertext
    # a garbage item names no key: it authorizes nothing and fails with the opaque error
    code, resp = call(
        s["Crypto"].Decrypt,
        crypto_pb2.DecryptRequest(items=[crypto_pb2.DecryptItem(ciphertext=c) for c in (ct, b"\x00garbage")]),
        env.metadata("app"),
    )
    assert code is grpc.StatusCode.OK
    assert resp.results[0].plaintext == b"v" and resp.results[1].error.message == "decryption failed"
    # an item under a key the caller may not use denies the whole request
    other = encode_header(Kind.FIELD, "ssn", 1) + bytes(40)
    code, _ = call(
        s["Crypto"].Decrypt,
        crypto_pb2.DecryptRequest(items=[crypto_pb2.DecryptItem(ciphertext=c) for c in (ct, other)]),
        env.metadata("app"),
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED
    record = env.store.query(operation="decrypt:Decrypt")[0].record
    assert record.items == 2 and record.failed_items == 1 and record.keys == ("customer-pii",)


def test_quota_is_resource_exhausted(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    request = crypto_pb2.EncryptRequest(
        key="scratch", items=[crypto_pb2.EncryptItem(plaintext=b"x")] * 10_000
    )
    for _ in range(5):
        assert call(s["Crypto"].Encrypt, request, env.metadata("app"))[0] is grpc.StatusCode.OK
    code, _details = call(s["Crypto"].Encrypt, request, env.metadata("app"))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED


# -- second factor -------------------------------------------------------------------------------


def test_totp_missing_wrong_replayed_and_expired_are_refused(env):
    admin = env.stubs()["Admin"]
    req = admin_pb2.ListKeysRequest()
    token = [("authorization", f"Bearer {env.tokens['alice']}")]
    assert call(admin.ListKeys, req, token)[0] is grpc.StatusCode.UNAUTHENTICATED
    good = env.otp("alice")
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    code, details = call(admin.ListKeys, req, [*token, ("x-keysvc-otp", wrong)])
    assert code is grpc.StatusCode.UNAUTHENTICATED and "invalid" in details
    assert call(admin.ListKeys, req, [*token, ("x-keysvc-otp", good)])[0] is grpc.StatusCode.OK
    code, details = call(admin.ListKeys, req, [*token, ("x-keysvc-otp", good)])
    assert code is grpc.StatusCode.UNAUTHENTICATED and "already used" in details
    stale = env.otp("alice")
    env.clock.advance(90)  # three steps later: outside the +-1 step window
    code, details = call(admin.ListKeys, req, [*token, ("x-keysvc-otp", stale)])
    assert code is grpc.StatusCode.UNAUTHENTICATED and "invalid" in details
    # a principal with the admin rule but no enrolled second factor may not make admin calls
    assert call(admin.ListKeys, req, env.metadata("app"))[0] is grpc.StatusCode.PERMISSION_DENIED
    # the secret is stored only wrapped by the KEK
    wrapped = env.store.get_operator("alice").wrapped_secret
    assert env.secrets["alice"] not in wrapped and wrapped.startswith(b"local:")


def test_enroll_prints_an_otpauth_uri_and_the_code_works(sqlite_env):
    env = sqlite_env
    gov = env.stubs()["Governance"]
    code, resp = call(
        gov.EnrollOperator, governance_pb2.EnrollOperatorRequest(name="dave"), env.metadata("alice")
    )
    assert code is grpc.StatusCode.OK and resp.provisioning_uri.startswith(
        "otpauth://totp/keysvc%3Adave?secret="
    )
    code, _ = call(
        gov.EnrollOperator, governance_pb2.EnrollOperatorRequest(name="dave"), env.metadata("alice")
    )
    assert code is grpc.StatusCode.ALREADY_EXISTS


# -- dual control --------------------------------------------------------------------------------


def _request_rotate_kek(env: Env, who: str):
    gov = env.stubs()["Governance"]
    request = governance_pb2.RequestApprovalRequest(
        method="/keysvc.v1.Admin/RotateKek", request=admin_pb2.RotateKekRequest().SerializeToString()
    )
    code, approval = call(gov.RequestApproval, request, env.metadata(who))
    assert code is grpc.StatusCode.OK, approval
    return approval


def test_dual_control_self_approval_refused_and_approved_request_runs_once(env):
    s = env.stubs()
    before = env.service.kek.current_version()
    code, details = call(s["Admin"].RotateKek, admin_pb2.RotateKekRequest(), env.metadata("alice"))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "dual control" in details
    approval = _request_rotate_kek(env, "alice")
    code, details = call(
        s["Governance"].Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("alice")
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED and "own request" in details
    code, done = call(
        s["Governance"].Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("bob")
    )
    assert (
        code is grpc.StatusCode.OK
        and done.approval.state == "executed"
        and done.approval.approved_by == "bob"
    )
    assert admin_pb2.KekStatus.FromString(done.response).current_version == before + 1
    code, _ = call(
        s["Governance"].Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("bob")
    )
    assert code is grpc.StatusCode.FAILED_PRECONDITION
    assert env.service.kek.current_version() == before + 1
    executed = [r.record for r in env.store.query(operation="admin.write:RotateKek")]
    assert [(r.principal, r.result) for r in executed] == [
        ("alice", "PERMISSION_DENIED"),
        ("bob", "STARTED"),
        ("bob", "OK"),
    ]
    assert approval.id in executed[-1].detail and "alice" in executed[-1].detail


def test_expired_approval_is_refused(sqlite_env):
    env = sqlite_env
    approval = _request_rotate_kek(env, "alice")
    env.clock.advance(24 * 3600 + 1)
    gov = env.stubs()["Governance"]
    code, details = call(gov.Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("bob"))
    assert code is grpc.StatusCode.FAILED_PRECONDITION and "expired" in details
    code, listed = call(
        gov.ListApprovals, governance_pb2.ListApprovalsRequest(include_done=True), env.metadata("bob")
    )
    assert [a.state for a in listed.approvals] == ["expired"]


def test_freeze_stops_decrypt_at_once_and_unfreeze_needs_two_operators(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    encrypt = crypto_pb2.EncryptRequest(key="customer-pii", items=[crypto_pb2.EncryptItem(plaintext=b"v")])
    ct = call(s["Crypto"].Encrypt, encrypt, env.metadata("app"))[1].results[0].ciphertext
    decrypt = crypto_pb2.DecryptRequest(items=[crypto_pb2.DecryptItem(ciphertext=ct)])
    code, _ = call(
        s["Governance"].FreezeKey, governance_pb2.FreezeKeyRequest(key="customer-pii"), env.metadata("alice")
    )
    assert code is grpc.StatusCode.OK
    code, details = call(s["Crypto"].Decrypt, decrypt, env.metadata("app"))
    assert code is grpc.StatusCode.FAILED_PRECONDITION and details == "key is frozen"
    assert call(s["Crypto"].Encrypt, encrypt, env.metadata("app"))[0] is grpc.StatusCode.OK
    unfreeze = governance_pb2.UnfreezeKeyRequest(key="customer-pii")
    code, details = call(s["Governance"].UnfreezeKey, unfreeze, env.metadata("alice"))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "dual control" in details
    code, approval = call(
        s["Governance"].RequestApproval,
        governance_pb2.RequestApprovalRequest(
            method="/keysvc.v1.Governance/UnfreezeKey", request=unfreeze.SerializeToString()
        ),
        env.metadata("alice"),
    )
    assert code is grpc.StatusCode.OK
    assert call(s["Governance"].Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("bob"))[
        0
    ] is (grpc.StatusCode.OK)
    assert call(s["Crypto"].Decrypt, decrypt, env.metadata("app"))[0] is grpc.StatusCode.OK


# -- incidents -----------------------------------------------------------------------------------


def test_revocation_reaches_another_replica_within_the_bound(env):
    s = env.stubs()
    encrypt = crypto_pb2.EncryptRequest(key="customer-pii", items=[crypto_pb2.EncryptItem(plaintext=b"v")])
    # a second replica: its own guard over the same governance tables
    other = Guard(
        env.store,
        AuditLog(env.store),
        PolicySource(str(env.policy_path)),
        env.service.kek,
        refresh_seconds=env.running.governance.guard.refresh_seconds,
    )
    assert "app" not in other.revoked.get()
    code, resp = call(
        s["Governance"].RevokePrincipal,
        governance_pb2.RevokePrincipalRequest(principal="app"),
        env.metadata("alice"),
    )
    assert code is grpc.StatusCode.OK and resp.effective_within_seconds <= 5
    code, _ = call(s["Crypto"].Encrypt, encrypt, env.metadata("app"))
    assert code is grpc.StatusCode.UNAUTHENTICATED  # at once on the replica that revoked
    start = time.monotonic()
    while "app" not in other.revoked.get():
        assert time.monotonic() - start < 5
        time.sleep(0.05)


def test_incident_report_shows_the_blast_radius(sqlite_env):
    env = sqlite_env
    tokens = _tokenize(env, ["4111111111111111"] * 3)
    _detokenize(env, "billing", tokens)
    _detokenize(env, "billing", tokens[:1])
    _detokenize(env, "billing", tokens, purpose="")
    gov = env.stubs()["Governance"]
    code, report = call(
        gov.IncidentReport, governance_pb2.IncidentReportRequest(principal="billing"), env.metadata("bob")
    )
    assert code is grpc.StatusCode.OK
    usage = {(u.key, u.operation): u for u in report.usage}
    u = usage[("pan", "detokenize:Detokenize")]
    assert (u.requests, u.items, u.denied, list(u.versions)) == (3, 4, 1, [1])


def test_rotate_all_rotates_every_key(sqlite_env):
    env = sqlite_env
    gov = env.stubs()["Governance"]
    code, resp = call(gov.RotateAllKeys, governance_pb2.RotateAllKeysRequest(), env.metadata("alice"))
    assert code is grpc.StatusCode.OK and sorted(resp.rotated) == ["customer-pii", "pan", "scratch", "ssn"]
    assert all(k.primary.version == 2 for k in env.service.keyring.all())


def test_policy_check_explains_the_deciding_rule(sqlite_env):
    env = sqlite_env
    gov = env.stubs()["Governance"]
    check = governance_pb2.CheckPolicyRequest
    code, resp = call(
        gov.CheckPolicy, check(principal="desktop", operation="detokenize", key="pan"), env.metadata("bob")
    )
    assert resp.allowed and resp.rule == "roles.desktop.rules[0]" and resp.reveal == "masked"
    code, resp = call(
        gov.CheckPolicy, check(principal="ivr", operation="detokenize", key="pan"), env.metadata("bob")
    )
    assert code is grpc.StatusCode.OK
    assert not resp.allowed and "default deny" in resp.reason and list(resp.roles) == ["ivr"]
    _code, resp = call(
        gov.CheckPolicy,
        check(principal="carol", operation="decrypt", key="customer-pii"),
        env.metadata("bob"),
    )
    assert not resp.allowed and resp.revoked


def test_policy_and_tokens_reload_without_restart(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    request = _request_for("Tokenization", "Detokenize")
    assert (
        call(s["Tokenization"].Detokenize, request, env.metadata("ivr"))[0]
        is grpc.StatusCode.PERMISSION_DENIED
    )
    env.policy_path.write_text(
        env.policy_path.read_text() + '\n[[roles.ivr.rules]]\nkeys = ["pan"]\noperations = ["detokenize"]\n'
    )
    assert call(s["Tokenization"].Detokenize, request, env.metadata("ivr"))[0] is grpc.StatusCode.OK
    import hashlib

    new = "fresh-token-for-ivr-0123456789"
    env.tokens_path.write_text(
        env.tokens_path.read_text()
        + f'[[tokens]]\nprincipal = "ivr"\nsha256 = "{hashlib.sha256(new.encode()).hexdigest()}"\n'
    )
    md = [("authorization", f"Bearer {new}")]
    assert call(s["Tokenization"].Detokenize, request, md)[0] is grpc.StatusCode.OK


# -- fail closed and no leaks --------------------------------------------------------------------


def test_sensitive_operation_fails_when_the_audit_store_is_unwritable(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    tokens = _tokenize(env, ["4111111111111111"])
    env.store._conn.execute("PRAGMA query_only = ON")
    code, details = _detokenize(env, "billing", tokens)
    assert code is grpc.StatusCode.UNAVAILABLE and details == "audit log unavailable"
    code, _ = _detokenize(env, "ivr", tokens)  # a denial that cannot be audited fails closed too
    assert code is grpc.StatusCode.UNAVAILABLE
    code, _ = call(s["Crypto"].Decrypt, _request_for("Crypto", "Decrypt"), env.metadata("app"))
    assert code is grpc.StatusCode.UNAVAILABLE
    env.store._conn.execute("PRAGMA query_only = OFF")
    assert _detokenize(env, "billing", tokens)[0] is grpc.StatusCode.OK


def test_planted_secrets_never_reach_audit_logs_or_errors(sqlite_env, caplog):
    env = sqlite_env
    s = env.stubs()
    pan = "4111111111111111"
    with caplog.at_level(logging.DEBUG):
        code, resp = call(
            s["Crypto"].Encrypt,
            crypto_pb2.EncryptRequest(
                key="customer-pii", items=[crypto_pb2.EncryptItem(plaintext=PLANT.encode())]
            ),
            env.metadata("app"),
        )
        ct = resp.results[0].ciphertext
        messages = []
        for who in ("app", "ivr", "carol", "stranger"):
            code, out = call(
                s["Crypto"].Decrypt,
                crypto_pb2.DecryptRequest(items=[crypto_pb2.DecryptItem(ciphertext=ct)]),
                env.metadata(who),
            )
            messages.append(str(out) if code is not grpc.StatusCode.OK else "")
        tokens = _tokenize(env, [pan])
        for who in ("billing", "desktop", "ivr"):
            code, out = _detokenize(env, who, tokens, purpose="chargeback")
            if code is not grpc.StatusCode.OK:
                messages.append(str(out))
        call(
            s["Tokenization"].Detokenize,
            tokenization_pb2.DetokenizeRequest(
                key=PLANT, purpose="x", items=[tokenization_pb2.DetokenizeItem(token=PLANT)]
            ),
            env.metadata("billing"),
        )
    audit_text = env.audit_path.read_text()
    db_text = json.dumps([r.to_dict() for r in env.store.query(limit=10_000)])
    log_text = "\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records)
    for secret in (PLANT, pan, tokens[0], ct.hex(), env.tokens["billing"], env.tokens["app"]):
        for where, text in (
            ("audit sink", audit_text),
            ("audit table", db_text),
            ("logs", log_text),
            ("errors", "\n".join(messages)),
        ):
            assert secret not in text, f"{secret[:8]}... leaked into {where}"
    assert len(audit_text.splitlines()) == len(env.store.query(limit=10_000))


def test_lifting_a_revocation_needs_two_operators(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    request = governance_pb2.RevokePrincipalRequest(principal="carol")
    code, details = call(s["Governance"].UnrevokePrincipal, request, env.metadata("alice"))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "dual control" in details
    code, approval = call(
        s["Governance"].RequestApproval,
        governance_pb2.RequestApprovalRequest(
            method="/keysvc.v1.Governance/UnrevokePrincipal", request=request.SerializeToString()
        ),
        env.metadata("alice"),
    )
    assert code is grpc.StatusCode.OK
    code, _ = call(
        s["Governance"].Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("bob")
    )
    assert code is grpc.StatusCode.OK
    code, _ = call(s["Crypto"].Decrypt, _request_for("Crypto", "Decrypt"), env.metadata("carol"))
    assert code is grpc.StatusCode.OK


def test_destroying_a_version_runs_only_through_an_approval(sqlite_env):
    env = sqlite_env
    s = env.stubs()
    env.service.keyring.rotate("scratch", "setup")
    destroy = admin_pb2.SetVersionStateRequest(
        name="scratch", version=1, state=admin_pb2.VERSION_STATE_SCHEDULED_FOR_DESTRUCTION
    )
    code, details = call(s["Admin"].SetVersionState, destroy, env.metadata("alice"))
    assert code is grpc.StatusCode.PERMISSION_DENIED and "dual control" in details
    code, approval = call(
        s["Governance"].RequestApproval,
        governance_pb2.RequestApprovalRequest(
            method="/keysvc.v1.Admin/SetVersionState", request=destroy.SerializeToString()
        ),
        env.metadata("alice"),
    )
    assert code is grpc.StatusCode.OK and "scratch" in approval.summary
    code, done = call(
        s["Governance"].Approve, governance_pb2.ApproveRequest(id=approval.id), env.metadata("bob")
    )
    assert code is grpc.StatusCode.OK, done
    key = admin_pb2.Key.FromString(done.response)
    assert key.versions[0].state == admin_pb2.VERSION_STATE_SCHEDULED_FOR_DESTRUCTION
    records = [r.record for r in env.store.query(operation="admin.destroy:SetVersionState")]
    assert [(r.principal, r.result) for r in records] == [
        ("alice", "PERMISSION_DENIED"),
        ("bob", "STARTED"),
        ("bob", "OK"),
    ]
