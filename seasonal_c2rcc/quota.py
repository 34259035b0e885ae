"""Cross-process quota ledger for EOCanvas submissions and HDA orders.

Every Snakemake job that is about to spend a remote unit (an EOCanvas job or an HDA order) first
calls :meth:`QuotaLedger.acquire`. The ledger is one SQLite file (WAL mode) under the results state
folder; every decision is taken inside a ``BEGIN IMMEDIATE`` transaction, so at most one process
decides at a time and the recorded timestamps can never exceed a limit in any rolling window, however
many job processes race.

Windows are *rolling*, as WEkEO's: an EOCanvas slot is given back one hour after the submission that
used it (help centre, "each is given back 1 h after launch"); the monthly window is 30 days. Both are
divided by ``time_scale`` so that tests and the emulator can run an "hour" in a few seconds.

Boundary convention: an event at ``t`` occupies its window for ``t <= now < t + W``; the slot is free
again at exactly ``t + W``.

Caveat on shared file systems: SQLite's locking relies on POSIX ``fcntl`` locks, which NFS (v4, or v3
with a working ``lockd``) and Lustre/GPFS/BeeGFS with locking enabled honour, but some mounts (NFS
with ``nolock``, older CIFS, certain FUSE file systems) silently ignore; WAL mode additionally needs
shared memory and therefore **all processes on one host**. For cluster runs keep remote submissions
on the head node (``localrules``, as the Snakefile does for network rules) or set ``journal_mode``
to ``DELETE`` (``QuotaLedger(..., wal=False)``), which works across hosts on a file system with
working ``fcntl`` locks.
"""

from __future__ import annotations

import math
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError, MonthlyQuotaExhausted, QuotaError
from .paths import STATE_DIR

HOUR_S = 3600.0
MONTH_S = 30 * 86400.0

SERVICES = ("eocanvas", "hda_order")

#: A waiter that has not refreshed its queue entry for this many seconds (scaled) is presumed dead
#: (killed job) and no longer holds its place in the queue.
_STALE_WAITER_S = 120.0

#: How often a submission waiting for another one's reply looks at the lock again (real seconds).
_SUBMISSION_POLL_S = 0.25

T = TypeVar("T")


@dataclass(frozen=True)
class QuotaLimits:
    """Quota limits and the time scale of their rolling windows.

    ``time_scale`` > 1 shrinks both windows (3600 s and 30 days) by that factor; the emulator uses the
    same convention, so a ledger and an emulator started with the same ``time_scale`` agree.
    ``eocanvas_per_month`` may be ``None`` (no monthly limit).
    """

    eocanvas_per_hour: int = 10
    eocanvas_per_month: int | None = 100
    hda_orders_per_hour: int = 100
    time_scale: float = 1.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> QuotaLimits:
        """From the validated ``quota`` config section."""
        return cls(
            eocanvas_per_hour=section["eocanvas_per_hour"],
            eocanvas_per_month=section["eocanvas_per_month"],
            hda_orders_per_hour=section["hda_orders_per_hour"],
            time_scale=section["time_scale"],
        )

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ConfigError(f"quota time_scale must be > 0, got {self.time_scale}")
        for name in ("eocanvas_per_hour", "hda_orders_per_hour"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"quota {name} must be >= 1, got {getattr(self, name)}")
        if self.eocanvas_per_month is not None and self.eocanvas_per_month < 1:
            raise ConfigError(f"quota eocanvas_per_month must be >= 1, got {self.eocanvas_per_month}")

    @property
    def hour_window(self) -> float:
        """Length of the hourly window in (scaled) seconds."""
        return HOUR_S / self.time_scale

    @property
    def month_window(self) -> float:
        """Length of the monthly window in (scaled) seconds."""
        return MONTH_S / self.time_scale

    def per_hour(self, service: str) -> int:
        """Hourly limit of ``service``."""
        _check_service(service)
        return self.eocanvas_per_hour if service == "eocanvas" else self.hda_orders_per_hour

    def per_month(self, service: str) -> int | None:
        """Monthly limit of ``service`` (``None``: no monthly window)."""
        _check_service(service)
        return self.eocanvas_per_month if service == "eocanvas" else None


