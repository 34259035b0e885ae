"""A fake EOCanvas + HDA, a fake clock and a fake sleep for JobRunner unit tests (no server).

The fake service keeps what the real one keeps (jobs with ids, ``created`` times, statuses, logs,
result files) and can be told, per call, to lose a reply after creating the job, answer 5xx or 429,
keep a job stuck, fail it with a given log, or serve a corrupt or another product's file.
"""

from __future__ import annotations

import itertools
import types
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seasonal_c2rcc.errors import DownloadError, OutputError, QuotaError, TransientBackendError


class FakeClock:
    """``clock()`` and ``sleep(s)`` over one virtual time line; sleeps are recorded."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(float(seconds))
        self.t += float(seconds)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class FakeJob:
    job_id: str
    created: float
    products: tuple[str, ...]
    statuses: deque[str]  # consumed one per poll; the last one stays
    log: str = "[INFO] - Job finished successfully"
    output: str | None = None  # what the result file says it was made from (None: the products)
    corrupt: int = 0  # downloads that deliver a corrupt file
    dismissed: bool = False


@dataclass
class FakeCanvas:
    """The EOCanvas side. ``plan`` holds one directive per future ``submit``: ``ok``, ``lost``
    (job created, reply lost), ``5xx`` (nothing created), ``429:<seconds>`` (refused, reset in
    seconds), ``reject`` (HTTP 400)."""

    clock: FakeClock
    plan: deque[str] = field(default_factory=deque)
    job_script: deque[list[str]] = field(default_factory=deque)  # statuses of the next new jobs
    job_logs: deque[str] = field(default_factory=deque)
    jobs_by_id: dict[str, FakeJob] = field(default_factory=dict)
    submits: int = 0
    cancels: list[str] = field(default_factory=list)
    can_cancel: bool = True
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _create(self, process: Any) -> FakeJob:
        job_id = f"job-{next(self._ids)}"
        statuses = self.job_script.popleft() if self.job_script else ["accepted", "successful"]
        log = self.job_logs.popleft() if self.job_logs else "[INFO] - Job finished successfully"
        job = FakeJob(job_id, self.clock(), tuple(process["products"]), deque(statuses), log)
        self.jobs_by_id[job_id] = job
        return job

    def submit(self, process: Any) -> Any:
        self.submits += 1
        what = self.plan.popleft() if self.plan else "ok"
        if what.startswith("429"):
            raise QuotaError("EOCanvas quota: Quota exceeded", self.clock() + float(what[4:]))
        if what == "5xx":
            raise TransientBackendError("EOCanvas POST: Maximum retries (0) reached")
        if what == "reject":
            from seasonal_c2rcc.errors import ConfigError

            raise ConfigError("EOCanvas rejected POST: HTTP 400: bad graph")
        job = self._create(process)
        if what == "lost":
            raise TransientBackendError("EOCanvas POST: 504 Gateway Timeout (reply lost)")
        return types.SimpleNamespace(job_id=job.job_id, status="accepted")

    def job(self, job_id: str) -> Any:
        job = self.jobs_by_id[job_id]
        if job.dismissed:
            return types.SimpleNamespace(job_id=job_id, status="dismissed")
        status = job.statuses[0] if len(job.statuses) == 1 else job.statuses.popleft()
        return types.SimpleNamespace(job_id=job_id, status=status)

    def jobs(self) -> list[Any]:
        return [
            types.SimpleNamespace(job_id=j.job_id, created=iso(j.created), status=j.statuses[0])
            for j in sorted(self.jobs_by_id.values(), key=lambda j: -j.created)
        ]

    def logs(self, job_id: str) -> list[Any]:
        stamp = datetime.fromtimestamp(self.clock(), UTC)
        return [
            types.SimpleNamespace(timestamp=stamp, message=line)
            for line in self.jobs_by_id[job_id].log.splitlines()
        ]

    def results(self, job_id: str) -> list[Any]:
        job = self.jobs_by_id[job_id]
        return [
            types.SimpleNamespace(
                title=f"wks3:///{job_id}/output/r_{i + 1}.nc", href=f"{job_id}/{i}"
            )
            for i in range(len(job.products))
        ]

    def download(self, href: str, dest: Path) -> Path:
        job_id, i = href.split("/")
        job = self.jobs_by_id[job_id]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if job.corrupt:
            job.corrupt -= 1
            dest.write_text("garbage")
        else:
            dest.write_text("product=" + (job.output or job.products[int(i)]))
        return dest

    def cancel(self, job_id: str) -> bool:
        self.cancels.append(job_id)
        if not self.can_cancel:
            return False
        self.jobs_by_id[job_id].dismissed = True
        return True


class FakeHDA:
    """The HDA side: orders always succeed and are ready at once."""

    def __init__(self) -> None:
        self.orders: list[str] = []

    def post(self, body: dict[str, Any], *parts: str) -> dict[str, str]:
        self.orders.append(body["product_id"])
        return {"download_id": f"d{len(self.orders):023d}"}

    def head(self, *parts: str) -> Any:
        return types.SimpleNamespace(status_code=200)

    def full_url(self, path: str) -> str:
        return f"https://hda.example/{path}"


def fake_verify(path: Any) -> None:
    """Stand-in for verify_c2rcc_netcdf over the fake's text results."""
    text = Path(path).read_text()
    if not text.startswith("product="):
        raise OutputError(f"{path}: not a C2RCC NetCDF")


def fake_source_product(path: Any) -> str:
    """Stand-in for clip.source_product over the fake's text results."""
    return Path(path).read_text().removeprefix("product=")


__all__ = [
    "DownloadError",
    "FakeCanvas",
    "FakeClock",
    "FakeHDA",
    "fake_source_product",
    "fake_verify",
]
