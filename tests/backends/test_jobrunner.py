"""JobRunner's state machine against a fake service, a fake clock and a fake sleep (no server).

Every state meets every failure the issue lists: a lost reply, a 5xx, a 429 with a reset, a
failed job (permanent and transient), a stuck job, results from another product (a swap) and a
corrupt download. Each test counts what a user pays for: jobs created on the service.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import pytest

from seasonal_c2rcc.backends import eocanvas as backend
from seasonal_c2rcc.backends.base import JobSpec
from seasonal_c2rcc.backends.decisions import (
    classify_failure,
    match_lost_submission,
    next_step,
    owned_job_ids,
)
from seasonal_c2rcc.errors import (
    BackendError,
    JobFailedError,
    OutputError,
    TransientBackendError,
)
from seasonal_c2rcc.quota import QuotaLedger, QuotaLimits

from .fakes import FakeCanvas, FakeClock, FakeHDA, fake_source_product, fake_verify, iso

# -- pure decisions -------------------------------------------------------------------------

UNKNOWN_ELEMENT_LOG = """[2026-01-01T00:00:00+0000] [INFO] - Launching SNAP: gpt graph.xml
Executing processing graph
Error: [NodeId: c2rcc] com.bc.ceres.binding.ConversionException: Unknown element 'fooBar' for operator c2rcc.msi
[2026-01-01T00:00:01+0000] [ERROR] - SNAP exit code: 1"""
EMPTY_SUBSET_LOG = (
    "Error: [NodeId: Write] java.lang.IllegalArgumentException: Cannot write product 'X': "
    "the product is empty (raster size 0 x 0)\n[ERROR] - SNAP exit code: 1"
)
OOM_LOG = (
    'Exception in thread "SunTileScheduler0Standard0" java.lang.OutOfMemoryError: Java heap '
    "space\n[2026-01-01T00:00:01+0000] [ERROR] - gpt was killed (exit code 137)"
)


@pytest.mark.parametrize(
    ("log", "permanent", "cause"),
    [
        (UNKNOWN_ELEMENT_LOG, True, "unknown parameter: Unknown element 'fooBar'"),
        (EMPTY_SUBSET_LOG, True, "empty subset"),
        ("Error: [NodeId: Subset] Value for 'geoRegion' is invalid: '$polygon'", True, "invalid"),
        ("Error: org.esa.snap.core.gpf.graph.GraphException: no node", True, "invalid graph"),
        (OOM_LOG, False, "gpt was killed"),
        ("[ERROR] - StageIn failed for img1: HTTP 500", False, "StageIn failed"),
        ("", False, "failed"),
    ],
)
def test_classify_failure(log: str, permanent: bool, cause: str) -> None:
    verdict = classify_failure("failed", log)
    assert verdict.permanent is permanent
    assert cause in verdict.cause
    assert "\n" not in verdict.cause


@pytest.mark.parametrize(
    ("rec", "ok", "step"),
    [
        ({"state": "downloaded", "remote_job_id": "j"}, True, "done"),
        ({"state": "downloaded", "remote_job_id": "j"}, False, "reattach"),
        ({"state": "gave_up"}, False, "refuse"),
        ({"state": "rejected"}, False, "refuse"),
        ({"state": "submitted", "remote_job_id": "j"}, False, "reattach"),
        ({"state": "running", "remote_job_id": "j"}, False, "reattach"),
        ({"state": "successful", "remote_job_id": "j"}, False, "reattach"),
        ({"state": "submitting", "remote_job_id": None}, False, "reconcile"),
        ({"state": "failed", "attempts": [{}]}, False, "retry"),
        ({"state": "new"}, False, "submit"),
        ({"state": "ordered"}, False, "submit"),
    ],
)
def test_next_step(rec: dict, ok: bool, step: str) -> None:
    assert next_step(rec, ok) == step


def test_match_lost_submission() -> None:
    t = 1_800_000_000.0
    jobs = [("old", iso(t - 600)), ("mine", iso(t + 1)), ("owned", iso(t + 2))]
    kw = {"settle": 90.0, "skew": 30.0}
    assert match_lost_submission(jobs, {"owned"}, set(), t, t + 5, **kw).job_id == "mine"
    # nothing unowned: "no job" only once the settle time has passed
    assert match_lost_submission(jobs[:1], set(), set(), t, t + 5, **kw).kind == "wait"
    assert match_lost_submission(jobs[:1], set(), set(), t, t + 91, **kw).kind == "none"
    # a detached job is not adopted again
    assert match_lost_submission(jobs, {"owned"}, {"mine"}, t, t + 91, **kw).kind == "none"
    two = match_lost_submission(jobs, set(), set(), t, t + 5, **kw)
    assert two.kind == "ambiguous" and two.candidates == ("mine", "owned")


def test_owned_job_ids_leave_detached_out() -> None:
    recs = [
        {
            "key": "A",
            "remote_job_id": "j2",
            "attempts": [{"remote_job_id": "j1"}],
            "detached": ["j1"],
        },
        {"key": "B", "remote_job_id": None, "attempts": [{"remote_job_id": "j3"}]},
    ]
    assert owned_job_ids(recs) == {"j2": "A", "j3": "B"}


# -- the runner against the fake service ----------------------------------------------------


class World:
    """One fake account: clock, service, ledger and a state folder shared by all records."""

    def __init__(self, tmp: Path, **settings: float) -> None:
        self.clock = FakeClock()
        self.canvas = FakeCanvas(self.clock)
        self.hda = FakeHDA()
        self.tmp = tmp
        self.ledger = QuotaLedger(
            tmp / "quota.sqlite",
            QuotaLimits(eocanvas_per_hour=1000, eocanvas_per_month=None, hda_orders_per_hour=1000),
            clock=self.clock,
            sleep=self.clock.sleep,
        )
        base = {
            "poll_interval": 10.0,
            "poll_max_interval": 10.0,
            "job_timeout": 1000.0,
            "retries": 2,
            "retry_backoff": 60.0,
            "submit_settle": 90.0,
        }
        base.update(settings)
        self.settings = backend.Settings(
            **base, clock=self.clock, sleep=self.clock.sleep, jitter=lambda: 0.5
        )
        self.messages: list[str] = []

    def runner(self, key: str = "A", product: str | None = None) -> backend.JobRunner:
        product = product or f"P_{key}"
        spec = JobSpec(
            key=key,
            tile="30UUA",
            year=2020,
            season="summer",
            products=({"key": product, "id": product + ".SAFE", "location": "loc"},),
            geo_region="POLYGON ((0 0, 1 0, 1 1, 0 0))",
            subtiles=("s1",),
            graph="<graph/>",
        )
        r = backend.JobRunner(
            spec,
            hda=self.hda,
            canvas=self.canvas,
            ledger=self.ledger,
            dataset_id="EO:ESA:DAT:SENTINEL-2",
            state_dir=self.tmp / "state",
            out_dir=self.tmp / "jobs",
            log_dir=self.tmp / "logs",
            settings=self.settings,
            report=self.messages.append,
        )
        r._process = lambda urls: {"products": [product]}  # type: ignore[method-assign]
        return r

    def record(self, key: str = "A") -> dict:
        return json.loads((self.tmp / "state" / "jobs" / f"{key}.json").read_text())

    @property
    def created(self) -> int:
        return len(self.canvas.jobs_by_id)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    import seasonal_c2rcc.clip

    monkeypatch.setattr(backend, "verify_c2rcc_netcdf", fake_verify)
    monkeypatch.setattr(seasonal_c2rcc.clip, "source_product", fake_source_product)
    w = World(tmp_path)
    yield w
    w.ledger.close()


def test_clean_run_submits_once_and_reattaches(world: World) -> None:
    out = world.runner().run()
    assert Path(out["P_A"]).read_text() == "product=P_A"
    assert world.record()["state"] == "downloaded" and world.created == 1
    world.runner().run()  # nothing to do: no new submission
    assert world.canvas.submits == 1


def test_lost_reply_adopts_the_created_job(world: World) -> None:
    world.canvas.plan.append("lost")
    world.runner().run()
    rec = world.record()
    assert world.created == 1 and world.canvas.submits == 1
    assert rec["state"] == "downloaded" and rec["attempts"][0]["adopted"]
    assert not world.ledger.open_submissions("eocanvas")


def test_lost_reply_with_a_corrupt_sibling_record_adopts_nothing(world: World) -> None:
    """A record that cannot be read may own the job the lost reply seems to have created:
    reconciliation stops with the file and the fix instead of adopting a job it may not own."""
    from seasonal_c2rcc.errors import StateError

    world.runner("B").run()
    (world.tmp / "state" / "jobs" / "B.json").write_text('{"key": "B", "sta')
    world.canvas.plan.append("lost")
    with pytest.raises(StateError, match="B.json is corrupt"):
        world.runner("A").run()
    assert world.created == 2, "the lost submission's job exists; nothing more was created"
    assert world.record("A")["remote_job_id"] is None


def test_5xx_without_a_job_waits_the_settle_time_then_submits_again(world: World) -> None:
    world.canvas.plan.append("5xx")
    t0 = world.clock()
    world.runner().run()
    # "no job" is only concluded after submit_settle; then the same attempt submits again
    assert world.canvas.jobs_by_id["job-1"].created - t0 >= 90.0
    assert world.canvas.submits == 2 and world.created == 1
    assert world.record()["state"] == "downloaded"


def test_repeated_5xx_without_a_job_stops_the_attempt(world: World) -> None:
    world.canvas.plan.extend(["5xx"] * 3)
    with pytest.raises(TransientBackendError, match="3 submissions in a row"):
        world.runner().run()
    assert world.record()["state"] == "ordered" and world.created == 0
    assert not world.ledger.open_submissions("eocanvas")
    world.runner().run()
    assert world.canvas.submits == 4 and world.created == 1


def test_429_waits_exactly_the_given_reset_plus_jitter(world: World) -> None:
    world.canvas.plan.append("429:9")
    t0 = world.clock()
    world.runner().run()
    assert world.canvas.submits == 2 and world.created == 1
    # the second POST happened at reset + jitter (9 + 0.5 s), not after a guessed interval
    first_poll_at = world.canvas.jobs_by_id["job-1"].created
    assert first_poll_at - t0 == pytest.approx(9.5)


def test_permanent_failure_costs_one_job_and_is_not_retried(world: World) -> None:
    world.canvas.job_script.append(["running", "failed"])
    world.canvas.job_logs.append(UNKNOWN_ELEMENT_LOG)
    with pytest.raises(JobFailedError, match="Unknown element 'fooBar'") as err:
        world.runner().run()
    rec = world.record()
    assert rec["state"] == "rejected" and err.value.log_path == rec["log"]
    assert any("REJECTED" in m and rec["log"] in m for m in world.messages)
    with pytest.raises(JobFailedError, match="reset-job A"):
        world.runner().run()
    assert world.created == 1 and world.canvas.submits == 1


def test_transient_failure_retries_with_backoff_then_gives_up(world: World) -> None:
    for _ in range(3):
        world.canvas.job_script.append(["running", "failed"])
        world.canvas.job_logs.append(OOM_LOG)
    for attempt in range(3):
        with pytest.raises(JobFailedError):
            world.runner().run()
        assert world.record()["state"] == ("gave_up" if attempt == 2 else "failed")
    assert world.created == 3
    assert 60.0 in world.clock.sleeps and 120.0 in world.clock.sleeps  # back-off 60 s, 120 s
    with pytest.raises(JobFailedError, match="gave up"):
        world.runner().run()
    assert world.created == 3


@pytest.mark.parametrize("can_cancel", [True, False])
def test_stuck_job_is_cancelled_before_a_new_attempt(world: World, can_cancel: bool) -> None:
    world.canvas.can_cancel = can_cancel
    world.canvas.job_script.append(["running"])  # never leaves running
    with pytest.raises(JobFailedError, match="stuck"):
        world.runner().run()
    rec = world.record()
    assert world.canvas.cancels == ["job-1"]
    assert rec["attempts"][0]["stuck"] == ("cancelled" if can_cancel else "abandoned")
    assert rec["state"] == "failed"
    world.runner().run()  # the next attempt is a new job
    assert world.created == 2 and world.record()["state"] == "downloaded"


def test_corrupt_download_is_fetched_again_without_a_new_job(world: World) -> None:
    world.canvas.job_script.append(["successful"])
    world.runner()  # create record lazily
    world.canvas.plan.append("ok")
    r = world.runner()
    # the first download delivers garbage
    orig_create = world.canvas._create

    def corrupt_once(process):  # type: ignore[no-untyped-def]
        job = orig_create(process)
        job.corrupt = 1
        return job

    world.canvas._create = corrupt_once  # type: ignore[method-assign]
    with pytest.raises(OutputError):
        r.run()
    assert world.record()["state"] == "successful"
    world.runner().run()
    assert world.created == 1 and world.record()["state"] == "downloaded"


def test_swapped_records_detach_and_reconcile_without_hand_edits(world: World) -> None:
    """Records left swapped by the old creation-time matching: each holds the other's job."""
    a, b = world.runner("A"), world.runner("B")
    ja = world.canvas._create({"products": ["P_A"]})
    world.clock.sleep(0.2)
    jb = world.canvas._create({"products": ["P_B"]})
    for r, job, other in ((a, jb, ja), (b, ja, jb)):
        r.rec["orders"] = {r.spec.products[0]["key"]: {"download_id": "d", "ordered_at": "x"}}
        r.rec["attempts"] = [{"remote_job_id": job.job_id, "status": None}]
        r._save(state="successful", remote_job_id=job.job_id, intent_at=other.created - 0.1)
    out_a = world.runner("A").run()
    out_b = world.runner("B").run()
    assert Path(out_a["P_A"]).read_text() == "product=P_A"
    assert Path(out_b["P_B"]).read_text() == "product=P_B"
    assert world.record("A")["detached"] == [jb.job_id]
    assert world.record("B")["detached"] == [ja.job_id]
    assert world.record("B")["remote_job_id"] == jb.job_id  # B adopted what A let go
    # A found its own job held by B and paid for one more: the price of a legacy swap
    assert world.created == 3


