"""Run one remote C2RCC job on EOCanvas: order, submit once, poll, re-attach, download, verify.

A job is described by a :class:`JobSpec` (one or several products, one lon/lat region) and tracked by
a durable JSON record ``<state_dir>/jobs/<key>.json``. The record is written *before* each remote
action (intent) and right after it (result), so a workflow killed at any moment resumes where it
stopped: an order is not placed twice, a submitted job is polled again instead of being submitted
again, and a finished job's results are downloaded without a new job.

States: ``new`` -> ``ordered`` -> ``submitting`` -> ``submitted`` -> ``successful`` ->
``downloaded``; ``failed`` (a remote attempt failed; the next attempt re-submits after a back-off)
and ``gave_up`` (attempts exhausted). A ``submitting`` record with no remote id means the POST's
outcome is unknown: it is reconciled against the service's job list before anything is re-submitted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..atomic import read_json, write_json_atomic
from ..errors import (
    BackendError,
    ConfigError,
    DownloadError,
    JobFailedError,
    OutputError,
    QuotaError,
    TransientBackendError,
)
from ..verify import verify_c2rcc_netcdf
from .base import JobSpec

log = logging.getLogger("seasonal_c2rcc.eocanvas")

#: Ordered products older than this are probed before reuse (WEkEO may expire download ids).
_HEAD_TIMEOUT_S = 1800.0


@dataclass
class Settings:
    """Polling, time-outs and retry policy (the validated ``eocanvas`` config section)."""

    poll_interval: float = 20.0
    poll_max_interval: float = 120.0
    job_timeout: float = 7200.0
    retries: int = 2
    retry_backoff: float = 60.0
    order_poll_max: float = 30.0
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)

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
    ) -> None:
        self.spec = spec
        self.hda = hda
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
            rec = read_json(self.record_path)
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
        urls = self._order_all()
        job_id = self._ensure_submitted(urls)
        status = self._wait(job_id)
        if status != "successful":
            self._fail(job_id, status)
        self._save(state="successful")
        return self._download(job_id)

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
                    lambda p=p: wekeo.order(self.hda, self.dataset_id, p["id"], p["location"]),
                    quota_reset=_quota_reset,
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
        state = self.rec["state"]
        if state in ("submitted", "running", "successful") and self.rec["remote_job_id"]:
            self.report(
                f"job {self.spec.key}: re-attaching to remote job {self.rec['remote_job_id']} "
                "(not submitting again)"
            )
            return str(self.rec["remote_job_id"])
        if state == "submitting":
            adopted = self._reconcile()
            if adopted:
                return adopted
        if state == "failed" and self.rec["attempts"]:
            wait = self.s.retry_backoff * 2 ** (len(self.rec["attempts"]) - 1)
            self.report(
                f"job {self.spec.key}: previous attempt failed (log {self.rec['log']}); "
                f"re-submitting in {wait:.0f} s"
            )
            self.s.sleep(wait)
        process = self._process(urls)

        before = self.rec["state"]

        def post() -> Any:
            self._save(state="submitting", intent_at=self.s.clock())
            try:
                return self.canvas.submit(process)
            except QuotaError:
                # Refused outright: no job exists, so nothing needs reconciling.
                self._save(state=before)
                raise

        try:
            job = self.ledger.paced_call(
                "eocanvas", self.spec.key, post, quota_reset=_quota_reset, on_wait=self._on_wait
            )
        except TransientBackendError:
            # The POST may or may not have created a job; leave the record in `submitting` so the
            # next attempt reconciles instead of spending a second job.
            self.report(f"job {self.spec.key}: submission outcome unknown; will reconcile")
            raise
        self.rec["attempts"].append(
            {"remote_job_id": job.job_id, "submitted_at": _now_iso(self.s.clock()), "status": None}
        )
        self._save(state="submitted", remote_job_id=job.job_id)
        self.report(
            f"job {self.spec.key}: submitted remote job {job.job_id} "
            f"({len(self.spec.products)} product(s), attempt {len(self.rec['attempts'])})"
        )
        return str(job.job_id)

    def _reconcile(self) -> str | None:
        """Find the job a lost POST may have created and adopt it instead of paying again.

        Candidates are jobs created after the intent that no record owns. Several jobs killed at
        once leave several candidates, so each record takes the one created closest to its own
        intent (within a minute), under a lock shared by all records, so no job is adopted
        twice; the product check at download catches a wrong pairing. With no candidate the POST
        never arrived and the job is submitted again.
        """
        import fcntl

        intent = float(self.rec.get("intent_at") or 0)
        with open(self.record_path.parent / ".reconcile.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            owned = set()
            for f in self.record_path.parent.glob("*.json"):
                try:
                    rec = read_json(f)
                except (OSError, ValueError):
                    continue
                owned.add(rec.get("remote_job_id"))
                owned.update(a.get("remote_job_id") for a in rec.get("attempts", []))
            candidates = []
            for j in self.canvas.jobs():
                created = _parse_time(j.created)
                if (
                    j.job_id not in owned
                    and created is not None
                    and intent - 5 <= created <= intent + 60
                ):
                    candidates.append((abs(created - intent), j))
            if candidates:
                job = min(candidates, key=lambda c: c[0])[1]
                self.rec["attempts"].append(
                    {"remote_job_id": job.job_id, "submitted_at": job.created, "status": None}
                )
                self._save(state="submitted", remote_job_id=job.job_id)
                self.report(
                    f"job {self.spec.key}: adopted remote job {job.job_id} after a lost reply "
                    f"({len(candidates)} unowned candidate(s))"
                )
                return str(job.job_id)
        self.report(f"job {self.spec.key}: no job was created by the lost submission; submitting")
        return None

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
                return f"no result after {self.s.job_timeout:.0f} s (stuck in {status})"
            self.s.sleep(delay)
            delay = min(delay * 1.5, self.s.poll_max_interval)

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

    def _download(self, job_id: str) -> dict[str, Any]:
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
            except OutputError:
                dest.unlink(missing_ok=True)
                raise
            outputs[product] = str(dest)
        self._save(state="downloaded", outputs=outputs, error=None)
        return outputs

    def _on_wait(self, seconds: float, message: str) -> None:
        self.report(f"job {self.spec.key}: {message}")


def _order_results(results: list[Any], n: int) -> list[Any]:
    from ..packing import result_branch

    return results if n == 1 else sorted(results, key=lambda r: result_branch(r.title))


def _check_source(path: Path, product: str) -> None:
    from ..clip import source_product

    found = source_product(path)
    if found is not None and found != product:
        raise OutputError(f"{path}: result was computed from {found}, expected {product}")


def _parse_time(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _quota_reset(exc: BaseException) -> float | None | bool:
    if isinstance(exc, QuotaError):
        return exc.resume_at
    return False


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
    from ..quota import QuotaLedger, QuotaLimits

    endpoints = wekeo.Endpoints.from_config(config["wekeo"])
    creds = wekeo.load_credentials()
    q = config["quota"]
    limits = QuotaLimits(
        eocanvas_per_hour=q["eocanvas_per_hour"],
        eocanvas_per_month=q["eocanvas_per_month"],
        hda_orders_per_hour=q["hda_orders_per_hour"],
        time_scale=q["time_scale"],
    )
    from ..graph import placeholders

    left = placeholders(spec.graph) - {"output", *spec.input_keys}
    if left or "output" not in placeholders(spec.graph):
        raise ConfigError(f"job {spec.key}: graph placeholders wrong (unresolved {sorted(left)})")
    ledger_path = Path(q["ledger"]) if q.get("ledger") else Path(state_dir) / "quota.sqlite"
    with QuotaLedger(ledger_path, limits) as ledger:
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
            settings=Settings.from_config(config["eocanvas"]),
            report=report,
        )
        return runner.run()
