"""Governance tables: the audit hash chain, approvals, revocations, frozen keys, operators.

They live in the same database as keysvc's store (``store.url``) but in tables of their
own (prefixed ``gov_``) with their own migrations, opened through a separate connection:
SQLite through its own ``sqlite3`` connection in WAL mode, PostgreSQL through psycopg 3.

Audit records form a hash chain: record ``n`` stores ``prev_hash`` (the hash of record
``n-1``) and ``hash = SHA-256(prev_hash || canonical JSON of its fields, seq included)``.
The newest (seq, hash) is also kept in ``gov_audit_head``, written in the same
transaction, so a truncated tail is detected too. Appends are serialised by a
transaction lock (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock on
PostgreSQL), so replicas sharing one PostgreSQL extend one chain.

Nothing in these tables is secret except operators' TOTP secrets, which are stored only
wrapped by the KEK provider (the caller wraps; this module sees opaque bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from keysvc.errors import AuditUnavailable

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_PG_APPEND_LOCK = 0x6B657973_61756474  # "keysaudt": serialises chain appends across replicas
_PG_MIGRATE_LOCK = 0x6B657973_676F766D

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE gov_audit (
            seq BIGINT PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            request_id TEXT NOT NULL,
            principal TEXT NOT NULL,
            peer TEXT NOT NULL,
            operation TEXT NOT NULL,
            keys TEXT NOT NULL,
            versions TEXT NOT NULL,
            items BIGINT NOT NULL,
            failed_items BIGINT NOT NULL,
            purpose TEXT NOT NULL,
            result TEXT NOT NULL,
            detail TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )""",
        "CREATE INDEX gov_audit_principal ON gov_audit (principal, at)",
        "CREATE INDEX gov_audit_at ON gov_audit (at)",
        "CREATE TABLE gov_audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
        """CREATE TABLE gov_approvals (
            id TEXT PRIMARY KEY,
            method TEXT NOT NULL,
            request TEXT NOT NULL,
            summary TEXT NOT NULL,
            requested_by TEXT NOT NULL,
            requested_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            state TEXT NOT NULL,
            approved_by TEXT NOT NULL,
            decided_at DOUBLE PRECISION NOT NULL,
            outcome TEXT NOT NULL
        )""",
        """CREATE TABLE gov_revocations (
            principal TEXT PRIMARY KEY,
            revoked_at DOUBLE PRECISION NOT NULL,
            revoked_by TEXT NOT NULL
        )""",
        """CREATE TABLE gov_frozen_keys (
            key_name TEXT PRIMARY KEY,
            frozen_at DOUBLE PRECISION NOT NULL,
            frozen_by TEXT NOT NULL
        )""",
        """CREATE TABLE gov_operators (
            name TEXT PRIMARY KEY,
            wrapped_secret TEXT NOT NULL,
            enrolled_at DOUBLE PRECISION NOT NULL,
            enrolled_by TEXT NOT NULL,
            last_step BIGINT NOT NULL
        )""",
    ),
)


@dataclass(frozen=True)
class AuditRecord:
    """One audited event. Never holds a plaintext, token or key: names, counts and codes only.

    ``keys`` are key names; ``versions`` maps a key name to the versions touched (when the
    response said); ``detail`` is a safe free-form note (an approval id, a target principal).
    """

    at: float
    request_id: str
    principal: str
    peer: str
    operation: str
    keys: tuple[str, ...] = ()
    versions: dict[str, list[int]] = field(default_factory=dict)
    items: int = 0
    failed_items: int = 0
    purpose: str = ""
    result: str = "OK"
    detail: str = ""


