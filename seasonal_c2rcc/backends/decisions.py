"""The pure decisions of the EOCanvas job runner: no HTTP, no clock, no files.

:class:`~seasonal_c2rcc.backends.eocanvas.JobRunner` gathers an observation (its durable record,
the service's job list, a job's log) and asks these functions what it means, so every state and
every failure can be tested without a server (``tests/backends/test_jobrunner.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Record states. ``rejected`` (a permanent failure) and ``gave_up`` (attempts exhausted) are
#: final until ``seasonal-c2rcc reset-job``; ``submitting`` means a POST's outcome is unknown.
STATES = (
    "new", "ordered", "submitting", "submitted", "running", "successful", "downloaded",
    "failed", "gave_up", "rejected",
)  # fmt: skip
FINAL_STATES = ("gave_up", "rejected")

#: Log lines that mean the request itself is wrong: the same job would fail again, at full price.
#: Unknown or unconvertible parameters and bad graphs (SNAP's ConversionException /
#: GraphException, the job script's exit codes 12 and 40), and an empty subset (region outside
#: the product).
_PERMANENT = [
    (re.compile(r"Unknown (element|parameter) '[^']*'[^\n]*"), "unknown parameter"),
    (re.compile(r"ConversionException: [^\n]*"), "invalid parameter value"),
    (re.compile(r"Value for '[^']*' is invalid[^\n]*"), "invalid parameter value"),
    (re.compile(r"GraphException[^\n]*"), "invalid graph"),
    (re.compile(r"Cannot convert '[^\n]*"), "invalid region"),
    (re.compile(r"Invalid region[^\n]*"), "invalid region"),
    (re.compile(r"the product is empty[^\n]*"), "empty subset"),
    (re.compile(r"No intersection with source product boundary[^\n]*"), "empty subset"),
    (re.compile(r"does not exist in[^\n]*|Reference band '[^']*' does not exist[^\n]*"),
     "invalid graph"),
    (re.compile(r"operator '[^']*' is not emulated[^\n]*"), "unsupported operator"),
    (re.compile(r"exited with code (12|40)\b[^\n]*"), "invalid request"),
]  # fmt: skip


@dataclass(frozen=True)
class FailureClass:
    """What a failed job's log says: ``permanent`` (do not pay for it again) and the cause."""

    permanent: bool
    cause: str


def classify_failure(status: str, log_text: str) -> FailureClass:
    """Permanent or transient, from the final status and the saved remote log.

    Permanent: the request is wrong (unknown parameter, invalid graph or value, empty subset);
    everything else (stage-in errors, out of memory, time-outs, a stuck job, an unknown status) is
    transient: worth another attempt.
    """
    for pattern, kind in _PERMANENT:
        m = pattern.search(log_text)
        if m:
            return FailureClass(True, f"{kind}: {m.group(0).strip()[:200]}")
    last_error = next(
        (ln.strip() for ln in reversed(log_text.splitlines()) if "ERROR" in ln or "Error" in ln),
        None,
    )
    return FailureClass(False, last_error[:200] if last_error else status)


def next_step(rec: Mapping[str, Any], outputs_ok: bool) -> str:
    """What to do with a record on entry.

    ``done`` (downloaded and verified), ``refuse`` (final state), ``reattach`` (a remote job is
    known: poll it, never submit again), ``reconcile`` (a POST's outcome is unknown),
    ``retry`` (a previous attempt failed: back off, then submit), ``submit``.
    """
    state = rec.get("state")
    if state == "downloaded" and outputs_ok:
        return "done"
    if state in FINAL_STATES:
        return "refuse"
    if state in ("submitted", "running", "successful", "downloaded") and rec.get("remote_job_id"):
        return "reattach"
    if state == "submitting":
        return "reconcile"
    if state == "failed" and rec.get("attempts"):
        return "retry"
    return "submit"


def owned_job_ids(records: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{remote job id: record key}`` of every job a record holds (its current job and every
    attempt's), leaving out jobs a record detached (their results came from another product)."""
    owned: dict[str, str] = {}
    for rec in records:
        detached = set(rec.get("detached") or [])
        ids = [rec.get("remote_job_id")] + [a.get("remote_job_id") for a in rec.get("attempts", [])]
        for job_id in ids:
            if job_id and job_id not in detached:
                owned[str(job_id)] = str(rec.get("key"))
    return owned


def parse_time(value: Any) -> float | None:
    """An ISO-8601 time from the service as epoch seconds (None when absent or unreadable)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Match:
    """Outcome of a reconciliation: ``adopt`` (``job_id``), ``none`` (no job was created),
    ``wait`` (too early to say that none was), ``ambiguous`` (several unowned jobs: ``candidates``)."""

    kind: str
    job_id: str | None = None
    candidates: tuple[str, ...] = ()


def match_lost_submission(
    jobs: Iterable[tuple[str, Any]],
    owned: set[str],
    exclude: set[str],
    intent_at: float,
    now: float,
    *,
    settle: float,
    skew: float,
) -> Match:
    """Which job (if any) a submission with a lost reply created.

    ``jobs`` are ``(job id, created)`` pairs from the service's list. Only one submission per
    account may have an unknown outcome at a time (the ledger's lock), so the job it created is
    the one job, created after its intent (less ``skew`` for the clocks), that no record owns.
    None found is only conclusive ``settle`` seconds after the intent (a gateway may answer before
    the service has created the job).
    """
    found = []
    for job_id, created in jobs:
        t = parse_time(created)
        if job_id in owned or job_id in exclude or t is None:
            continue
        if t >= intent_at - skew:
            found.append((t, job_id))
    if len(found) == 1:
        return Match("adopt", found[0][1])
    if len(found) > 1:
        return Match("ambiguous", candidates=tuple(j for _, j in sorted(found)))
    if now - intent_at < settle:
        return Match("wait")
    return Match("none")
