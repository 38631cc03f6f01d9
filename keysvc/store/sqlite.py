"""SQLite store: the embedded default (stdlib sqlite3, WAL, versioned migrations)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from keysvc.errors import AlreadyExists, NotFound
from keysvc.store.models import KeyPolicy, KeyRecord, Purpose, VersionRecord, VersionState

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
)

_VERSION_COLUMNS = (
    "version, state, created_at, wrapped_dek, kek_version, encryptions, state_changed_at, "
    "state_changed_by, destroy_after"
)


class SqliteStore:
    """One connection guarded by a lock; writes run in ``BEGIN IMMEDIATE`` transactions."""

    url_scheme = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
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

    def create_key(self, key: KeyRecord, first: VersionRecord) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key.name,
                        key.purpose.value,
                        key.created_at,
                        key.created_by,
                        _policy_json(key.policy),
                        key.format,
                        json.dumps(key.format_options),
                        key.min_decryption_version,
                        key.last_rotated_at,
                    ),
                )
                self._insert_version(db, key.name, first)
        except sqlite3.IntegrityError:
            raise AlreadyExists("key already exists") from None

    @staticmethod
    def _insert_version(db: sqlite3.Connection, name: str, v: VersionRecord) -> None:
        db.execute(
            f"INSERT INTO key_versions (key_name, {_VERSION_COLUMNS}) "  # noqa: S608 - constant column list
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                v.version,
                v.state.value,
                v.created_at,
                v.wrapped_dek,
                v.kek_version,
                v.encryptions,
                v.state_changed_at,
                v.state_changed_by,
                v.destroy_after,
            ),
        )

    def get_key(self, name: str) -> KeyRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM keys WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            return self._key(row)

    def list_keys(self) -> list[KeyRecord]:
        with self._lock:
            return [self._key(row) for row in self._db.execute("SELECT * FROM keys ORDER BY name").fetchall()]

    def _key(self, row: Any) -> KeyRecord:
        name = str(row[0])
        versions = self._db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM key_versions WHERE key_name = ? ORDER BY version",  # noqa: S608
            (name,),
        ).fetchall()
        return KeyRecord(
            name=name,
            purpose=Purpose(row[1]),
            created_at=float(row[2]),
            created_by=str(row[3]),
            policy=KeyPolicy(**json.loads(str(row[4]))),
            format=str(row[5]),
            format_options=json.loads(str(row[6])),
            min_decryption_version=int(row[7]),
            last_rotated_at=float(row[8]),
            versions=tuple(
                VersionRecord(
                    version=v[0],
                    state=VersionState(v[1]),
                    created_at=v[2],
                    wrapped_dek=v[3],
                    kek_version=v[4],
                    encryptions=v[5],
                    state_changed_at=v[6],
                    state_changed_by=v[7],
                    destroy_after=v[8],
                )
                for v in versions
            ),
        )

    def add_primary_version(self, name: str, version: VersionRecord, rotated_at: float) -> None:
        try:
            with self._tx() as db:
                changed = db.execute(
                    "UPDATE key_versions SET state = ?, state_changed_at = ?, state_changed_by = ? "
                    "WHERE key_name = ? AND state = ?",
                    (
                        VersionState.ACTIVE.value,
                        rotated_at,
                        version.state_changed_by,
                        name,
                        VersionState.PRIMARY.value,
                    ),
                ).rowcount
                if changed == 0:
                    raise NotFound("key not found")
                self._insert_version(db, name, version)
                db.execute("UPDATE keys SET last_rotated_at = ? WHERE name = ?", (rotated_at, name))
        except sqlite3.IntegrityError:
            raise AlreadyExists("key version already exists") from None

    def update_policy(self, name: str, policy: KeyPolicy, min_decryption_version: int) -> None:
        with self._tx() as db:
            changed = db.execute(
                "UPDATE keys SET policy = ?, min_decryption_version = ? WHERE name = ?",
                (_policy_json(policy), min_decryption_version, name),
            ).rowcount
            if changed == 0:
                raise NotFound("key not found")

    def reserve_encryptions(self, name: str, version: int, count: int, limit: int) -> int:
        with self._tx() as db:
            row = db.execute(
                "SELECT encryptions FROM key_versions WHERE key_name = ? AND version = ?", (name, version)
            ).fetchone()
            if row is None:
                raise NotFound("key version not found")
            granted = max(0, min(count, limit - int(row[0])))
            if granted:
                db.execute(
                    "UPDATE key_versions SET encryptions = encryptions + ? "
                    "WHERE key_name = ? AND version = ?",
                    (granted, name, version),
                )
            return granted

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

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _policy_json(policy: KeyPolicy) -> str:
    return json.dumps(policy.__dict__, sort_keys=True)
