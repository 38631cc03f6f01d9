"""PostgreSQL store: shared by every replica (psycopg 3 with a connection pool).

Migrations are versioned like SQLite's (``schema_version``) and applied under a
transaction-scoped advisory lock, so replicas starting together migrate once. The
scheduler's job lock is a session advisory lock held on one pooled connection for the
duration of a job run: if the replica dies, PostgreSQL drops its session and the lock.
Races between replicas are settled by compare-and-swap writes inside transactions
(see :mod:`keysvc.store.base`), with the key row locked (``FOR UPDATE``) for rotations.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from keysvc.errors import AlreadyExists, NotFound, Unavailable
from keysvc.store import _rows
from keysvc.store._rows import EVENT_COLUMNS, KEY_COLUMNS, TOKEN_COLUMNS, VERSION_COLUMNS
from keysvc.store.models import KeyPolicy, KeyRecord, TokenRecord, VersionEvent, VersionRecord, VersionState

log = logging.getLogger(__name__)

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE keys (
        name TEXT PRIMARY KEY,
        purpose TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        created_by TEXT NOT NULL,
        policy TEXT NOT NULL,
        format TEXT NOT NULL,
        format_options TEXT NOT NULL,
        min_decryption_version INTEGER NOT NULL,
        last_rotated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE key_versions (
        key_name TEXT NOT NULL REFERENCES keys(name),
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        wrapped_dek BYTEA,
        kek_version INTEGER NOT NULL,
        encryptions BIGINT NOT NULL DEFAULT 0,
        state_changed_at DOUBLE PRECISION NOT NULL,
        state_changed_by TEXT NOT NULL,
        destroy_after DOUBLE PRECISION,
        retired_at DOUBLE PRECISION,
        last_used_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (key_name, version)
    );
    CREATE TABLE tokens (
        key_name TEXT NOT NULL REFERENCES keys(name),
        token TEXT NOT NULL,
        ciphertext BYTEA NOT NULL,
        key_version INTEGER NOT NULL,
        fingerprint BYTEA,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        metadata TEXT NOT NULL,
        PRIMARY KEY (key_name, token)
    );
    CREATE UNIQUE INDEX tokens_fingerprint ON tokens (key_name, fingerprint);
    CREATE INDEX tokens_version ON tokens (key_name, key_version);
    CREATE INDEX tokens_expiry ON tokens (expires_at) WHERE expires_at IS NOT NULL
    """,
    """
    CREATE TABLE key_version_events (
        id BIGSERIAL PRIMARY KEY,
        key_name TEXT NOT NULL REFERENCES keys(name),
        version INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL
    );
    CREATE INDEX key_version_events_key ON key_version_events (key_name);
    INSERT INTO key_version_events (key_name, version, at, actor, from_state, to_state)
        SELECT key_name, version, state_changed_at, state_changed_by, NULL, state FROM key_versions
    """,
)

_LOCK_ID = "hashtextextended(current_database() || ':' || current_schema() || ':' || %s, 0)"


