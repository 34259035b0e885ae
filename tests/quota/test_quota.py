"""Quota ledger: limits per rolling window, waiting, 429 handling, monthly stop and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seasonal_c2rcc.errors import MonthlyQuotaExhausted, QuotaError
from seasonal_c2rcc.quota import (
    QuotaLedger,
    QuotaLimits,
    ideal_makespan,
    max_in_window,
)

REPO = Path(__file__).resolve().parents[2]
T0 = 1_780_000_000.0  # 2026-05-28, an arbitrary fixed epoch


class FakeClock:
    """A clock whose sleep() advances time instantly (records every sleep)."""

    def __init__(self, t: float = T0) -> None:
        self.t = t
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.t += dt


def ledger(tmp_path: Path, clock: FakeClock, **limits: object) -> QuotaLedger:
    return QuotaLedger(
        tmp_path / "quota.sqlite",
        QuotaLimits(**limits),  # type: ignore[arg-type]
        clock=clock.time,
        sleep=clock.sleep,
    )


def test_eleventh_submission_waits_for_the_first_to_leave_the_hour(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock)
    for i in range(10):
        clock.t = T0 + 60 * i  # one submission a minute
        assert led.acquire("eocanvas", f"j{i}").at == clock.t
    clock.t = T0 + 900
    messages: list[tuple[float, str]] = []
    res = led.acquire("eocanvas", "j10", on_wait=lambda s, m: messages.append((s, m)))
    # The slot frees exactly one hour after the first submission, not a moment earlier.
    assert res.at == pytest.approx(T0 + 3600)
    assert messages[0][0] == pytest.approx(2700)
    assert "starts at 2026-05-28 21:26:40 UTC" in messages[0][1]
    assert "10/10 used this hour" in messages[0][1]
    assert "10/100 this month" in messages[0][1]
    times = [t for _, t in led.events("eocanvas")]
    assert max_in_window(times, 3600) == 10


def test_release_gives_the_slot_back_and_block_holds_everyone(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock, eocanvas_per_hour=2)
    a = led.acquire("eocanvas", "a")
    led.acquire("eocanvas", "b")
    assert led.usage("eocanvas").used_hour == 2
    led.release(a)  # e.g. the POST never reached the server
    assert led.usage("eocanvas").used_hour == 1
    led.block("eocanvas", T0 + 500)  # server said 429, X-Quota-Reset = T0 + 500
    led.block("eocanvas", T0 + 100)  # an earlier reset never shortens the block
    u = led.usage("eocanvas")
    assert u.blocked_until == T0 + 500 and u.next_free_at == T0 + 500
    assert led.acquire("eocanvas", "c").at == pytest.approx(T0 + 500)


def test_monthly_stop_then_resume(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock, eocanvas_per_hour=10, eocanvas_per_month=25)
    for i in range(25):
        led.acquire("eocanvas", f"j{i}")
    first = led.events("eocanvas")[0][1]
    with pytest.raises(MonthlyQuotaExhausted) as err:
        led.acquire("eocanvas", "j25")
    month = 30 * 86400
    assert err.value.resume_at == pytest.approx(first + month)
    assert "no new submission before 2026-06-27" in str(err.value)
    assert "run the workflow again" in str(err.value)
    # A clean stop: nothing was recorded and nobody is left in the queue.
    u = led.usage("eocanvas")
    assert (u.used_month, u.waiting) == (25, 0)
    # Next run, after the resume time: submissions start again and the hour limit still holds.
    clock.t = err.value.resume_at
    assert led.acquire("eocanvas", "j25").at == pytest.approx(first + month)


def test_server_reset_beyond_the_hour_stops_like_the_monthly_limit(tmp_path: Path) -> None:
    # The account's month was used up elsewhere: the ledger has room, the server says 429 until
    # a date 9 days away. The job must stop with that date, not sleep for 9 days.
    clock = FakeClock()
    led = ledger(tmp_path, clock)
    server_reset = T0 + 9 * 86400

    def refuse() -> str:
        raise QuotaRefused(server_reset)

    with pytest.raises(MonthlyQuotaExhausted) as err:
        led.paced_call("eocanvas", "p0", refuse, quota_reset=_reset)
    assert err.value.resume_at == server_reset
    assert "refused submissions until 2026-06-06" in str(err.value)
    assert clock.sleeps == []
    assert led.usage("eocanvas").used_hour == 0  # the refused slot was given back


def test_month_window_that_frees_within_the_hour_is_waited_for(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock, eocanvas_per_hour=10, eocanvas_per_month=3)
    for i in range(3):
        clock.t = T0 + 3600 * i
        led.acquire("eocanvas", f"j{i}")
    clock.t = T0 + 30 * 86400 - 600  # the oldest leaves the month in 10 minutes
    assert led.acquire("eocanvas", "j3").at == pytest.approx(T0 + 30 * 86400)


def test_max_wait_raises_quota_error_with_resume_time(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock, eocanvas_per_hour=1)
    led.acquire("eocanvas", "a")
    with pytest.raises(QuotaError) as err:
        led.acquire("eocanvas", "b", max_wait=60)
    assert not isinstance(err.value, MonthlyQuotaExhausted)
    assert err.value.resume_at == pytest.approx(T0 + 3600)
    assert clock.sleeps == []


def test_hda_reorder_of_same_item_is_not_counted(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock, hda_orders_per_hour=3)
    first = led.acquire("hda_order", "P1")
    again = led.acquire("hda_order", "P1")
    assert first.counted and not again.counted
    led.release(again)  # releasing a non-counted re-order must not free P1's slot
    led.acquire("hda_order", "P2")
    led.acquire("hda_order", "P3")
    assert led.usage("hda_order").used_hour == 3
    assert led.usage("hda_order").limit_month is None
    assert led.acquire("hda_order", "P2").counted is False  # still free: already ordered
    assert led.acquire("hda_order", "P4").at == pytest.approx(T0 + 3600)
    # After the window, P1 counts again (it left the window).
    clock.t = T0 + 3601
    assert led.acquire("hda_order", "P1").counted


def test_time_scale_shrinks_both_windows(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock, eocanvas_per_hour=2, eocanvas_per_month=4, time_scale=3600)
    ats = [led.acquire("eocanvas", f"j{i}").at - T0 for i in range(4)]
    assert ats == pytest.approx([0, 0, 1, 1])  # an "hour" lasts 1 s
    with pytest.raises(MonthlyQuotaExhausted) as err:
        led.acquire("eocanvas", "j4")
    assert err.value.resume_at == pytest.approx(T0 + 720)  # a "month" lasts 720 s


class StormServer:
    """Fake EOCanvas POST endpoint: its own rolling-hour quota (stamped on receipt, after a network
    latency), plus 429 "storms" that refuse a request regardless of the quota."""

    def __init__(self, clock: FakeClock, per_hour: int, latency: float, storm: set[int]) -> None:
        self.clock, self.per_hour, self.latency, self.storm = clock, per_hour, latency, storm
        self.accepted: list[tuple[str, float]] = []
        self.calls = 0
        self.refused = 0

    def post(self, key: str) -> str:
        self.calls += 1
        self.clock.t += self.latency  # the request reaches the server later than the ledger time
        now = self.clock.t
        in_hour = [t for _, t in self.accepted if t > now - 3600]
        if self.calls in self.storm or len(in_hour) >= self.per_hour:
            self.refused += 1
            raise QuotaRefused(now + 300.0 if self.calls % 2 else None)
        self.accepted.append((key, now))
        self.clock.t += self.latency
        return f"job-{key}"


class QuotaRefused(Exception):
    def __init__(self, reset: float | None) -> None:
        super().__init__("Quota exceeded")
        self.reset = reset


def _reset(exc: BaseException) -> float | None | bool:
    return exc.reset if isinstance(exc, QuotaRefused) else False


def test_429_storm_is_waited_out_without_failure_or_duplicate(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock)
    server = StormServer(clock, per_hour=10, latency=0.5, storm=set(range(3, 40, 3)))
    waits: list[str] = []
    done = {
        k: led.paced_call(
            "eocanvas", k, lambda k=k: server.post(k), quota_reset=_reset,
            on_wait=lambda s, m: waits.append(m),
        )
        for k in (f"p{i}" for i in range(25))
    }
    assert done == {f"p{i}": f"job-p{i}" for i in range(25)}
    keys = [k for k, _ in server.accepted]
    assert len(keys) == len(set(keys)) == 25  # every job once, none twice
    assert server.refused >= 10
    assert any("refused the request (quota)" in m for m in waits)
    # The ledger keeps only accepted submissions, so it never over-counts what the server counts.
    assert sorted(k for k, _ in led.events("eocanvas")) == sorted(keys)
    assert max_in_window([t for _, t in server.accepted], 3600) <= 10


def test_confirmed_reply_time_avoids_429_at_window_edge(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock)
    server = StormServer(clock, per_hour=10, latency=2.0, storm=set())
    for i in range(35):
        led.paced_call("eocanvas", f"p{i}", lambda i=i: server.post(f"p{i}"), quota_reset=_reset)
    assert server.refused == 0  # the server stamps later than the ledger; confirm() covers that
    assert len(server.accepted) == 35


def test_other_errors_propagate_and_keep_the_slot(tmp_path: Path) -> None:
    clock = FakeClock()
    led = ledger(tmp_path, clock)

    def boom() -> str:
        raise ConnectionError("reset by peer after the request was sent")

    with pytest.raises(ConnectionError):
        led.paced_call("eocanvas", "x", boom, quota_reset=_reset)
    # The POST may have created the job: the slot stays used rather than risk a second job.
    assert led.usage("eocanvas").used_hour == 1


def _run_workers(db: Path, n_proc: int, n_each: int, scale: float, hour: int, month: int):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(Path(__file__).with_name("ledger_worker.py")), str(db)]
    procs = [
        subprocess.Popen(
            [*cmd, str(n_each), str(scale), str(hour), str(month)],
            stdout=subprocess.PIPE, text=True, env=env,
        )
        for _ in range(n_proc)
    ]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        out.append([json.loads(line) for line in stdout.splitlines()])
    return out


def test_three_processes_racing_never_exceed_the_hourly_limit(tmp_path: Path) -> None:
    # time_scale 7200: an "hour" is 0.5 s; 3 processes x 7 submissions at 4 per window.
    db = tmp_path / "quota.sqlite"
    out = _run_workers(db, n_proc=3, n_each=7, scale=7200, hour=4, month=1000)
    ats = [r["at"] for rows in out for r in rows]
    assert len(ats) == 21
    assert max_in_window(ats, 0.5) <= 4
    with QuotaLedger(db, QuotaLimits(4, 1000, time_scale=7200)) as led:
        recorded = [t for _, t in led.events("eocanvas")]
    assert sorted(recorded) == sorted(ats)
    # Pacing, not just limiting: 21 jobs at 4 per 0.5 s need 5 full windows and not much more.
    span = max(ats) - min(ats)
    assert ideal_makespan(21, QuotaLimits(4, 1000, time_scale=7200)) == pytest.approx(2.5)
    assert 2.5 <= span < 4.0


def test_processes_stop_cleanly_at_the_monthly_limit(tmp_path: Path) -> None:
    db = tmp_path / "quota.sqlite"
    out = _run_workers(db, n_proc=3, n_each=11, scale=7200, hour=20, month=10)
    ats = [r["at"] for rows in out for r in rows if "at" in r]
    stops = [r for rows in out for r in rows if "month" in r]
    assert len(ats) == 10  # exactly the monthly allowance, never more
    assert len(stops) == 3  # every process stopped with a message rather than failing
    resume = min(ats) + 30 * 86400 / 7200
    assert all(s["month"] == pytest.approx(resume) for s in stops)
    assert all("no new submission before" in s["msg"] for s in stops)


def test_ledger_path__one_file_for_every_process_that_orders_or_submits(tmp_path, monkeypatch):
    """Remote jobs, downloads and the remote-jobs command open the same ledger: the campaign's
    state folder, or quota.ledger with ~ expanded (one ledger per account across campaigns)."""
    from seasonal_c2rcc.quota import ledger_path

    monkeypatch.setenv("HOME", str(tmp_path))
    assert ledger_path({"ledger": None}) == Path("results/state/quota.sqlite")
    assert ledger_path({"ledger": None}, tmp_path / "state") == tmp_path / "state/quota.sqlite"
    assert ledger_path({"ledger": "~/wekeo/quota.sqlite"}) == tmp_path / "wekeo/quota.sqlite"