@dataclass(frozen=True)
class Reservation:
    """One acquired slot. ``counted`` is False when an HDA re-order of an item ordered within the
    window reused the earlier slot (WEkEO does not count it again)."""

    service: str
    key: str
    at: float
    row_id: int | None
    counted: bool = True


@dataclass(frozen=True)
class OpenSubmission:
    """A submission whose outcome is not known yet: ``key``'s POST started at ``intent_at``."""

    service: str
    key: str
    intent_at: float
    pid: int


@dataclass(frozen=True)
class QuotaUsage:
    """Snapshot of one service's windows at the ledger's current time."""

    service: str
    used_hour: int
    used_month: int
    limit_hour: int
    limit_month: int | None
    next_free_at: float
    blocked_until: float | None
    waiting: int


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise ConfigError(f"unknown quota service {service!r}; expected one of {SERVICES}")


def fmt_utc(t: float) -> str:
    """``t`` (epoch seconds) as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    t REAL NOT NULL,
    pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_service_t ON events(service, t);
CREATE INDEX IF NOT EXISTS events_service_key ON events(service, key);
CREATE TABLE IF NOT EXISTS blocks (service TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS open_submissions (
    service TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    intent_at REAL NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS resolved_submissions (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    intent_at REAL NOT NULL,
    job_id TEXT,
    resolved_at REAL NOT NULL,
    PRIMARY KEY (service, key, intent_at)
);
CREATE TABLE IF NOT EXISTS waiters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    since REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""


def ledger_path(section: Mapping[str, Any], state_dir: str | os.PathLike[str] = STATE_DIR) -> Path:
    """The shared ledger of the validated ``quota`` section: ``quota.ledger`` (``~`` expanded; one
    ledger per account across campaigns), else ``<state_dir>/quota.sqlite`` of the campaign. Every
    process that orders or submits must open the same file, so this is the only place it is named."""
    if section.get("ledger"):
        return Path(os.path.expanduser(str(section["ledger"])))
    return Path(state_dir) / "quota.sqlite"


class QuotaLedger:
    """SQLite-backed ledger of remote submissions shared by all job processes.

    ``clock`` returns epoch seconds and ``sleep`` blocks for a number of seconds; both are injectable
    so that tests can drive the ledger with a fake clock. ``poll`` caps a single sleep (scaled by
    ``time_scale``) so a waiter notices released slots and lifted blocks.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        limits: QuotaLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        poll: float = 30.0,
        wal: bool = True,
    ) -> None:
        self.path = Path(path)
        self.limits = limits or QuotaLimits()
        self.clock = clock
        self.sleep = sleep
        self.poll = poll / self.limits.time_scale
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; timeout is SQLite's busy wait.
        self._db = sqlite3.connect(str(self.path), timeout=120.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=" + ("WAL" if wal else "DELETE"))
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> QuotaLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ---------------------------------------------------------------------------

    def _txn(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``fn(db, now)`` inside ``BEGIN IMMEDIATE`` (the write lock is taken up front, so two
        processes can never both read "9/10 used" and both insert)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            out = fn(db, self.clock())
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return out

    # -- window arithmetic (inside a transaction) -----------------------------------------------

    def _times(self, db: sqlite3.Connection, service: str, since: float) -> list[float]:
        rows = db.execute(
            "SELECT t FROM events WHERE service=? AND t>? ORDER BY t", (service, since)
        ).fetchall()
        return [r[0] for r in rows]

    def _state(self, db: sqlite3.Connection, service: str, now: float) -> dict[str, Any]:
        lim = self.limits
        hw, mw = lim.hour_window, lim.month_window
        month_limit = lim.per_month(service)
        horizon = mw if month_limit is not None else hw
        # Events older than every window are no longer needed (and keep the table small).
        db.execute("DELETE FROM events WHERE service=? AND t<=?", (service, now - horizon))
        times = self._times(db, service, now - horizon)
        hour = [t for t in times if t > now - hw]
        month = times if month_limit is not None else []
        row = db.execute("SELECT until FROM blocks WHERE service=?", (service,)).fetchone()
        blocked = row[0] if row and row[0] > now else None
        return {"hour": hour, "month": month, "blocked": blocked, "month_limit": month_limit}

    def _slot_time(self, st: dict[str, Any], service: str, now: float, ahead: int) -> float:
        """Earliest time at which the ``ahead``-th next submission (0 = the next one) can start,
        counting only the hourly window and blocks (the monthly window is handled separately)."""
        hour, limit = st["hour"], self.limits.per_hour(service)
        idx = len(hour) - limit + ahead
        t = now if idx < 0 else hour[idx] + self.limits.hour_window
        if idx >= len(hour):
            # More waiters ahead than events in the window: they free up one window later.
            t = now + self.limits.hour_window * (1 + idx // max(limit, 1))
        if st["blocked"] is not None:
            t = max(t, st["blocked"])
        return max(t, now)

    def _month_resume(self, st: dict[str, Any], now: float, ahead: int) -> float | None:
        """When the monthly window has room for the ``ahead``-th next submission (``None``: now)."""
        limit = st["month_limit"]
        if limit is None:
            return None
        idx = len(st["month"]) - limit + ahead
        if idx < 0:
            return None
        if idx < len(st["month"]):
            return st["month"][idx] + self.limits.month_window
        return now + self.limits.month_window

    # -- public API -----------------------------------------------------------------------------

    def acquire(
        self,
        service: str,
        key: str,
        *,
        on_wait: Callable[[float, str], None] | None = None,
        max_wait: float | None = None,
    ) -> Reservation:
        """Block until ``service`` has room in every window, then record ``(service, key, now)``.

        Waiters are served in arrival order (a queue table with heartbeats; a waiter that stops
        refreshing its entry, e.g. a killed job, loses its place). While waiting, ``on_wait(seconds,
        message)`` is called before each sleep with the expected wait and a human-readable line such as
        ``waiting for an EOCanvas slot; starts at 2026-11-29 14:05:12 UTC (10/10 used this hour,
        57/100 this month)``.

        Raises :class:`MonthlyQuotaExhausted` (with ``resume_at``) instead of waiting when the monthly
        window is full and frees later than one hourly window from now, and :class:`QuotaError` when
        the wait would exceed ``max_wait`` seconds. For ``hda_order``, a key already ordered within the
        hourly window returns a non-counted reservation immediately (WEkEO does not count re-orders).
        """
        _check_service(service)
        waiter_id: int | None = None
        started = self.clock()
        try:
            while True:
                wid = waiter_id
                kind, waiter_id, *rest = self._txn(
                    lambda db, now, wid=wid: self._try(db, now, service, key, wid)
                )
                if kind == "ok":
                    return rest[0]
                if kind == "month":
                    resume_at, msg = rest
                    raise MonthlyQuotaExhausted(msg, resume_at=resume_at)
                start_at, msg, now = rest
                if max_wait is not None and start_at - started > max_wait:
                    raise QuotaError(
                        f"{msg}; giving up after max_wait={max_wait:.0f} s", resume_at=start_at
                    )
                wait = max(start_at - now, 0.0)
                if on_wait is not None:
                    on_wait(wait, msg)
                # Sleep in bounded steps: a release or an earlier waiter's exit may free us sooner,
                # and the queue heartbeat must stay fresh.
                step = min(wait, self.poll) if wait > 0 else self.poll / 100
                self.sleep(max(step, 1e-4))
        finally:
            if waiter_id is not None:
                self._txn(lambda db, now: db.execute("DELETE FROM waiters WHERE id=?", (waiter_id,)))

    def _try(
        self, db: sqlite3.Connection, now: float, service: str, key: str, waiter_id: int | None
    ) -> tuple[Any, ...]:
        lim = self.limits
        if service == "hda_order":
            row = db.execute(
                "SELECT id, t FROM events WHERE service=? AND key=? AND t>? ORDER BY t DESC LIMIT 1",
                (service, key, now - lim.hour_window),
            ).fetchone()
            if row is not None:
                return ("ok", waiter_id, Reservation(service, key, row[1], None, counted=False))
        st = self._state(db, service, now)
        stale = now - _STALE_WAITER_S / lim.time_scale
        db.execute("DELETE FROM waiters WHERE service=? AND heartbeat<?", (service, stale))
        if waiter_id is None:
            waiter_id = db.execute(
                "INSERT INTO waiters(service, key, since, heartbeat) VALUES (?,?,?,?)",
                (service, key, now, now),
            ).lastrowid
        elif db.execute("UPDATE waiters SET heartbeat=? WHERE id=?", (now, waiter_id)).rowcount == 0:
            # Our entry was reaped as stale (we slept longer than the stale limit): queue again.
            waiter_id = db.execute(
                "INSERT INTO waiters(service, key, since, heartbeat) VALUES (?,?,?,?)",
                (service, key, now, now),
            ).lastrowid
        ahead = db.execute(
            "SELECT COUNT(*) FROM waiters WHERE service=? AND id<?", (service, waiter_id)
        ).fetchone()[0]
        month_at = self._month_resume(st, now, ahead)
        start_at = self._slot_time(st, service, now, ahead)
        msg = self._message(service, st, max(start_at, month_at or 0.0), ahead)
        if month_at is not None and month_at - now > lim.hour_window:
            used = len(st["month"])
            m = (
                f"monthly {_label(service)} quota used up ({used}/{st['month_limit']} in the last "
                f"{lim.month_window / 86400:.4g} days); no new submission before "
                f"{fmt_utc(month_at)}. Stop here and run the workflow again after that time; "
                "finished work is kept."
            )
            return ("month", waiter_id, month_at, m)
        blocked = st["blocked"]
        if blocked is not None and blocked - now > lim.hour_window:
            # The server refused with a reset beyond the hourly window: its monthly window is full
            # (quota spent outside this ledger, e.g. a notebook on the same account). Stop cleanly.
            m = (
                f"{_label(service)} refused submissions until {fmt_utc(blocked)} (quota reset "
                "sent by the server; the monthly allowance is probably used up, possibly by "
                "other tools on the same account). Stop here and run the workflow again after "
                "that time; finished work is kept."
            )
            return ("month", waiter_id, blocked, m)
        if month_at is not None:
            start_at = max(start_at, month_at)
        # start_at already accounts for the slots the waiters ahead of us will take, so a later
        # arrival may go first only if there is room for everyone ahead as well.
        if start_at <= now:
            rid = db.execute(
                "INSERT INTO events(service, key, t, pid) VALUES (?,?,?,?)",
                (service, key, now, os.getpid()),
            ).lastrowid
            db.execute("DELETE FROM waiters WHERE id=?", (waiter_id,))
            return ("ok", None, Reservation(service, key, now, rid))
        return ("wait", waiter_id, start_at, msg, now)

    def _message(self, service: str, st: dict[str, Any], start_at: float, ahead: int) -> str:
        lim = self.limits
        parts = [f"{len(st['hour'])}/{lim.per_hour(service)} used this hour"]
        if st["month_limit"] is not None:
            parts.append(f"{len(st['month'])}/{st['month_limit']} this month")
        if ahead:
            parts.append(f"{ahead} ahead in the queue")
        if st["blocked"] is not None:
            parts.append(f"server asked to wait until {fmt_utc(st['blocked'])}")
        return (
            f"waiting for an {_label(service)} slot; starts at {fmt_utc(start_at)} "
            f"({', '.join(parts)})"
        )

    def confirm(self, res: Reservation, at: float | None = None) -> None:
        """Move a reservation's timestamp to ``at`` (default: now), normally right after the server
        accepted the request. The server timestamps a submission when it receives it, which is after
        ``acquire`` recorded it; confirming with the reply time keeps the ledger's window at least as
        long as the server's, so the next submission is not rejected at the window edge."""
        if not res.counted or res.row_id is None:
            return
        self._txn(
            lambda db, now: db.execute(
                "UPDATE events SET t=MAX(t, ?) WHERE id=?",
                (now if at is None else at, res.row_id),
            )
        )

    def release(self, res: Reservation) -> None:
        """Give a slot back: the request never reached the server, or the server refused it (429)."""
        if not res.counted or res.row_id is None:
            return
        self._txn(lambda db, now: db.execute("DELETE FROM events WHERE id=?", (res.row_id,)))

    def block(self, service: str, until: float) -> None:
        """Nobody submits to ``service`` before ``until`` (epoch s), e.g. a 429's ``X-Quota-Reset``.
        An earlier block never shortens a later one."""
        _check_service(service)
        self._txn(
            lambda db, now: db.execute(
                "INSERT INTO blocks(service, until) VALUES (?, ?) "
                "ON CONFLICT(service) DO UPDATE SET until=MAX(until, excluded.until)",
                (service, float(until)),
            )
        )

    def usage(self, service: str) -> QuotaUsage:
        """Current use of ``service``'s windows and when the next submission could start."""
        _check_service(service)

        def read(db: sqlite3.Connection, now: float) -> QuotaUsage:
            st = self._state(db, service, now)
            stale = now - _STALE_WAITER_S / self.limits.time_scale
            waiting = db.execute(
                "SELECT COUNT(*) FROM waiters WHERE service=? AND heartbeat>=?", (service, stale)
            ).fetchone()[0]
            nxt = self._slot_time(st, service, now, 0)
            month_at = self._month_resume(st, now, 0)
            if month_at is not None:
                nxt = max(nxt, month_at)
            return QuotaUsage(
                service=service,
                used_hour=len(st["hour"]),
                used_month=len(st["month"]),
                limit_hour=self.limits.per_hour(service),
                limit_month=st["month_limit"],
                next_free_at=nxt,
                blocked_until=st["blocked"],
                waiting=waiting,
            )

        return self._txn(read)

    def events(self, service: str) -> list[tuple[str, float]]:
        """All recorded ``(key, time)`` events of ``service`` still inside a window, oldest first."""
        _check_service(service)
        rows = self._db.execute(
            "SELECT key, t FROM events WHERE service=? ORDER BY t, id", (service,)
        ).fetchall()
        return [(k, t) for k, t in rows]

    def paced_call(
        self,
        service: str,
        key: str,
        fn: Callable[[], T],
        *,
        quota_reset: Callable[[BaseException], float | None | bool],
        on_wait: Callable[[float, str], None] | None = None,
        max_wait: float | None = None,
    ) -> T:
        """Acquire a slot, call ``fn()`` (one POST), and handle quota refusals.

        ``quota_reset(exc)`` classifies an exception raised by ``fn``: ``False`` means "not a quota
        refusal" (the exception propagates and the slot stays used, because the request may have
        reached the server: never risk a second submission); ``True`` or ``None`` means "429 without a
        reset time"; a float is the server's reset time (epoch s, e.g. ``X-Quota-Reset`` / 1000).
        A quota refusal gives the slot back, blocks the service until the reset time (or, without
        one, until the ledger's next free slot but at least one slot interval, hour / limit), and
        tries again: a 429 is never a failure. On success the reservation is confirmed with the
        reply time (:meth:`confirm`).
        """
        while True:
            res = self.acquire(service, key, on_wait=on_wait, max_wait=max_wait)
            try:
                out = fn()
            except BaseException as exc:
                reset = quota_reset(exc) if isinstance(exc, Exception) else False
                if reset is False:
                    raise
                self.release(res)
                now = self.clock()
                if isinstance(reset, bool) or reset is None:
                    interval = self.limits.hour_window / self.limits.per_hour(service)
                    reset = max(self.usage(service).next_free_at, now + interval)
                self.block(service, float(reset))
                if on_wait is not None:
                    on_wait(
                        max(float(reset) - now, 0.0),
                        f"{_label(service)} refused the request (quota); "
                        f"retrying after {fmt_utc(float(reset))}",
                    )
                continue
            self.confirm(res)
            return out


    # -- one submission with an unknown outcome at a time ------------------------------------
    #
    # The real EOCanvas job listing carries only id, process, status and times: nothing in it says
    # which of our records a job belongs to. So a lost reply is made unambiguous by construction:
    # a submission holds ``open_submissions[service]`` from its intent until its outcome is known
    # (the reply arrived, the service refused it, or a reconciliation found its job or found
    # none). While it is held nobody else submits, so the one unowned job created in that window
    # is the one.

    def open_submission(
        self,
        service: str,
        key: str,
        *,
        settle: float,
        intent_at: float | None = None,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> OpenSubmission | None:
        """Take the submission lock of ``service`` for ``key``, or say what must be settled first.

        Returns None when the lock is taken (intent recorded at ``intent_at`` or now): submit,
        then :meth:`resolve_submission`. Returns the :class:`OpenSubmission` to reconcile first
        when it is ``key``'s own (an earlier attempt lost its reply) or another key's that is
        older than ``settle`` seconds (its POST is over, its reply was lost and its process has
        not settled it). Waits, calling ``on_wait``, while another key's POST may still be in
        flight.
        """
        _check_service(service)

        def step(db: sqlite3.Connection, now: float) -> tuple[str, Any]:
            row = db.execute(
                "SELECT key, intent_at, pid FROM open_submissions WHERE service=?", (service,)
            ).fetchone()
            if row is None:
                at = now if intent_at is None else intent_at
                db.execute(
                    "INSERT INTO open_submissions(service, key, intent_at, pid) VALUES (?,?,?,?)",
                    (service, key, at, os.getpid()),
                )
                return ("taken", None)
            other = OpenSubmission(service, row[0], row[1], row[2])
            if other.key == key or now - other.intent_at >= settle:
                return ("settle", other)
            return ("wait", other.intent_at + settle - now)

        told = False
        while True:
            kind, value = self._txn(step)
            if kind == "taken":
                return None
            if kind == "settle":
                return value
            if on_wait is not None and not told:
                on_wait(value, "waiting for another submission's reply (one at a time per account)")
                told = True
            # A POST's reply normally comes within a second: look again soon (SQLite reads are
            # cheap), not after the quota poll interval.
            self.sleep(max(min(value, self.poll, _SUBMISSION_POLL_S), 1e-3))

    def resolve_submission(
        self, service: str, key: str, intent_at: float, job_id: str | None
    ) -> None:
        """Record the outcome of ``key``'s submission made at ``intent_at`` (its job, or None
        when none was created) and release the lock if that submission held it."""
        _check_service(service)

        def write(db: sqlite3.Connection, now: float) -> None:
            db.execute(
                "INSERT OR REPLACE INTO resolved_submissions(service, key, intent_at, job_id, "
                "resolved_at) VALUES (?,?,?,?,?)",
                (service, key, float(intent_at), job_id, now),
            )
            db.execute(
                "DELETE FROM open_submissions WHERE service=? AND key=? AND intent_at=?",
                (service, key, float(intent_at)),
            )

        self._txn(write)

    def submission_outcome(self, service: str, key: str, intent_at: float) -> tuple[bool, str | None]:
        """``(known, job_id)`` of ``key``'s submission made at ``intent_at``."""
        row = self._db.execute(
            "SELECT job_id FROM resolved_submissions WHERE service=? AND key=? AND intent_at=?",
            (service, key, float(intent_at)),
        ).fetchone()
        return (row is not None, row[0] if row else None)

    def open_submissions(self, service: str) -> list[OpenSubmission]:
        """The submission whose outcome is unknown (at most one per service)."""
        rows = self._db.execute(
            "SELECT key, intent_at, pid FROM open_submissions WHERE service=?", (service,)
        ).fetchall()
        return [OpenSubmission(service, *r) for r in rows]

    def resolved_job_ids(self, service: str) -> dict[str, str]:
        """Every job id a reconciliation gave to a record: ``{job_id: key}``."""
        rows = self._db.execute(
            "SELECT job_id, key FROM resolved_submissions WHERE service=? AND job_id IS NOT NULL",
            (service,),
        ).fetchall()
        return {j: k for j, k in rows}


def quota_reset_of(exc: BaseException) -> float | None | bool:
    """``quota_reset`` classifier for :meth:`QuotaLedger.paced_call` around the project's WEkEO
    clients, which raise :class:`QuotaError` (``resume_at`` from ``X-Quota-Reset``) on HTTP 429:
    the reset time, ``None`` for a 429 without one, ``False`` for anything else."""
    if isinstance(exc, QuotaError):
        return exc.resume_at
    return False


def _label(service: str) -> str:
    return "EOCanvas" if service == "eocanvas" else "HDA order"


def max_in_window(times: list[float], window: float) -> int:
    """Largest number of ``times`` inside any half-open window ``[t, t + window)``; used by tests and
    benchmarks to check that a run never exceeded a limit."""
    ts = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ts):
        while ts[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def ideal_makespan(n_jobs: int, limits: QuotaLimits) -> float:
    """Shortest possible time from the first to the last of ``n_jobs`` EOCanvas submissions under the
    hourly and monthly windows (all slots free at the start): bursts of ``per_hour`` every hour."""
    if n_jobs <= 0:
        return 0.0
    hour = limits.eocanvas_per_hour
    t = math.floor((n_jobs - 1) / hour) * limits.hour_window
    month = limits.eocanvas_per_month
    if month is not None:
        t = max(t, math.floor((n_jobs - 1) / month) * limits.month_window)
    return t
