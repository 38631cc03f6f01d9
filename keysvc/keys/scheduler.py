"""The in-server scheduler: one tick every ``interval_seconds`` on every replica.

Each tick flushes this replica's decrypt usage, then tries the store's job lock
(PostgreSQL advisory lock; an ``flock`` next to the SQLite file). The replica that gets
it runs the jobs — due rotations, keep-last-K floors, retention (schedule and destroy)
and expired-token purge — and the others skip this tick. The lock only avoids duplicate
work: correctness under races comes from the store's compare-and-swap writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from keysvc.errors import KeysvcError
from keysvc.keys import lifecycle
from keysvc.keys.keyring import DEFAULT_DESTROY_GRACE_SECONDS, Keyring
from keysvc.store.base import Store

log = logging.getLogger(__name__)

JOB = "scheduler"


@dataclass(frozen=True)
class TickReport:
    leader: bool
    at: float = 0.0
    rotated: list[str] = field(default_factory=list)
    floors: dict[str, int] = field(default_factory=dict)
    retention: list[lifecycle.RetentionAction] = field(default_factory=list)
    purged_tokens: int = 0


class Scheduler:
    def __init__(
        self,
        keyring: Keyring,
        store: Store,
        *,
        interval_seconds: float = 30.0,
        in_use_seconds: float = lifecycle.DEFAULT_IN_USE_SECONDS,
        destroy_grace_seconds: float = DEFAULT_DESTROY_GRACE_SECONDS,
        purge_tokens: bool = True,
        clock: Callable[[], float] = time.time,
        on_run: Callable[[str, str, float], None] | None = None,
    ) -> None:
        """``on_run(job, outcome, seconds)`` is told of every tick: ``ok``, ``skipped`` (another
        replica holds the lock) or ``error`` (e.g. ``Metrics.job_run``)."""
        self._keyring = keyring
        self._store = store
        self._interval = interval_seconds
        self._in_use = in_use_seconds
        self._grace = destroy_grace_seconds
        self._purge = purge_tokens
        self._clock = clock
        self._on_run = on_run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keysvc-scheduler", daemon=True)
        self.last: TickReport | None = None

    def tick(self) -> TickReport:
        """One scheduler pass at ``clock()``."""
        self._keyring.flush_usage()
        with self._store.job_lock(JOB) as leader:
            if not leader:
                return TickReport(leader=False)
            now = self._clock()
            rotated = lifecycle.rotate_due(self._keyring, self._store, now)
            floors = lifecycle.advance_floors(self._keyring, self._store, now, self._in_use)
            retention = lifecycle.apply_retention(self._keyring, self._store, now, self._grace)
            purged = self._store.purge_expired_tokens(now) if self._purge else 0
        report = TickReport(True, now, rotated, floors, retention, purged)
        if rotated or floors or retention or purged:
            log.info(
                "scheduler ran",
                extra={
                    "rotated": len(rotated),
                    "floors": len(floors),
                    "retention": len(retention),
                    "purged_tokens": purged,
                },
            )
        self.last = report
        return report

    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            started = time.perf_counter()
            outcome = "error"
            try:
                outcome = "ok" if self.tick().leader else "skipped"
            except KeysvcError as exc:
                log.warning("scheduler tick failed", extra={"reason": exc.reason})
            except Exception as exc:  # never let the thread die; the text may hold data, so type only
                log.error("scheduler tick failed", extra={"error_type": type(exc).__name__})
            if self._on_run is not None:
                self._on_run(JOB, outcome, time.perf_counter() - started)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
