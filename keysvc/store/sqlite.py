"""SQLite store: the embedded default (stdlib sqlite3, WAL, versioned migrations).

One process owns the database; the scheduler's job lock is an ``flock`` on a file next
to it, so with ``--workers N`` only one worker runs scheduled jobs at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from keysvc.errors import AlreadyExists, NotFound
from keysvc.store import _rows
from keysvc.store._rows import EVENT_COLUMNS, KEY_COLUMNS, TOKEN_COLUMNS, VERSION_COLUMNS
from keysvc.store.models import KeyPolicy, KeyRecord, TokenRecord, VersionEvent, VersionRecord, VersionState

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        created_at REAL NOT NULL,
        created_by TEXT NOT NULL,
        policy TEXT NOT NULL,
        format TEXT NOT NULL,
        format_options TEXT NOT NULL,
        min_decryption_version INTEGER NOT NULL,
        last_rotated_at REAL NOT NULL
    );
    CREATE TABLE key_versions (
        key_name TEXT NOT NULL REFERENCES keys(name),
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        wrapped_dek BLOB,
        kek_version INTEGER NOT NULL,
        encryptions INTEGER NOT NULL DEFAULT 0,
        state_changed_at REAL NOT NULL,
        state_changed_by TEXT NOT NULL,
        destroy_after REAL,
        PRIMARY KEY (key_name, version)
    );
    """,
    """
    ALTER TABLE key_versions ADD COLUMN retired_at REAL;
    ALTER TABLE key_versions ADD COLUMN last_used_at REAL NOT NULL DEFAULT 0;
    UPDATE key_versions SET retired_at = state_changed_at WHERE state <> 'primary';
    CREATE TABLE tokens (
        key_name TEXT NOT NULL REFERENCES keys(name),
        token TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        key_version INTEGER NOT NULL,
        fingerprint BLOB,
        created_at REAL NOT NULL,
        expires_at REAL,
        metadata TEXT NOT NULL,
        PRIMARY KEY (key_name, token)
    );
    CREATE UNIQUE INDEX tokens_fingerprint ON tokens (key_name, fingerprint);
    CREATE INDEX tokens_version ON tokens (key_name, key_version);
    CREATE INDEX tokens_expiry ON tokens (expires_at) WHERE expires_at IS NOT NULL;
    """,
    """
    CREATE TABLE key_version_events (
        key_name TEXT NOT NULL REFERENCES keys(name),
        version INTEGER NOT NULL,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL
    );
    CREATE INDEX key_version_events_key ON key_version_events (key_name);
    INSERT INTO key_version_events
        SELECT key_name, version, state_changed_at, state_changed_by, NULL, state FROM key_versions;
    """,
)

_BATCH = 500  # SQLite allows 999 bound parameters per statement on old builds