class PostgresStore:
    """A pooled PostgreSQL store; every write is one transaction."""

    url_scheme = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0) -> None:
        try:  # fail fast (and without the URL in any message) when the server is not there
            psycopg.connect(url, connect_timeout=max(1, int(timeout))).close()
        except psycopg.Error:
            log.error("cannot connect to PostgreSQL")
            raise Unavailable("store unavailable") from None
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True},
            open=False,
            name="keysvc-store",
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout:
            self._pool.close()
            raise Unavailable("store unavailable") from None
        self._migrate()

    @contextlib.contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout):
            log.warning("store unavailable")
            raise Unavailable("store unavailable") from None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[psycopg.Cursor[Any]]:
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def _migrate(self) -> None:
        with self._tx() as cur:
            cur.execute(f"SELECT pg_advisory_xact_lock({_LOCK_ID})", ("migrate",))
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            cur.execute("SELECT max(version) FROM schema_version")
            row = cur.fetchone()
            current = int(row[0] or 0) if row else 0
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in filter(str.strip, script.split(";")):
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))

    @property
    def schema_version(self) -> int:
        with self._tx() as cur:
            cur.execute("SELECT max(version) FROM schema_version")
            row = cur.fetchone()
            return int(row[0]) if row else 0

    # -- keys -----------------------------------------------------------------------------------

    def create_key(self, key: KeyRecord, first: VersionRecord) -> None:
        try:
            with self._tx() as cur:
                cur.execute(
                    f"INSERT INTO keys ({KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
                    _rows.key_params(key),
                )
                self._insert_version(cur, key.name, first)
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists("key already exists") from None

    @staticmethod
    def _insert_version(cur: psycopg.Cursor[Any], name: str, v: VersionRecord) -> None:
        cur.execute(
            f"INSERT INTO key_versions (key_name, {VERSION_COLUMNS}) "  # noqa: S608 - constant column list
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            _rows.version_params(name, v),
        )
        PostgresStore._event(cur, name, v.version, v.state_changed_at, v.state_changed_by, None, v.state)

    @staticmethod
    def _event(
        cur: psycopg.Cursor[Any],
        name: str,
        version: int,
        at: float,
        actor: str,
        from_state: VersionState | None,
        to_state: VersionState,
    ) -> None:
        cur.execute(
            f"INSERT INTO key_version_events ({EVENT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",  # noqa: S608
            (name, version, at, actor, from_state.value if from_state else None, to_state.value),
        )

    def version_events(self, name: str) -> list[VersionEvent]:
        with self._tx() as cur:
            cur.execute(
                f"SELECT {EVENT_COLUMNS} FROM key_version_events WHERE key_name = %s "  # noqa: S608
                "ORDER BY id",
                (name,),
            )
            return [_rows.event_from_row(r) for r in cur.fetchall()]

    def get_key(self, name: str) -> KeyRecord | None:
        with self._tx() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(f"SELECT {KEY_COLUMNS} FROM keys WHERE name = %s", (name,))  # noqa: S608
            row = cur.fetchone()
            if row is None:
                return None
            cur.execute(
                f"SELECT {VERSION_COLUMNS} FROM key_versions WHERE key_name = %s ORDER BY version",  # noqa: S608
                (name,),
            )
            return _rows.key_from_row(row, cur.fetchall())

    def list_keys(self) -> list[KeyRecord]:
        with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(f"SELECT {KEY_COLUMNS} FROM keys ORDER BY name")  # noqa: S608
            keys = cur.fetchall()
            cur.execute(
                f"SELECT key_name, {VERSION_COLUMNS} FROM key_versions ORDER BY key_name, version"  # noqa: S608
            )
            versions: dict[str, list[Any]] = {}
            for v in cur.fetchall():
                versions.setdefault(v[0], []).append(v[1:])
        return [_rows.key_from_row(k, versions.get(k[0], [])) for k in keys]

    def add_primary_version(self, name: str, version: VersionRecord, rotated_at: float) -> None:
        try:
            with self._tx() as cur:
                cur.execute("SELECT 1 FROM keys WHERE name = %s FOR UPDATE", (name,))
                if cur.fetchone() is None:
                    raise NotFound("key not found")
                cur.execute("SELECT max(version) FROM key_versions WHERE key_name = %s", (name,))
                row = cur.fetchone()
                if row is None or row[0] is None or int(row[0]) + 1 != version.version:
                    raise AlreadyExists("key version already exists")
                cur.execute(
                    "SELECT version FROM key_versions WHERE key_name = %s AND state = %s",
                    (name, VersionState.PRIMARY.value),
                )
                old = cur.fetchone()
                if old is not None:
                    self._event(
                        cur,
                        name,
                        int(old[0]),
                        rotated_at,
                        version.state_changed_by,
                        VersionState.PRIMARY,
                        VersionState.ACTIVE,
                    )
                cur.execute(
                    "UPDATE key_versions SET state = %s, state_changed_at = %s, state_changed_by = %s, "
                    "retired_at = %s WHERE key_name = %s AND state = %s",
                    (
                        VersionState.ACTIVE.value,
                        rotated_at,
                        version.state_changed_by,
                        rotated_at,
                        name,
                        VersionState.PRIMARY.value,
                    ),
                )
                self._insert_version(cur, name, version)
                cur.execute("UPDATE keys SET last_rotated_at = %s WHERE name = %s", (rotated_at, name))
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists("key version already exists") from None

    def update_policy(self, name: str, policy: KeyPolicy, min_decryption_version: int) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE keys SET policy = %s, min_decryption_version = %s WHERE name = %s",
                (_rows.policy_json(policy), min_decryption_version, name),
            )
            if cur.rowcount == 0:
                raise NotFound("key not found")

    def advance_min_decryption_version(self, name: str, floor: int) -> bool:
        with self._tx() as cur:
            cur.execute(
                "UPDATE keys SET min_decryption_version = %s WHERE name = %s AND min_decryption_version < %s",
                (floor, name, floor),
            )
            return cur.rowcount > 0

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
        with self._tx() as cur:
            cur.execute(
                "SELECT state FROM key_versions WHERE key_name = %s AND version = %s FOR UPDATE",
                (name, version),
            )
            before = cur.fetchone()
            if before is None:
                raise NotFound("key version not found")
            cur.execute(
                "UPDATE key_versions SET state = %s, state_changed_at = %s, state_changed_by = %s, "
                "destroy_after = %s, wrapped_dek = CASE WHEN %s THEN NULL ELSE wrapped_dek END "
                "WHERE key_name = %s AND version = %s AND state = ANY(%s) "
                "AND (%s::double precision IS NULL OR destroy_after <= %s)",
                (to_state.value, at, by, keep, erase, name, version, states, due_by, due_by),
            )
            changed = cur.rowcount > 0
            if changed:
                self._event(cur, name, version, at, by, VersionState(before[0]), to_state)
        if changed and erase:
            # best effort: let PostgreSQL reclaim the dead row version that still holds the wrapped DEK
            with self._conn() as conn:
                conn.execute("VACUUM key_versions")
        return changed

    def reserve_encryptions(self, name: str, version: int, count: int, limit: int, at: float = 0.0) -> int:
        with self._tx() as cur:
            cur.execute(
                "SELECT encryptions, state FROM key_versions WHERE key_name = %s AND version = %s FOR UPDATE",
                (name, version),
            )
            row = cur.fetchone()
            if row is None:
                raise NotFound("key version not found")
            granted = _rows.reservation_grant(row, count, limit)
            if granted:
                cur.execute(
                    "UPDATE key_versions SET encryptions = encryptions + %s, "
                    "last_used_at = GREATEST(last_used_at, %s) WHERE key_name = %s AND version = %s",
                    (granted, at, name, version),
                )
            return granted

    def touch_versions(self, rows: Sequence[tuple[str, int, float]]) -> None:
        if not rows:
            return
        with self._tx() as cur:
            cur.executemany(
                "UPDATE key_versions SET last_used_at = GREATEST(last_used_at, %s) "
                "WHERE key_name = %s AND version = %s",
                [(at, name, version) for name, version, at in rows],
            )

    def wrapped_deks(self) -> list[tuple[str, int, str, bytes]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT v.key_name, v.version, k.purpose, v.wrapped_dek FROM key_versions v "
                "JOIN keys k ON k.name = v.key_name WHERE v.wrapped_dek IS NOT NULL "
                "ORDER BY v.key_name, v.version"
            )
            return [(str(r[0]), int(r[1]), str(r[2]), bytes(r[3])) for r in cur.fetchall()]

    def replace_wrapped_deks(self, rows: Sequence[tuple[str, int, bytes, bytes, int]]) -> int:
        changed = 0
        with self._tx() as cur:
            for name, version, old, new, kek_version in rows:
                cur.execute(
                    "UPDATE key_versions SET wrapped_dek = %s, kek_version = %s "
                    "WHERE key_name = %s AND version = %s AND wrapped_dek = %s",
                    (new, kek_version, name, version, old),
                )
                changed += cur.rowcount
        return changed

    # -- token vault ----------------------------------------------------------------------------

    def insert_tokens(self, records: Sequence[TokenRecord]) -> list[bool]:
        if not records:
            return []
        out: list[bool] = []
        with self._tx() as cur:
            cur.executemany(
                f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "  # noqa: S608
                "ON CONFLICT DO NOTHING RETURNING 1",
                [_rows.token_params(r) for r in records],
                returning=True,
            )
            while True:
                out.append(cur.fetchone() is not None)
                if not cur.nextset():
                    break
        return out

    def find_tokens(self, key_name: str, tokens: Sequence[str]) -> dict[str, TokenRecord]:
        with self._tx() as cur:
            cur.execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE key_name = %s AND token = ANY(%s)",  # noqa: S608
                (key_name, list(tokens)),
            )
            return {r.token: r for r in map(_rows.token_from_row, cur.fetchall())}

    def find_fingerprints(self, key_name: str, fingerprints: Sequence[bytes]) -> dict[bytes, TokenRecord]:
        with self._tx() as cur:
            cur.execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE key_name = %s AND fingerprint = ANY(%s)",  # noqa: S608
                (key_name, list(fingerprints)),
            )
            found = map(_rows.token_from_row, cur.fetchall())
            return {r.fingerprint: r for r in found if r.fingerprint is not None}

    def tokens_below_version(self, key_name: str, version: int, limit: int) -> list[TokenRecord]:
        with self._tx() as cur:
            cur.execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE key_name = %s AND key_version < %s "  # noqa: S608
                "ORDER BY token LIMIT %s",
                (key_name, version, limit),
            )
            return [_rows.token_from_row(r) for r in cur.fetchall()]

    def update_token_ciphertexts(self, rows: Sequence[tuple[str, str, int, bytes, int]]) -> int:
        changed = 0
        with self._tx() as cur:
            for key_name, token, old_version, ciphertext, new_version in rows:
                cur.execute(
                    "UPDATE tokens SET ciphertext = %s, key_version = %s "
                    "WHERE key_name = %s AND token = %s AND key_version = %s",
                    (ciphertext, new_version, key_name, token, old_version),
                )
                changed += cur.rowcount
        return changed

    def purge_expired_tokens(self, now: float) -> int:
        with self._tx() as cur:
            cur.execute("DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= %s", (now,))
            return int(cur.rowcount)

    # -- jobs -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def job_lock(self, job: str) -> Iterator[bool]:
        """A session advisory lock per (database, schema, job), held while the job runs."""
        with self._conn() as conn:
            row = conn.execute(f"SELECT pg_try_advisory_lock({_LOCK_ID})", (job,)).fetchone()
            acquired = bool(row and row[0])
            try:
                yield acquired
            finally:
                if acquired:
                    conn.execute(f"SELECT pg_advisory_unlock({_LOCK_ID})", (job,))

    def close(self) -> None:
        self._pool.close()