def test_stale_foreign_open_submission_is_settled_before_submitting(world: World) -> None:
    """A's reply was lost and its process died before reconciling: B waits for A's POST to be
    over, settles it for A (the ledger keeps the outcome), then submits; A adopts its job."""
    world.canvas.plan.append("lost")
    a = world.runner("A")
    jobs = world.canvas.jobs
    world.canvas.jobs = lambda: (_ for _ in ()).throw(TransientBackendError("list down"))  # type: ignore[method-assign]
    with pytest.raises(TransientBackendError):
        a.run()
    world.canvas.jobs = jobs  # type: ignore[method-assign]
    assert [o.key for o in world.ledger.open_submissions("eocanvas")] == ["A"]
    world.runner("B").run()
    assert not world.ledger.open_submissions("eocanvas")
    world.runner("A").run()
    assert world.record("A")["remote_job_id"] == "job-1"
    assert world.record("B")["remote_job_id"] == "job-2"
    assert world.created == 2 and world.canvas.submits == 2


def test_ambiguous_lost_submission_stops_with_the_commands(world: World) -> None:
    world.canvas.plan.append("lost")
    world.canvas._create({"products": ["foreign"]})  # a job from another tool, same moment
    with pytest.raises(BackendError, match="seasonal-c2rcc remote-jobs"):
        world.runner().run()
    assert world.created == 2