class SqliteStore:
    """One connection guarded by a lock; writes run in ``BEGIN IMMEDIATE`` transactions."""

    url_scheme = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)
        self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._job_locks: dict[str, tuple[int, threading.Lock]] = {}
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute("PRAGMA secure_delete=ON")
        self._erase_pending = False
        self._migrate()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            if self._erase_pending:
                # a wrapped DEK was erased: zeroed in the database (secure_delete); also flush the WAL
                self._erase_pending = False
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one consistent snapshot (no torn key records)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT max(version) FROM schema_version").fetchone()
            current = row[0] or 0
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    # -- keys -----------------------------------------------------------------------------------

    def create_key(self, key: KeyRecord, first: VersionRecord) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    f"INSERT INTO keys ({KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    _rows.key_params(key),
                )
                self._insert_version(db, key.name, first)
        except sqlite3.IntegrityError:
            raise AlreadyExists("key already exists") from None

    @staticmethod
    def _insert_version(db: sqlite3.Connection, name: str, v: VersionRecord) -> None:
        db.execute(
            f"INSERT INTO key_versions (key_name, {VERSION_COLUMNS}) "  # noqa: S608 - constant column list
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _rows.version_params(name, v),
        )
        SqliteStore._event(db, name, v.version, v.state_changed_at, v.state_changed_by, None, v.state)

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        name: str,
        version: int,
        at: float,
        actor: str,
        from_state: VersionState | None,
        to_state: VersionState,
    ) -> None:
        db.execute(
            f"INSERT INTO key_version_events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
            (name, version, at, actor, from_state.value if from_state else None, to_state.value),
        )

    def version_events(self, name: str) -> list[VersionEvent]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {EVENT_COLUMNS} FROM key_version_events WHERE key_name = ? "  # noqa: S608
                "ORDER BY rowid",
                (name,),
            ).fetchall()
            return [_rows.event_from_row(r) for r in rows]

    def get_key(self, name: str) -> KeyRecord | None:
        with self._snapshot():
            row = self._db.execute(
                f"SELECT {KEY_COLUMNS} FROM keys WHERE name = ?",  # noqa: S608
                (name,),
            ).fetchone()
            if row is None:
                return None
            return self._key(row)

    def list_keys(self) -> list[KeyRecord]:
        with self._snapshot():
            rows = self._db.execute(f"SELECT {KEY_COLUMNS} FROM keys ORDER BY name").fetchall()  # noqa: S608
            return [self._key(row) for row in rows]

    def _key(self, row: Any) -> KeyRecord:
        versions = self._db.execute(
            f"SELECT {VERSION_COLUMNS} FROM key_versions WHERE key_name = ? ORDER BY version",  # noqa: S608
            (row[0],),
        ).fetchall()
        return _rows.key_from_row(row, versions)

    def add_primary_version(self, name: str, version: VersionRecord, rotated_at: float) -> None:
        with self._tx() as db:
            row = db.execute("SELECT max(version) FROM key_versions WHERE key_name = ?", (name,)).fetchone()
            if row[0] is None:
                raise NotFound("key not found")
            if int(row[0]) + 1 != version.version:
                raise AlreadyExists("key version already exists")
            old = db.execute(
                "SELECT version FROM key_versions WHERE key_name = ? AND state = ?",
                (name, VersionState.PRIMARY.value),
            ).fetchone()
            if old is not None:
                self._event(
                    db,
                    name,
                    int(old[0]),
                    rotated_at,
                    version.state_changed_by,
                    VersionState.PRIMARY,
                    VersionState.ACTIVE,
                )
            db.execute(
                "UPDATE key_versions SET state = ?, state_changed_at = ?, state_changed_by = ?, "
                "retired_at = ? WHERE key_name = ? AND state = ?",
                (
                    VersionState.ACTIVE.value,
                    rotated_at,
                    version.state_changed_by,
                    rotated_at,
                    name,
                    VersionState.PRIMARY.value,
                ),
            )
            self._insert_version(db, name, version)
            db.execute("UPDATE keys SET last_rotated_at = ? WHERE name = ?", (rotated_at, name))

    def update_policy(self, name: str, policy: KeyPolicy, min_decryption_version: int) -> None:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE keys SET policy = ?, min_decryption_version = ? WHERE name = ?",
                (_rows.policy_json(policy), min_decryption_version, name),
            ).rowcount
            if changed == 0:
                raise NotFound("key not found")

    def advance_min_decryption_version(self, name: str, floor: int) -> bool:
        with self._tx() as db:
            return bool(
                db.execute(
                    "UPDATE keys SET min_decryption_version = ? "
                    "WHERE name = ? AND min_decryption_version < ?",
                    (floor, name, floor),
                ).rowcount
            )

    def transition_version(
        self,
        name: str,
        version: int,
        from_states: Collection[VersionState],
        to_state: VersionState,
        at: float,
        by: str,
        destroy_after: float | None = None,
        due_by: float | None = None,
    ) -> bool:
        states = [s.value for s in from_states]
        if not states:
            return False
        keep = destroy_after if to_state is VersionState.SCHEDULED_FOR_DESTRUCTION else None
        erase = to_state is VersionState.DESTROYED
        placeholders = ",".join("?" * len(states))
        with self._tx() as db:
            before = db.execute(
                "SELECT state FROM key_versions WHERE key_name = ? AND version = ?", (name, version)
            ).fetchone()
            if before is None:
                raise NotFound("key version not found")
            changed = db.execute(
                "UPDATE key_versions SET state = ?, state_changed_at = ?, state_changed_by = ?, "  # noqa: S608
                "destroy_after = ?, wrapped_dek = CASE WHEN ? THEN NULL ELSE wrapped_dek END "
                "WHERE key_name = ? AND version = ? AND (? IS NULL OR destroy_after <= ?) "
                f"AND state IN ({placeholders})",
                (to_state.value, at, by, keep, erase, name, version, due_by, due_by, *states),
            ).rowcount
            if changed:
                self._event(db, name, version, at, by, VersionState(before[0]), to_state)
                if erase:
                    self._erase_pending = True
                return True
            return False

    def reserve_encryptions(self, name: str, version: int, count: int, limit: int, at: float = 0.0) -> int:
        with self._tx() as db:
            row = db.execute(
                "SELECT encryptions, state FROM key_versions WHERE key_name = ? AND version = ?",
                (name, version),
            ).fetchone()
            if row is None:
                raise NotFound("key version not found")
            granted = _rows.reservation_grant(row, count, limit)
            if granted:
                db.execute(
                    "UPDATE key_versions SET encryptions = encryptions + ?, "
                    "last_used_at = max(last_used_at, ?) "
                    "WHERE key_name = ? AND version = ?",
                    (granted, at, name, version),
                )
            return granted

    def touch_versions(self, rows: Sequence[tuple[str, int, float]]) -> None:
        if not rows:
            return
        with self._tx() as db:
            db.executemany(
                "UPDATE key_versions SET last_used_at = max(last_used_at, ?) "
                "WHERE key_name = ? AND version = ?",
                [(at, name, version) for name, version, at in rows],
            )

    def wrapped_deks(self) -> list[tuple[str, int, str, bytes]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT v.key_name, v.version, k.purpose, v.wrapped_dek FROM key_versions v "
                "JOIN keys k ON k.name = v.key_name WHERE v.wrapped_dek IS NOT NULL "
                "ORDER BY v.key_name, v.version"
            ).fetchall()
            return [(str(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in rows]

    def replace_wrapped_deks(self, rows: Sequence[tuple[str, int, bytes, bytes, int]]) -> int:
        with self._tx() as db:
            return sum(
                db.execute(
                    "UPDATE key_versions SET wrapped_dek = ?, kek_version = ? "
                    "WHERE key_name = ? AND version = ? AND wrapped_dek = ?",
                    (new, kek_version, name, version, old),
                ).rowcount
                for name, version, old, new, kek_version in rows
            )

    # -- token vault ----------------------------------------------------------------------------

    def insert_tokens(self, records: Sequence[TokenRecord]) -> list[bool]:
        sql = (
            f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
            "ON CONFLICT DO NOTHING"
        )
        with self._tx() as db:
            return [db.execute(sql, _rows.token_params(r)).rowcount == 1 for r in records]

    def find_tokens(self, key_name: str, tokens: Sequence[str]) -> dict[str, TokenRecord]:
        return {r.token: r for r in self._find(key_name, "token", list(dict.fromkeys(tokens)))}

    def find_fingerprints(self, key_name: str, fingerprints: Sequence[bytes]) -> dict[bytes, TokenRecord]:
        found = self._find(key_name, "fingerprint", list(dict.fromkeys(fingerprints)))
        return {r.fingerprint: r for r in found if r.fingerprint is not None}

    def _find(self, key_name: str, column: str, values: Sequence[Any]) -> list[TokenRecord]:
        out: list[TokenRecord] = []
        with self._lock:
            for start in range(0, len(values), _BATCH):
                chunk = values[start : start + _BATCH]
                rows = self._db.execute(
                    f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE key_name = ? "  # noqa: S608 - constant names
                    f"AND {column} IN ({','.join('?' * len(chunk))})",
                    (key_name, *chunk),
                ).fetchall()
                out += [_rows.token_from_row(r) for r in rows]
        return out

    def tokens_below_version(self, key_name: str, version: int, limit: int) -> list[TokenRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE key_name = ? AND key_version < ? "  # noqa: S608
                "ORDER BY token LIMIT ?",
                (key_name, version, limit),
            ).fetchall()
            return [_rows.token_from_row(r) for r in rows]

    def update_token_ciphertexts(self, rows: Sequence[tuple[str, str, int, bytes, int]]) -> int:
        with self._tx() as db:
            return sum(
                db.execute(
                    "UPDATE tokens SET ciphertext = ?, key_version = ? "
                    "WHERE key_name = ? AND token = ? AND key_version = ?",
                    (ciphertext, new_version, key_name, token, old_version),
                ).rowcount
                for key_name, token, old_version, ciphertext, new_version in rows
            )

    def purge_expired_tokens(self, now: float) -> int:
        with self._tx() as db:
            return int(
                db.execute(
                    "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
                ).rowcount
            )

    # -- jobs -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def job_lock(self, job: str) -> Iterator[bool]:
        """An exclusive, non-blocking ``flock`` on ``<db>.<job>.lock`` (released if the process dies)."""
        with self._lock:
            if job not in self._job_locks:
                fd = os.open(f"{self._path}.{job}.lock", os.O_RDWR | os.O_CREAT, 0o600)
                self._job_locks[job] = (fd, threading.Lock())
            fd, local = self._job_locks[job]
        if not local.acquire(blocking=False):
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            local.release()

    def close(self) -> None:
        with self._lock:
            for fd, _ in self._job_locks.values():
                os.close(fd)
            self._job_locks.clear()
            self._db.close()
