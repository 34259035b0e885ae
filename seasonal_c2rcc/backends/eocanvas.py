"""Run one remote C2RCC job on EOCanvas: order, submit once, poll, re-attach, download, verify.

A job is described by a :class:`JobSpec` (one or several products, one lon/lat region) and tracked by
a durable JSON record ``<state_dir>/jobs/<key>.json``. The record is written *before* each remote
action (intent) and right after it (result), so a workflow killed at any moment resumes where it
stopped: an order is not placed twice, a submitted job is polled again instead of being submitted
again, and a finished job's results are downloaded without a new job.

States: ``new`` -> ``ordered`` -> ``submitting`` -> ``submitted`` -> ``successful`` ->
``downloaded``; ``failed`` (a remote attempt failed for a transient cause; the next attempt
re-submits after a back-off), ``gave_up`` (attempts exhausted) and ``rejected`` (the log shows a
permanent cause: not paid for again). A ``submitting`` record with no remote id means the POST's
outcome is unknown: it is reconciled against the service's job list before anything is
re-submitted, under the ledger's one-open-submission-per-account lock, which makes the match
unambiguous (``docs/reliability.md``). The decisions themselves are pure functions in
:mod:`seasonal_c2rcc.backends.decisions`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..atomic import write_json_atomic
from ..errors import (
    BackendError,
    ConfigError,
    DownloadError,
    JobFailedError,
    OutputError,
    QuotaError,
    TransientBackendError,
)
from ..integrity import read_job_record
from ..verify import verify_c2rcc_netcdf
from .base import JobSpec
from .decisions import classify_failure, match_lost_submission, next_step, owned_job_ids

log = logging.getLogger("seasonal_c2rcc.eocanvas")

#: Ordered products older than this are probed before reuse (WEkEO may expire download ids).
_HEAD_TIMEOUT_S = 1800.0

#: Submissions per attempt when each is known to have created no job (lost reply, no job).
_SUBMIT_TRIES = 3

#: Largest random delay added to a 429's reset time (seconds of a real, unscaled hour).
QUOTA_JITTER_S = 5.0


@dataclass
class Settings:
    """Polling, time-outs and retry policy (the validated ``eocanvas`` config section)."""

    poll_interval: float = 20.0
    poll_max_interval: float = 120.0
    job_timeout: float = 7200.0
    retries: int = 2
    retry_backoff: float = 60.0
    order_poll_max: float = 30.0
    #: seconds after a POST's intent before "its lost reply created no job" is conclusive (a
    #: gateway may answer 504 before the service has created the job); run_job sets it from
    #: ``wekeo.http_timeout``
    submit_settle: float = 90.0
    #: tolerated difference between our clock and the service's job ``created`` times
    clock_skew: float = 30.0
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)
    #: added to a 429's reset time so that many waiting processes do not all retry at once
    jitter: Callable[[], float] = field(default=lambda: random.uniform(0.0, QUOTA_JITTER_S))

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> Settings:
        """Build from the validated ``eocanvas`` config section."""
        keys = ("poll_interval", "poll_max_interval", "job_timeout", "retries", "retry_backoff")
        return cls(**{k: section[k] for k in keys})


def _now_iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobRunner:
    """Drives one :class:`JobSpec` to downloaded, verified result files."""

    def __init__(
        self,
        spec: JobSpec,
        *,
        hda: Any,
        canvas: Any,
        ledger: Any,
        dataset_id: str,
        state_dir: Path,
        out_dir: Path,
        log_dir: Path,
        settings: Settings,
        report: Callable[[str], None] | None = None,
        hda_orders: Any = None,
    ) -> None:
        self.spec = spec
        self.hda = hda
        #: the client that places orders (POST): one that never repeats a request by itself
        self.hda_orders = hda_orders if hda_orders is not None else hda
        self.canvas = canvas
        self.ledger = ledger
        self.dataset_id = dataset_id
        self.record_path = Path(state_dir) / "jobs" / f"{spec.key}.json"
        self.out_dir = Path(out_dir)
        self.log_dir = Path(log_dir)
        self.s = settings
        self.report = report or (lambda msg: log.info(msg))
        self.rec = self._load()

    # -- durable record ----------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        if self.record_path.exists():
            rec = read_job_record(self.record_path)  # a corrupt record: StateError with the fix
            if rec.get("key") != self.spec.key:
                raise BackendError(f"{self.record_path}: record is for job {rec.get('key')}")
            return rec
        return {
            "key": self.spec.key,
            "tile": self.spec.tile,
            "year": self.spec.year,
            "season": self.spec.season,
            "products": [p["key"] for p in self.spec.products],
            "subtiles": list(self.spec.subtiles),
            "geo_region": self.spec.geo_region,
            "state": "new",
            "orders": {},
            "remote_job_id": None,
            "attempts": [],
            "outputs": {},
            "error": None,
            "log": None,
        }

    def _save(self, **changes: Any) -> None:
        self.rec.update(changes)
        self.rec["updated"] = _now_iso(self.s.clock())
        write_json_atomic(self.record_path, self.rec)

    # -- steps ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Bring the job to ``downloaded`` and return the manifest ``{product key: file}``.

        Holds an exclusive lock on the job while working: after a SIGKILL of Snakemake the old job
        process may live on as an orphan, and the new one must wait for it, not race it.
        """
        import fcntl

        lock_path = self.record_path.with_suffix(".lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.report(f"job {self.spec.key}: another process is working on it; waiting")
                fcntl.flock(lock, fcntl.LOCK_EX)
            self.rec = self._load()
            return self._run_locked()

    def _run_locked(self) -> dict[str, Any]:
        if self.rec["state"] == "downloaded" and self._outputs_ok():
            self.report(f"job {self.spec.key}: already downloaded, nothing to spend")
            return self.rec["outputs"]
        if self.rec["state"] == "gave_up":
            # A fresh workflow run must not quietly spend quota on a job that already failed
            # every attempt; the user decides (seasonal-c2rcc reset-job).
            raise JobFailedError(
                f"job {self.spec.key} gave up earlier ({self.rec['error']}); to try it again run "
                f"`seasonal-c2rcc reset-job {self.spec.key}` and re-run the workflow",
                log_path=self.rec.get("log"),
            )
        if self.rec["state"] == "rejected":
            raise JobFailedError(
                f"job {self.spec.key} was rejected by the service ({self.rec['error']}); fix the "
                f"cause, then run `seasonal-c2rcc reset-job {self.spec.key}` and re-run",
                log_path=self.rec.get("log"),
            )
        urls = self._order_all()
        # A job whose results came from another product is detached and the record reconciled
        # again; three in a row would mean something else is wrong: stop and say so.
        for _ in range(3):
            job_id = self._ensure_submitted(urls)
            status = self._wait(job_id)
            if status != "successful":
                self._fail(job_id, status)
            self._save(state="successful")
            outputs = self._download(job_id)
            if outputs is not None:
                return outputs
        raise BackendError(
            f"job {self.spec.key}: remote results came from other products three times; see "
            f"the `detached` list in {self.record_path}"
        )

    def _outputs_ok(self) -> bool:
        try:
            for f in self.rec["outputs"].values():
                verify_c2rcc_netcdf(f)
        except OutputError:
            return False
        return bool(self.rec["outputs"])

    def _order_all(self) -> list[str]:
        from .. import wekeo

        urls = []
        for p in self.spec.products:
            order = self.rec["orders"].get(p["key"])
            if order is None:
                reserve_key = p["key"]
                download_id = self.ledger.paced_call(
                    "hda_order",
                    reserve_key,
                    lambda p=p: wekeo.order(
                        self.hda_orders, self.dataset_id, p["id"], p["location"]
                    ),
                    quota_reset=self._quota_reset,
                    on_wait=self._on_wait,
                )
                order = {"download_id": download_id, "ordered_at": _now_iso(self.s.clock())}
                self.rec["orders"][p["key"]] = order
                self._save(state="ordered" if self.rec["state"] == "new" else self.rec["state"])
                self.report(f"ordered {p['id']} (download id {download_id})")
            self._await_order(p["id"], order["download_id"])
            urls.append(wekeo.download_url(self.hda, order["download_id"]))
        return urls

    def _await_order(self, product_id: str, download_id: str) -> None:
        from .. import wekeo

        deadline = self.s.clock() + _HEAD_TIMEOUT_S
        delay = 1.0
        while not wekeo.order_ready(self.hda, download_id):
            if self.s.clock() > deadline:
                raise TransientBackendError(
                    f"HDA order {download_id} for {product_id} not ready after {_HEAD_TIMEOUT_S:.0f} s"
                )
            self.s.sleep(delay)
            delay = min(delay * 1.5, self.s.order_poll_max)

    def _process(self, urls: list[str]) -> Any:
        from eocanvas.api import Config, ConfigOption, Input
        from eocanvas.processes import SnapProcess
        from eocanvas.snap.graph import Graph

        keys = self.spec.input_keys
        return SnapProcess(
            snap_graph=Graph.from_text(self.spec.graph.encode()),
            eo_input=[Input(key=k, url=u) for k, u in zip(keys, urls, strict=True)],
            eo_config=[
                Config(key=k, options=ConfigOption(uncompress=False, sub_path="")) for k in keys
            ],
        )

    def _ensure_submitted(self, urls: list[str]) -> str:
        step = next_step(self.rec, outputs_ok=False)
        if step == "reattach":
            self.report(
                f"job {self.spec.key}: re-attaching to remote job {self.rec['remote_job_id']} "
                "(not submitting again)"
            )
            return str(self.rec["remote_job_id"])
        if step == "reconcile":
            adopted = self._reconcile()
            if adopted:
                return adopted
        if step == "retry":
            wait = self.s.retry_backoff * 2 ** (len(self.rec["attempts"]) - 1)
            self.report(
                f"job {self.spec.key}: previous attempt failed (log {self.rec['log']}); "
                f"re-submitting in {wait:.0f} s"
            )
            self.s.sleep(wait)
        process = self._process(urls)
        before = self.rec["state"]

        def post() -> Any:
            # One submission with an unknown outcome per account: settle any earlier one first.
            intent_at = self._take_submission_lock(None)
            self._save(state="submitting", intent_at=intent_at)
            try:
                job = self.canvas.submit(process)
            except (QuotaError, ConfigError):
                # Refused outright (429, 4xx): no job exists, so nothing needs reconciling.
                self.ledger.resolve_submission("eocanvas", self.spec.key, intent_at, None)
                self._save(state=before)
                raise
            # Record first, then release the lock: the job is never unowned while unlocked.
            self.rec["attempts"].append(
                {
                    "remote_job_id": job.job_id,
                    "submitted_at": _now_iso(self.s.clock()),
                    "intent_at": intent_at,
                    "status": None,
                }
            )
            self._save(state="submitted", remote_job_id=job.job_id)
            self.ledger.resolve_submission("eocanvas", self.spec.key, intent_at, job.job_id)
            return job

        last: TransientBackendError | None = None
        for _ in range(_SUBMIT_TRIES):
            try:
                job = self.ledger.paced_call(
                    "eocanvas",
                    self.spec.key,
                    post,
                    quota_reset=self._quota_reset,
                    on_wait=self._on_wait,
                )
            except TransientBackendError as exc:
                # The POST may or may not have created a job. The lock stays held, so no other
                # submission can blur the picture; look at the job list now (it often answers
                # when the POST's reply was lost), else the next attempt reconciles.
                self.report(
                    f"job {self.spec.key}: submission reply lost ({exc}); reconciling with the "
                    "service's job list before anything is submitted again"
                )
                adopted = self._reconcile()
                if adopted:
                    return adopted
                # Known now: no job was created, so submitting again cannot pay twice.
                last = exc
                before = self.rec["state"]
                continue
            self.report(
                f"job {self.spec.key}: submitted remote job {job.job_id} "
                f"({len(self.spec.products)} product(s), attempt {len(self.rec['attempts'])})"
            )
            return str(job.job_id)
        raise TransientBackendError(
            f"job {self.spec.key}: {_SUBMIT_TRIES} submissions in a row got no reply and created "
            "no job; the next attempt submits again"
        ) from last

    def _open_intent(self) -> float:
        (own,) = [o for o in self.ledger.open_submissions("eocanvas") if o.key == self.spec.key]
        return float(own.intent_at)

    def _take_submission_lock(self, intent_at: float | None) -> float:
        """Hold the account's submission lock for this record; settle foreign open submissions
        whose POST is over first. Returns the intent time the lock holds for us."""
        while True:
            other = self.ledger.open_submission(
                "eocanvas",
                self.spec.key,
                settle=self.s.submit_settle,
                intent_at=intent_at,
                on_wait=self._on_wait,
            )
            if other is None:
                return self._open_intent()
            if other.key == self.spec.key:
                return float(other.intent_at)
            self._settle_foreign(other)

    def _records(self) -> list[dict[str, Any]]:
        out = []
        for f in self.record_path.parent.glob("*.json"):
            if f == self.record_path:
                out.append(self.rec)
                continue
            # A record that cannot be read may own the very job a lost reply created: matching
            # without it could hand that job to this record, so a corrupt one stops reconciliation
            # (StateError names the file and the fix).
            out.append(read_job_record(f))
        if self.rec not in out:
            out.append(self.rec)
        return out

    def _match(self, intent_at: float, exclude: set[str]) -> Any:
        records = self._records()
        owned = set(owned_job_ids(records))
        # Jobs a reconciliation gave to a record count as owned, unless that record detached it.
        detached = {str(r.get("key")): set(r.get("detached") or []) for r in records}
        for job_id, key in self.ledger.resolved_job_ids("eocanvas").items():
            if job_id not in detached.get(key, set()):
                owned.add(job_id)
        listed = [(j.job_id, j.created) for j in self.canvas.jobs()]
        return match_lost_submission(
            listed,
            owned - exclude,
            exclude,
            intent_at,
            self.s.clock(),
            settle=self.s.submit_settle,
            skew=self.s.clock_skew,
        )

    def _settle_foreign(self, other: Any) -> None:
        """Reconcile another record's open submission (its POST is over, its reply was lost and
        its process has not settled it); the record adopts the outcome from the ledger."""
        m = self._match(float(other.intent_at), set())
        if m.kind == "ambiguous":
            raise BackendError(_ambiguous(other.key, m.candidates))
        if m.kind == "wait":  # not reached: open_submission returns it only once settled
            return
        self.ledger.resolve_submission("eocanvas", other.key, other.intent_at, m.job_id)
        self.report(
            f"job {self.spec.key}: settled job {other.key}'s lost submission "
            f"({'created remote job ' + str(m.job_id) if m.job_id else 'no job was created'})"
        )

    def _reconcile(self) -> str | None:
        """Find the job a lost POST created and adopt it instead of paying again.

        Under the account's submission lock nobody else submits while this record's outcome is
        unknown, so the job it created is the single job created since its intent that no
        record owns. Returns its id (adopted), or None when no job was created (the record
        goes back to ``ordered``). Raises :class:`TransientBackendError` when it is too early to
        tell or the list cannot be read (the lock stays held), :class:`BackendError` when
        several unowned jobs appeared (jobs from another tool on the same account).
        """
        key = self.spec.key
        detached = set(self.rec.get("detached") or [])
        intent = self.rec.get("intent_at")
        if intent is not None:
            known, job_id = self.ledger.submission_outcome("eocanvas", key, float(intent))
            if known and job_id not in detached:
                return self._adopt_outcome(job_id, float(intent), "settled by another job")
        intent = self._take_submission_lock(None if intent is None else float(intent))
        if intent != self.rec.get("intent_at"):
            self._save(intent_at=intent)
        m = self._match(intent, detached)
        while m.kind == "wait":
            # "No job" is conclusive only `submit_settle` s after the intent; we hold the lock.
            left = intent + self.s.submit_settle - self.s.clock()
            self.report(
                f"job {key}: no job from its lost submission yet; looking again in {left:.0f} s"
            )
            self.s.sleep(max(min(left, self.s.poll_interval), 0.01))
            m = self._match(intent, detached)
        if m.kind == "ambiguous":
            raise BackendError(_ambiguous(key, m.candidates))
        self.ledger.resolve_submission("eocanvas", key, intent, m.job_id)
        return self._adopt_outcome(m.job_id, intent, "unowned job since its intent")

    def _adopt_outcome(self, job_id: str | None, intent: float, how: str) -> str | None:
        if job_id is None:
            self._save(state="ordered", intent_at=None)
            self.report(f"job {self.spec.key}: the lost submission created no job; submitting")
            return None
        self.rec["attempts"].append(
            {
                "remote_job_id": job_id,
                "submitted_at": _now_iso(intent),
                "intent_at": intent,
                "status": None,
                "adopted": how,
            }
        )
        self._save(state="submitted", remote_job_id=job_id)
        self.report(f"job {self.spec.key}: adopted remote job {job_id} after a lost reply ({how})")
        return str(job_id)

    def _detach(self, job_id: str, found: str) -> None:
        """The job's results came from another product: it is not this record's job. Move it
        to ``detached`` (other records may adopt it) and reconcile again from its intent."""
        attempt = next(
            (a for a in reversed(self.rec["attempts"]) if a.get("remote_job_id") == job_id), {}
        )
        attempt["detached"] = f"results computed from {found}"
        intent = attempt.get("intent_at") or self.rec.get("intent_at")
        if intent is None:
            intent = _parse_time(attempt.get("submitted_at")) or self.s.clock()
        self.rec.setdefault("detached", []).append(job_id)
        self._save(state="submitting", remote_job_id=None, intent_at=float(intent), outputs={})
        self.report(
            f"job {self.spec.key}: remote job {job_id} computed {found}, not this job's "
            "products; detached it and reconciling again"
        )

    def _wait(self, job_id: str) -> str:
        started = self.s.clock()
        delay = self.s.poll_interval
        last = None
        while True:
            try:
                status = self.canvas.job(job_id).status
            except TransientBackendError as exc:
                status = last
                self.report(f"job {self.spec.key}: status poll failed ({exc}); will poll again")
            if status != last:
                self.report(f"job {self.spec.key}: remote job {job_id} is {status}")
                if status in ("running", "accepted"):
                    self._save(state="running" if status == "running" else "submitted")
                last = status
            if status in ("successful", "failed"):
                return str(status)
            if status not in (None, "accepted", "running"):
                return f"unexpected status {status!r}"
            if self.s.clock() - started > self.s.job_timeout:
                return self._cancel_stuck(job_id, status)
            self.s.sleep(delay)
            delay = min(delay * 1.5, self.s.poll_max_interval)

    def _cancel_stuck(self, job_id: str, status: str | None) -> str:
        """Dismiss a job stuck past ``job_timeout`` on the service before the next attempt,
        so it cannot finish later, unseen; recorded as abandoned where the service has no
        dismiss."""
        try:
            cancelled = self.canvas.cancel(job_id)
        except BackendError as exc:
            cancelled = False
            self.report(f"job {self.spec.key}: cancelling stuck remote job {job_id} failed: {exc}")
        outcome = "cancelled" if cancelled else "abandoned"
        if self.rec["attempts"]:
            self.rec["attempts"][-1]["stuck"] = outcome
            self._save()
        self.report(
            f"job {self.spec.key}: remote job {job_id} stuck in {status} past "
            f"{self.s.job_timeout:.0f} s; {outcome} on the service"
        )
        return f"no result after {self.s.job_timeout:.0f} s (stuck in {status}; {outcome})"

    def _save_logs(self, job_id: str) -> Path:
        path = self.log_dir / f"{self.spec.key}.attempt{len(self.rec['attempts'])}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            entries = self.canvas.logs(job_id)
            text = "\n".join(f"{e.timestamp.isoformat()} {e.message}" for e in entries)
        except BackendError as exc:
            text = f"(logs of remote job {job_id} could not be fetched: {exc})"
        path.write_text(text + "\n")
        return path

    def _fail(self, job_id: str, status: str) -> None:
        logs = self._save_logs(job_id)
        if self.rec["attempts"]:
            self.rec["attempts"][-1]["status"] = status
        n = len(self.rec["attempts"])
        verdict = classify_failure(status, logs.read_text())
        if verdict.permanent:
            # The same request would fail again at full price: stop here, say why in one line.
            msg = (
                f"remote job {job_id} for {self.spec.key} {status}: {verdict.cause} "
                f"(permanent, not retried; log {logs})"
            )
            self._save(state="rejected", error=msg, log=str(logs))
            self.report(f"job {self.spec.key}: REJECTED: {verdict.cause}; log {logs}")
            raise JobFailedError(
                f"{msg}; fix the graph or config, then `seasonal-c2rcc reset-job "
                f"{self.spec.key}` and re-run",
                log_path=str(logs),
            )
        final = n > self.s.retries
        msg = (
            f"remote job {job_id} for {self.spec.key} {status} (attempt {n} of "
            f"{self.s.retries + 1}); remote log saved to {logs}"
        )
        self._save(state="gave_up" if final else "failed", error=msg, log=str(logs))
        hint = (
            "giving up; fix the cause and re-run to try again"
            if final
            else "Snakemake will retry this job after a back-off"
        )
        raise JobFailedError(f"{msg}; {hint}", log_path=str(logs))

    def _download(self, job_id: str) -> dict[str, Any] | None:
        results = [r for r in self.canvas.results(job_id) if not r.title.startswith("keystore")]
        files = sorted(results, key=lambda r: r.title)
        products = [p["key"] for p in self.spec.products]
        if len(files) != len(products):
            raise OutputError(
                f"remote job {job_id} returned {len(files)} file(s) for {len(products)} product(s): "
                f"{[r.title for r in files]}"
            )
        # One Write per product. With several, the names (<uuid1>_K) give the branch order, and
        # each file is then checked by content: its own metadata names the product it was made
        # from, so a mix-up can never put one product's values under another's name.
        outputs: dict[str, str] = {}
        job_dir = self.out_dir / self.spec.key
        for product, result in zip(products, _order_results(files, len(products)), strict=True):
            dest = job_dir / f"{product}.nc"
            self.report(f"job {self.spec.key}: downloading {result.title} -> {dest}")
            try:
                self.canvas.download(result.href, dest)
            except DownloadError as exc:
                raise TransientBackendError(f"{exc}; the next attempt downloads again") from exc
            try:
                verify_c2rcc_netcdf(dest)
                _check_source(dest, product)
            except _WrongProduct as exc:
                dest.unlink(missing_ok=True)
                self._detach(job_id, exc.found)
                return None
            except OutputError:
                dest.unlink(missing_ok=True)
                raise
            outputs[product] = str(dest)
        self._save(state="downloaded", outputs=outputs, error=None)
        return outputs

    def _on_wait(self, seconds: float, message: str) -> None:
        self.report(f"job {self.spec.key}: {message}")

    def _quota_reset(self, exc: BaseException) -> float | None | bool:
        """For :meth:`QuotaLedger.paced_call`: a quota refusal's reset time read from the reply
        (plus jitter), None for a 429 without one, False for anything else."""
        if isinstance(exc, QuotaError):
            return None if exc.resume_at is None else exc.resume_at + self.s.jitter()
        return False


class _WrongProduct(OutputError):
    def __init__(self, message: str, found: str) -> None:
        super().__init__(message)
        self.found = found


def _ambiguous(key: str, candidates: tuple[str, ...]) -> str:
    return (
        f"job {key}: its submission's reply was lost and {len(candidates)} jobs no record owns "
        f"appeared since ({', '.join(candidates)}): jobs from another tool on the same account? "
        f"Run `seasonal-c2rcc remote-jobs` and `--adopt {key} JOB_ID` the right one or "
        "`--dismiss` the others"
    )


def _order_results(results: list[Any], n: int) -> list[Any]:
    from ..packing import result_branch

    return results if n == 1 else sorted(results, key=lambda r: result_branch(r.title))


def _check_source(path: Path, product: str) -> None:
    from ..clip import source_product

    found = source_product(path)
    if found is not None and found != product:
        raise _WrongProduct(f"{path}: result was computed from {found}, expected {product}", found)


def _parse_time(value: Any) -> float | None:
    from .decisions import parse_time

    return parse_time(value)


def run_job(
    spec: JobSpec,
    config: dict[str, Any],
    *,
    state_dir: Path,
    out_dir: Path,
    log_dir: Path,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``spec`` with clients and ledger built from the validated config."""
    from .. import wekeo
    from ..quota import QuotaLedger, QuotaLimits, ledger_path

    endpoints = wekeo.Endpoints.from_config(config["wekeo"])
    creds = wekeo.load_credentials()
    limits = QuotaLimits.from_config(config["quota"])
    from ..graph import placeholders

    left = placeholders(spec.graph) - {"output", *spec.input_keys}
    if left or "output" not in placeholders(spec.graph):
        raise ConfigError(f"job {spec.key}: graph placeholders wrong (unresolved {sorted(left)})")
    settings = Settings.from_config(config["eocanvas"])
    # A POST cannot still be in flight after its time-out; a job it created shows in the list
    # within seconds of that.
    settings.submit_settle = float(config["wekeo"]["http_timeout"]) + 30.0
    # The jitter shrinks with the quota windows (time_scale), or a scaled "hour" of a few seconds
    # would read reset + jitter as a monthly block.
    jitter_max = QUOTA_JITTER_S / float(limits.time_scale)
    settings.jitter = lambda: random.uniform(0.0, jitter_max)
    with QuotaLedger(ledger_path(config["quota"], state_dir), limits) as ledger:
        runner = JobRunner(
            spec,
            hda=wekeo.hda_client(
                endpoints,
                creds,
                timeout=config["wekeo"]["http_timeout"],
                retries=config["wekeo"]["http_retries"],
            ),
            canvas=wekeo.EOCanvas(endpoints, creds, timeout=config["wekeo"]["http_timeout"]),
            ledger=ledger,
            dataset_id=config["wekeo"]["dataset_id"],
            state_dir=state_dir,
            out_dir=out_dir,
            log_dir=log_dir,
            settings=settings,
            report=report,
            hda_orders=wekeo.hda_order_client(
                endpoints, creds, timeout=config["wekeo"]["http_timeout"]
            ),
        )
        return runner.run()
