"""``seasonal-c2rcc remote-jobs``: remote EOCanvas jobs no job record owns, and what to do with them.

A job no record owns was created by a submission whose reply was lost and that has not been
reconciled yet, or by another tool on the same account. Reconciliation normally settles the first
kind by itself (``docs/reliability.md``); this command shows them, lets you give one to a record
(``--adopt KEY JOB_ID``) or dismiss it on the service (``--dismiss JOB_ID``, OGC ``DELETE
/jobs/{id}``), so nothing ever needs a hand edit of the records.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import read_json, write_json_atomic
from .backends.decisions import owned_job_ids, parse_time
from .errors import BackendError, ConfigError


@dataclass(frozen=True)
class UnownedJob:
    """A remote job no record owns; ``likely_for``: the record whose lost submission it fits."""

    job_id: str
    status: str | None
    created: str | None
    likely_for: str | None


def _records(state_dir: Path) -> list[dict[str, Any]]:
    out = []
    for f in sorted((state_dir / "jobs").glob("*.json")):
        try:
            out.append(read_json(f))
        except (OSError, ValueError) as exc:
            raise BackendError(f"{f}: job record unreadable ({exc})") from exc
    return out


def unowned_jobs(
    canvas: Any, state_dir: Path, ledger: Any, *, skew: float = 30.0
) -> list[UnownedJob]:
    """The service's jobs that no record (nor a settled reconciliation) owns, newest first."""
    records = _records(state_dir)
    owned = set(owned_job_ids(records))
    detached = {str(r.get("key")): set(r.get("detached") or []) for r in records}
    owned |= {
        j for j, k in ledger.resolved_job_ids("eocanvas").items() if j not in detached.get(k, set())
    }
    pending = [(str(r["key"]), float(r["intent_at"])) for r in records
               if r.get("state") == "submitting" and r.get("intent_at") is not None]  # fmt: skip
    pending += [(o.key, o.intent_at) for o in ledger.open_submissions("eocanvas")]
    out = []
    for job in canvas.jobs():
        if job.job_id in owned:
            continue
        created = parse_time(job.created)
        fits = sorted(
            ((created - at, key) for key, at in set(pending) if created is not None
             and created >= at - skew),
        )  # fmt: skip
        out.append(UnownedJob(job.job_id, job.status, job.created, fits[0][1] if fits else None))
    return out


def adopt(state_dir: Path, ledger: Any, key: str, job_id: str) -> str:
    """Give remote job ``job_id`` to record ``key`` (which must not hold a job already)."""
    path = state_dir / "jobs" / f"{key}.json"
    if not path.exists():
        raise ConfigError(f"no job record {path}; `seasonal-c2rcc remote-jobs` lists the keys")
    with open(path.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackendError(
                f"job {key} is being worked on by another process; try later"
            ) from None
        rec = read_json(path)
        if rec.get("remote_job_id") and rec.get("state") != "submitting":
            raise ConfigError(
                f"job {key} already holds remote job {rec['remote_job_id']} (state "
                f"{rec.get('state')}); dismiss {job_id} instead if it is a duplicate"
            )
        for o in ledger.open_submissions("eocanvas"):
            if o.key == key:
                ledger.resolve_submission("eocanvas", key, o.intent_at, job_id)
        if rec.get("state") == "submitting" and rec.get("intent_at") is not None:
            ledger.resolve_submission("eocanvas", key, float(rec["intent_at"]), job_id)
        rec.setdefault("attempts", []).append(
            {"remote_job_id": job_id, "submitted_at": None, "status": None, "adopted": "by hand"}
        )
        rec.update(state="submitted", remote_job_id=job_id, error=None)
        write_json_atomic(path, rec)
    return f"{key}: adopted remote job {job_id}; the next run polls and downloads it"


def dismiss(canvas: Any, state_dir: Path, job_id: str) -> str:
    """Dismiss (cancel/delete) a job no record owns on the service."""
    owner = owned_job_ids(_records(state_dir)).get(job_id)
    if owner is not None:
        raise ConfigError(f"remote job {job_id} belongs to job {owner}; not dismissing it")
    if canvas.cancel(job_id):
        return f"remote job {job_id} dismissed on the service"
    return f"the service does not offer dismissing jobs; remote job {job_id} left as it is"