# -- every entry state x every failure ------------------------------------------------------

ENTRY_STATES = [
    "new", "ordered", "submitting_created", "submitting_none", "submitted", "running",
    "successful", "failed",
]  # fmt: skip
FAILURES = ["none", "lost", "5xx", "429", "fail_permanent", "fail_transient", "stuck", "corrupt"]


def _enter(world: World, state: str) -> Any:
    """Put record A in ``state`` as a crash or an earlier run would leave it; returns the job
    that already exists for it (None if none)."""
    r = world.runner()
    r.rec["orders"] = {"P_A": {"download_id": "d0", "ordered_at": "2026-01-01T00:00:00Z"}}
    if state == "new":
        return None
    if state == "ordered":
        r._save(state="ordered")
        return None
    if state.startswith("submitting"):
        world.ledger.open_submission("eocanvas", "A", settle=90.0)
        (own,) = world.ledger.open_submissions("eocanvas")
        r._save(state="submitting", intent_at=own.intent_at)
        if state == "submitting_created":
            world.clock.sleep(0.5)
            return world.canvas._create({"products": ["P_A"]})
        return None
    job = world.canvas._create({"products": ["P_A"]})
    if state == "failed":
        job.statuses = deque(["failed"])
        job.log = OOM_LOG
        r.rec["attempts"] = [{"remote_job_id": job.job_id, "status": "failed"}]
        r._save(state="failed", remote_job_id=job.job_id, log="x.log")
        return None  # that job is over; the failure meets the next one
    job.statuses = deque({"submitted": ["accepted", "successful"], "running": ["running",
                          "successful"], "successful": ["successful"]}[state])  # fmt: skip
    r.rec["attempts"] = [{"remote_job_id": job.job_id, "status": None}]
    r._save(state=state, remote_job_id=job.job_id)
    return job