@dataclass(frozen=True)
class StoredRecord:
    seq: int
    record: AuditRecord
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        return {
            "seq": self.seq,
            "at": r.at,
            "request_id": r.request_id,
            "principal": r.principal,
            "peer": r.peer,
            "operation": r.operation,
            "keys": list(r.keys),
            "versions": {k: list(v) for k, v in r.versions.items()},
            "items": r.items,
            "failed_items": r.failed_items,
            "purpose": r.purpose,
            "result": r.result,
            "detail": r.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def record_hash(seq: int, record: AuditRecord, prev_hash: str) -> str:
    body = {
        "seq": seq,
        "at": repr(float(record.at)),
        "request_id": record.request_id,
        "principal": record.principal,
        "peer": record.peer,
        "operation": record.operation,
        "keys": list(record.keys),
        "versions": {k: sorted(v) for k, v in sorted(record.versions.items())},
        "items": record.items,
        "failed_items": record.failed_items,
        "purpose": record.purpose,
        "result": record.result,
        "detail": record.detail,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(prev_hash.encode() + b"\x00" + canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainProblem:
    """Where the chain breaks: the seq of the first record that does not verify, and why."""

    seq: int
    kind: str  # modified | missing | inserted-or-reordered | truncated
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    records: int
    head_seq: int
    problems: list[ChainProblem]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Approval:
    id: str
    method: str
    request: bytes
    summary: str
    requested_by: str
    requested_at: float
    expires_at: float
    state: str  # pending | executing | executed | failed | expired
    approved_by: str = ""
    decided_at: float = 0.0
    outcome: str = ""


@dataclass(frozen=True)
class Operator:
    name: str
    wrapped_secret: bytes
    enrolled_at: float
    enrolled_by: str
    last_step: int


class _Cursor(Protocol):
    def execute(self, sql: Any, params: Sequence[Any] = ...) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class GovernanceStore:
    """The governance tables over SQLite or PostgreSQL (``open_governance_store``)."""

    dialect = "sqlite"

    # -- plumbing, overridden per dialect --------------------------------------------------------

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Cursor]:  # pragma: no cover - abstract
        raise NotImplementedError
        yield

    def _lock_chain(self, cur: _Cursor) -> None:
        """Serialise chain appends (SQLite's BEGIN IMMEDIATE already does)."""

    def _sql(self, sql: str) -> str:
        return sql

    def close(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._tx() as cur:
            cur.execute(self._sql(sql), params)
            try:
                return list(cur.fetchall())
            except Exception:
                return []

    def _migrate_with(self, cur: _Cursor) -> None:
        cur.execute("CREATE TABLE IF NOT EXISTS gov_schema (version INTEGER NOT NULL)")
        cur.execute("SELECT version FROM gov_schema")
        row = cur.fetchone()
        current = int(row[0]) if row else 0
        if row is None:
            cur.execute(self._sql("INSERT INTO gov_schema (version) VALUES (?)"), (0,))
        for number, statements in enumerate(MIGRATIONS, start=1):
            if number <= current:
                continue
            for statement in statements:
                cur.execute(statement)
            cur.execute(self._sql("UPDATE gov_schema SET version = ?"), (number,))

    # -- audit chain -----------------------------------------------------------------------------

    def append(self, records: Sequence[AuditRecord]) -> list[StoredRecord]:
        """Append records to the chain in one transaction (a group commit)."""
        stored: list[StoredRecord] = []
        with self._tx() as cur:
            self._lock_chain(cur)
            cur.execute("SELECT seq, hash FROM gov_audit_head WHERE id = 1")
            head = cur.fetchone()
            seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            rows = []
            for record in records:
                seq += 1
                digest = record_hash(seq, record, prev)
                rows.append(
                    (
                        seq,
                        float(record.at),
                        record.request_id,
                        record.principal,
                        record.peer,
                        record.operation,
                        ",".join(record.keys),
                        json.dumps({k: sorted(v) for k, v in sorted(record.versions.items())}),
                        record.items,
                        record.failed_items,
                        record.purpose,
                        record.result,
                        record.detail,
                        prev,
                        digest,
                    )
                )
                stored.append(StoredRecord(seq, record, prev, digest))
                prev = digest
            cur.executemany(  # type: ignore[attr-defined]
                self._sql("INSERT INTO gov_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"), rows
            )
            if head:
                cur.execute(
                    self._sql("UPDATE gov_audit_head SET seq = ?, hash = ? WHERE id = 1"), (seq, prev)
                )
            else:
                cur.execute(
                    self._sql("INSERT INTO gov_audit_head (id, seq, hash) VALUES (1, ?, ?)"), (seq, prev)
                )
        return stored

    _COLUMNS = (
        "seq, at, request_id, principal, peer, operation, keys, versions, items, failed_items, "
        "purpose, result, detail, prev_hash, hash"
    )

    @staticmethod
    def _stored(row: Sequence[Any]) -> StoredRecord:
        versions = json.loads(row[7]) if row[7] else {}
        record = AuditRecord(
            at=float(row[1]),
            request_id=str(row[2]),
            principal=str(row[3]),
            peer=str(row[4]),
            operation=str(row[5]),
            keys=tuple(k for k in str(row[6]).split(",") if k),
            versions={str(k): [int(x) for x in v] for k, v in versions.items()},
            items=int(row[8]),
            failed_items=int(row[9]),
            purpose=str(row[10]),
            result=str(row[11]),
            detail=str(row[12]),
        )
        return StoredRecord(int(row[0]), record, str(row[13]), str(row[14]))

    def query(
        self,
        *,
        principal: str = "",
        key: str = "",
        operation: str = "",
        since: float = 0.0,
        until: float = 0.0,
        limit: int = 1000,
        after_seq: int = 0,
    ) -> list[StoredRecord]:
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after_seq]
        if principal:
            where.append("principal = ?")
            params.append(principal)
        if operation:
            where.append("operation = ?")
            params.append(operation)
        if key:
            where.append("(',' || keys || ',') LIKE ? ESCAPE '!'")
            escaped = key.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params.append(f"%,{escaped},%")
        if since:
            where.append("at >= ?")
            params.append(since)
        if until:
            where.append("at < ?")
            params.append(until)
        sql = f"SELECT {self._COLUMNS} FROM gov_audit WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"  # noqa: S608 (fixed clauses, bound values)
        rows = self._run(sql, (*params, max(1, limit)))
        found = [self._stored(r) for r in rows]
        return [r for r in found if not key or key in r.record.keys]

    def verify(self, page: int = 5000) -> VerifyReport:
        """Walk the chain in seq order and report every place where it does not verify."""
        problems: list[ChainProblem] = []
        expected_seq, prev, count, last = 1, GENESIS, 0, 0
        while True:
            rows = self._run(
                f"SELECT {self._COLUMNS} FROM gov_audit WHERE seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                (last, page),
            )
            if not rows:
                break
            for row in rows:
                stored = self._stored(row)
                count += 1
                last = stored.seq
                if stored.seq != expected_seq:
                    problems.append(
                        ChainProblem(
                            stored.seq,
                            "missing",
                            f"records {expected_seq}..{stored.seq - 1} are missing",
                        )
                    )
                if stored.prev_hash != prev:
                    kind = "missing" if stored.seq != expected_seq else "inserted-or-reordered"
                    if kind == "inserted-or-reordered" or not problems or problems[-1].seq != stored.seq:
                        problems.append(
                            ChainProblem(stored.seq, kind, "does not link to the previous record")
                        )
                if record_hash(stored.seq, stored.record, stored.prev_hash) != stored.hash:
                    problems.append(ChainProblem(stored.seq, "modified", "contents do not match its hash"))
                prev = stored.hash
                expected_seq = stored.seq + 1
        head_rows = self._run("SELECT seq, hash FROM gov_audit_head WHERE id = 1")
        head_seq = int(head_rows[0][0]) if head_rows else 0
        if head_rows and (head_seq != last or str(head_rows[0][1]) != prev):
            problems.append(
                ChainProblem(
                    last + 1 if head_seq > last else last,
                    "truncated",
                    f"the chain head says seq {head_seq}, the last record is {last}",
                )
            )
        if not head_rows and count:
            problems.append(ChainProblem(last, "truncated", "the chain head is missing"))
        return VerifyReport(count, head_seq, problems)

    # -- approvals -------------------------------------------------------------------------------

    def add_approval(self, approval: Approval) -> None:
        self._run(
            "INSERT INTO gov_approvals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                approval.id,
                approval.method,
                approval.request.hex(),
                approval.summary,
                approval.requested_by,
                approval.requested_at,
                approval.expires_at,
                approval.state,
                approval.approved_by,
                approval.decided_at,
                approval.outcome,
            ),
        )

    @staticmethod
    def _approval(row: Sequence[Any]) -> Approval:
        return Approval(
            id=str(row[0]),
            method=str(row[1]),
            request=bytes.fromhex(str(row[2])),
            summary=str(row[3]),
            requested_by=str(row[4]),
            requested_at=float(row[5]),
            expires_at=float(row[6]),
            state=str(row[7]),
            approved_by=str(row[8]),
            decided_at=float(row[9]),
            outcome=str(row[10]),
        )

    def get_approval(self, approval_id: str) -> Approval | None:
        rows = self._run("SELECT * FROM gov_approvals WHERE id = ?", (approval_id,))
        return self._approval(rows[0]) if rows else None

    def list_approvals(self, *, include_done: bool = False) -> list[Approval]:
        if include_done:
            rows = self._run("SELECT * FROM gov_approvals ORDER BY requested_at")
        else:
            rows = self._run("SELECT * FROM gov_approvals WHERE state = 'pending' ORDER BY requested_at")
        return [self._approval(r) for r in rows]

    def claim_approval(self, approval_id: str, approver: str, now: float) -> bool:
        """pending -> executing, exactly once across replicas (a conditional update)."""
        with self._tx() as cur:
            cur.execute(
                self._sql(
                    "UPDATE gov_approvals SET state = 'executing', approved_by = ?, decided_at = ? "
                    "WHERE id = ? AND state = 'pending' AND expires_at > ? AND requested_by <> ?"
                ),
                (approver, now, approval_id, now, approver),
            )
            return int(cur.rowcount) == 1  # type: ignore[attr-defined]

    def finish_approval(self, approval_id: str, state: str, outcome: str) -> None:
        self._run(
            "UPDATE gov_approvals SET state = ?, outcome = ? WHERE id = ?", (state, outcome, approval_id)
        )

    # -- revocations and frozen keys -------------------------------------------------------------

    def revoke(self, principal: str, by: str, now: float) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM gov_revocations WHERE principal = ?"), (principal,))
            cur.execute(self._sql("INSERT INTO gov_revocations VALUES (?, ?, ?)"), (principal, now, by))

    def unrevoke(self, principal: str) -> bool:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM gov_revocations WHERE principal = ?"), (principal,))
            return int(cur.rowcount) == 1  # type: ignore[attr-defined]

    def revoked(self) -> frozenset[str]:
        return frozenset(str(r[0]) for r in self._run("SELECT principal FROM gov_revocations"))

    def freeze(self, key: str, by: str, now: float) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM gov_frozen_keys WHERE key_name = ?"), (key,))
            cur.execute(self._sql("INSERT INTO gov_frozen_keys VALUES (?, ?, ?)"), (key, now, by))

    def unfreeze(self, key: str) -> bool:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM gov_frozen_keys WHERE key_name = ?"), (key,))
            return int(cur.rowcount) == 1  # type: ignore[attr-defined]

    def frozen(self) -> frozenset[str]:
        return frozenset(str(r[0]) for r in self._run("SELECT key_name FROM gov_frozen_keys"))

    # -- operators -------------------------------------------------------------------------------

    def put_operator(self, operator: Operator) -> None:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM gov_operators WHERE name = ?"), (operator.name,))
            cur.execute(
                self._sql("INSERT INTO gov_operators VALUES (?, ?, ?, ?, ?)"),
                (
                    operator.name,
                    operator.wrapped_secret.decode("ascii"),
                    operator.enrolled_at,
                    operator.enrolled_by,
                    operator.last_step,
                ),
            )

    def get_operator(self, name: str) -> Operator | None:
        rows = self._run("SELECT * FROM gov_operators WHERE name = ?", (name,))
        if not rows:
            return None
        r = rows[0]
        return Operator(str(r[0]), str(r[1]).encode("ascii"), float(r[2]), str(r[3]), int(r[4]))

    def list_operators(self) -> list[Operator]:
        return [
            Operator(str(r[0]), b"", float(r[2]), str(r[3]), int(r[4]))
            for r in self._run("SELECT * FROM gov_operators ORDER BY name")
        ]

    def delete_operator(self, name: str) -> bool:
        with self._tx() as cur:
            cur.execute(self._sql("DELETE FROM gov_operators WHERE name = ?"), (name,))
            return int(cur.rowcount) == 1  # type: ignore[attr-defined]

    def advance_step(self, name: str, step: int) -> bool:
        """Record ``step`` as the operator's last used TOTP step; False if it (or a later one) was used."""
        with self._tx() as cur:
            cur.execute(
                self._sql("UPDATE gov_operators SET last_step = ? WHERE name = ? AND last_step < ?"),
                (step, name, step),
            )
            return int(cur.rowcount) == 1  # type: ignore[attr-defined]


class SqliteGovernanceStore(GovernanceStore):
    """Its own sqlite3 connection to the store's file (WAL), guarded by a lock."""

    dialect = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        with self._tx() as cur:
            self._migrate_with(cur)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        with self._lock:
            try:
                cur = self._conn.cursor()
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error:
                raise AuditUnavailable() from None
            try:
                yield cur
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                log.error("governance store write failed", extra={"error_type": type(exc).__name__})
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise AuditUnavailable() from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresGovernanceStore(GovernanceStore):
    """A small psycopg 3 connection pool on the store's database."""

    dialect = "postgresql"

    def __init__(self, url: str, *, max_size: int = 4, timeout: float = 10.0) -> None:
        import psycopg  # noqa: F401  (fail early when the driver is missing)
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(url, min_size=1, max_size=max_size, open=False, timeout=timeout)
        try:
            self._pool.open(wait=True, timeout=timeout)
        except Exception:
            self._pool.close()
            raise AuditUnavailable() from None
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_MIGRATE_LOCK,))
            self._migrate_with(cur)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _lock_chain(self, cur: _Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_APPEND_LOCK,))

    @contextlib.contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        import psycopg

        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield cur
        except (psycopg.Error, OSError) as exc:
            log.error("governance store write failed", extra={"error_type": type(exc).__name__})
            raise AuditUnavailable() from None

    def close(self) -> None:
        self._pool.close()


def open_governance_store(url: str) -> GovernanceStore:
    """The governance tables in the database of ``store.url``."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteGovernanceStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresGovernanceStore(url)
    raise ValueError("store.url must be sqlite:///PATH or postgresql://...")
