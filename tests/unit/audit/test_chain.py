"""The audit hash chain: verify finds edited, deleted, inserted and reordered records, and where."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keysvc.audit.log import AuditLog, Sink
from keysvc.audit.store import (
    AuditRecord,
    GovernanceStore,
    PostgresGovernanceStore,
    SqliteGovernanceStore,
)
from keysvc.errors import AuditUnavailable

N = 10_000


def _record(i: int) -> AuditRecord:
    return AuditRecord(
        at=1_900_000_000.0 + i,
        request_id=f"req-{i}",
        principal=f"p{i % 7}",
        peer="ipv4:10.0.0.1:5000",
        operation="detokenize:Detokenize" if i % 2 else "decrypt:Decrypt",
        keys=("pan",) if i % 2 else ("customer-pii",),
        versions={"pan": [1, 2]} if i % 2 else {"customer-pii": [3]},
        items=1000,
        failed_items=i % 3,
        purpose="chargeback" if i % 2 else "",
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        s: GovernanceStore = SqliteGovernanceStore(tmp_path / "keysvc.db")
    else:
        s = PostgresGovernanceStore(request.getfixturevalue("pg_url"))
    yield s
    s.close()


def _fill(store: GovernanceStore) -> None:
    for start in range(0, N, 1000):
        store.append([_record(i) for i in range(start, start + 1000)])


def _exec(store: GovernanceStore, sql: str, params: tuple = ()) -> None:
    with store._tx() as cur:
        cur.execute(store._sql(sql), params)


def test_intact_chain_of_ten_thousand_verifies(store):
    _fill(store)
    report = store.verify()
    assert report.ok and report.records == N and report.head_seq == N


def test_edited_record_is_found(store):
    _fill(store)
    _exec(store, "UPDATE gov_audit SET items = 1 WHERE seq = ?", (4321,))
    problems = store.verify().problems
    assert [(p.seq, p.kind) for p in problems] == [(4321, "modified")]


def test_edit_with_a_recomputed_hash_breaks_the_next_link(store):
    from keysvc.audit.store import record_hash

    _fill(store)
    row = store.query(after_seq=4320, limit=1)[0]
    forged = AuditRecord(**{**row.record.__dict__, "principal": "someone-else"})
    _exec(
        store,
        "UPDATE gov_audit SET principal = ?, hash = ? WHERE seq = ?",
        ("someone-else", record_hash(4321, forged, row.prev_hash), 4321),
    )
    problems = store.verify().problems
    assert [(p.seq, p.kind) for p in problems] == [(4322, "inserted-or-reordered")]


def test_deleted_record_is_found(store):
    _fill(store)
    _exec(store, "DELETE FROM gov_audit WHERE seq = ?", (777,))
    problems = store.verify().problems
    assert problems and problems[0].seq == 778 and problems[0].kind == "missing"
    assert "777" in problems[0].detail


def test_reordered_records_are_found(store):
    _fill(store)
    # swap two records' positions in the chain
    _exec(store, "UPDATE gov_audit SET seq = -1 WHERE seq = ?", (5000,))
    _exec(store, "UPDATE gov_audit SET seq = 5000 WHERE seq = ?", (5001,))
    _exec(store, "UPDATE gov_audit SET seq = 5001 WHERE seq = -1")
    problems = store.verify().problems
    assert problems and problems[0].seq == 5000
    assert {p.kind for p in problems} >= {"modified"}


def test_inserted_record_is_found(store):
    _fill(store)
    _exec(store, "DELETE FROM gov_audit WHERE seq = ?", (N,))
    # an attacker appends a made-up record at the end with a self-consistent hash of their own
    fake = _record(12345)
    from keysvc.audit.store import record_hash

    prev = store.query(after_seq=N - 2, limit=1)[0].hash
    digest = record_hash(N, fake, prev)
    _exec(
        store,
        "INSERT INTO gov_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            N,
            fake.at,
            fake.request_id,
            fake.principal,
            fake.peer,
            fake.operation,
            "pan",
            "{}",
            1,
            0,
            "",
            "OK",
            "",
            prev,
            digest,
        ),
    )
    problems = store.verify().problems
    assert problems, "a record whose hash differs from the head's must be reported"
    assert problems[-1].kind == "truncated" or problems[0].kind == "modified"


def test_truncated_tail_is_found(store):
    _fill(store)
    _exec(store, "DELETE FROM gov_audit WHERE seq > ?", (N - 5,))
    problems = store.verify().problems
    assert [p.kind for p in problems] == ["truncated"]


def test_query_filters(store):
    _fill(store)
    found = store.query(principal="p3", key="pan", since=1_900_000_000.0 + 100, limit=50)
    assert found and all(r.record.principal == "p3" and "pan" in r.record.keys for r in found)
    assert all(r.record.at >= 1_900_000_100.0 for r in found)
    assert not store.query(key="pa")  # exact key names, not prefixes
    assert not store.query(key="p_n")  # LIKE wildcards are escaped


def test_group_commit_from_many_threads(tmp_path):
    store = SqliteGovernanceStore(tmp_path / "keysvc.db")
    sink_path = tmp_path / "audit.jsonl"
    log = AuditLog(store, Sink(str(sink_path)))
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for i in range(200):
                log.append(_record(t * 1000 + i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = store.verify()
    assert report.ok and report.records == 1600
    assert log.commits < 1600  # records were grouped into fewer commits
    assert len(sink_path.read_text().splitlines()) == 1600
    log.close()
    store.close()


def test_unwritable_store_fails_closed(tmp_path):
    store = SqliteGovernanceStore(tmp_path / "keysvc.db")
    store._conn.execute("PRAGMA query_only = ON")
    log = AuditLog(store)
    with pytest.raises(AuditUnavailable):
        log.append(_record(1))
    store.close()


def test_approval_is_claimed_once(store):
    from keysvc.audit.store import Approval

    store.add_approval(Approval("a1", "/m", b"\x01", "s", "alice", 10.0, 100.0, "pending"))
    assert not store.claim_approval("a1", "alice", 20.0)  # own request
    assert not store.claim_approval("a1", "bob", 200.0)  # expired
    assert store.claim_approval("a1", "bob", 20.0)
    assert not store.claim_approval("a1", "carol", 21.0)
    assert store.get_approval("a1").state == "executing"