def _inject(world: World, failure: str, job: Any) -> None:
    """The failure meets ``job`` (the record's current job) or, without one, the next job."""
    c = world.canvas
    script = {
        "fail_permanent": (["running", "failed"], UNKNOWN_ELEMENT_LOG),
        "fail_transient": (["running", "failed"], OOM_LOG),
        "stuck": (["running"], None),
    }.get(failure)
    if failure in ("lost", "5xx"):
        c.plan.append(failure)
    elif failure == "429":
        c.plan.append("429:9")
    elif script is not None and job is not None:
        job.statuses = deque(script[0])
        job.log = script[1] or job.log
    elif script is not None:
        c.job_script.append(script[0])
        c.job_logs.append(script[1] or "[INFO] - Job finished successfully")
    elif failure == "corrupt" and job is not None:
        job.corrupt = 1
    elif failure == "corrupt":
        orig = c._create

        def corrupt_first(process):  # type: ignore[no-untyped-def]
            new = orig(process)
            new.corrupt = 1
            c._create = orig  # type: ignore[method-assign]
            return new

        c._create = corrupt_first  # type: ignore[method-assign]


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("state", ENTRY_STATES)
def test_every_state_meets_every_failure(world: World, state: str, failure: str) -> None:
    """Re-run as Snakemake would until the job is done or refused: never a duplicate job, never
    a lock left behind, never the wrong product, never a state that needs a hand edit."""
    existing_job = _enter(world, state)
    existing = world.created
    _inject(world, failure, existing_job)
    out = None
    for _ in range(6):
        try:
            out = world.runner().run()
            break
        except (JobFailedError, TransientBackendError, OutputError):
            if world.record()["state"] in ("rejected", "gave_up"):
                break
    rec = world.record()
    assert not world.ledger.open_submissions("eocanvas")
    has_job = existing_job is not None
    if failure == "fail_permanent":
        assert rec["state"] == "rejected" and out is None
        assert world.created == existing + (0 if has_job else 1)  # paid once, not retried
        return
    assert rec["state"] == "downloaded", rec
    assert out is not None and Path(out["P_A"]).read_text() == "product=P_A"
    # jobs created: one if none existed, plus one more after a transient failure or a stuck job
    retried = failure in ("fail_transient", "stuck")
    assert world.created == existing + (0 if has_job else 1) + retried, (state, failure)
