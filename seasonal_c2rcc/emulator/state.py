"""Persistent emulator state in one SQLite file under ``state_dir``.

Orders, jobs, tokens, the quota ledger, counters and the accounting log live here, so a restart
with the same ``--state-dir`` continues where the previous process stopped. Products are not
stored: the catalogue regenerates them deterministically. One connection guarded by a lock keeps
it simple and safe for the threaded server; SQLite's WAL journal makes every commit durable and
atomic, which is what "written atomically" needs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    access TEXT PRIMARY KEY, refresh TEXT NOT NULL, username TEXT NOT NULL,
    issued REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_refresh ON tokens(refresh);
CREATE TABLE IF NOT EXISTS orders (
    download_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, dataset_id TEXT NOT NULL,
    location TEXT NOT NULL, username TEXT NOT NULL, time REAL NOT NULL, polls INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, username TEXT NOT NULL,
    created REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_user ON jobs(username, seq);
CREATE TABLE IF NOT EXISTS quota (
    id INTEGER PRIMARY KEY AUTOINCREMENT, service TEXT NOT NULL, username TEXT NOT NULL,
    key TEXT NOT NULL, time REAL NOT NULL);
CREATE INDEX IF NOT EXISTS quota_lookup ON quota(service, username, time);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, time REAL NOT NULL,
    data TEXT NOT NULL);
"""


class State:
    """Thread-safe access to the emulator's SQLite database."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.jobs_dir = self.state_dir / "jobs"
        self.jobs_dir.mkdir(exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.state_dir / "emulator.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block atomically (BEGIN IMMEDIATE ... COMMIT/ROLLBACK) under the state lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return all rows."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def next_counter(self, db: sqlite3.Connection, name: str) -> int:
        """Increment and return a persistent counter (call inside ``transaction``)."""
        db.execute(
            "INSERT INTO counters(name, value) VALUES(?, 1) "
            "ON CONFLICT(name) DO UPDATE SET value = value + 1",
            (name,),
        )
        return int(db.execute("SELECT value FROM counters WHERE name=?", (name,)).fetchone()[0])

    # --- accounting -------------------------------------------------------------------------

    def record(self, kind: str, time: float, /, **data: Any) -> None:
        """Append one accounting event."""
        with self._lock:
            self._db.execute(
                "INSERT INTO events(kind, time, data) VALUES(?, ?, ?)",
                (kind, time, json.dumps(data, default=str)),
            )

    def events(self) -> list[tuple[str, float, dict[str, Any]]]:
        """All accounting events in insertion order."""
        rows = self.query("SELECT kind, time, data FROM events ORDER BY id")
        return [(k, t, json.loads(d)) for k, t, d in rows]

    # --- jobs -------------------------------------------------------------------------------

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        """The stored job record, or None."""
        rows = self.query("SELECT data FROM jobs WHERE job_id=?", (job_id,))
        return json.loads(rows[0][0]) if rows else None

    def put_job(self, job: dict[str, Any]) -> None:
        """Insert or replace a job record (its ``seq`` must be set)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO jobs(job_id, seq, username, created, data) "
                "VALUES(?, ?, ?, ?, ?)",
                (job["job_id"], job["seq"], job["username"], job["created"], json.dumps(job)),
            )

    def list_jobs(self, username: str, limit: int, offset: int) -> list[dict[str, Any]]:
        """A page of the user's jobs, newest first."""
        rows = self.query(
            "SELECT data FROM jobs WHERE username=? ORDER BY seq DESC LIMIT ? OFFSET ?",
            (username, limit, offset),
        )
        return [json.loads(r[0]) for r in rows]
