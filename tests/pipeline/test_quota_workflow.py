"""Quota pacing under real Snakemake: 429 storms, concurrent workflows, the monthly stop."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from seasonal_c2rcc.emulator import FaultConfig
from seasonal_c2rcc.quota import max_in_window

from .harness import composites, env, run, snakemake_cmd, write_config
from .test_workflow import assert_no_duplicate_work, submitted

pytestmark = pytest.mark.slow

SUMMER = {"summer": {"start": "06-01", "end": "08-31"}}


def test_a_429_storm_is_waited_out_with_no_failed_job_and_no_duplicate(emulator_factory, tmp_path):
    # The server allows 2 jobs per "hour" (5 s); the ledger believes 10 are allowed, so the
    # server's 429s (with X-Quota-Reset) are what paces the run.
    emu = emulator_factory(
        faults=FaultConfig(
            accept_delay=0.1, job_duration=0.3, eocanvas_jobs_per_hour=2, time_scale=720
        )
    )
    cfg = write_config(
        tmp_path, emu.url, seasons=SUMMER, packing="per-subtile", images_per_season=2,
        quota={"eocanvas_per_hour": 10, "time_scale": 720}, eocanvas={"retries": 0},
    )  # fmt: skip
    r = run(tmp_path, cfg, "--cores", "8", *composites([2019], ["summer"]))
    assert r.returncode == 0, r.stderr[-4000:]
    acc = emu.accounting()
    assert acc["quota_denials"], "the server must have refused some submissions"
    n_jobs = len(list((tmp_path / "results/state/jobs").glob("*.json")))
    assert n_jobs >= 3 and len(submitted(emu)) == n_jobs
    assert_no_duplicate_work(emu)
    assert "refused the request (quota)" in r.stdout + r.stderr


def test_three_workflows_sharing_one_ledger_never_exceed_the_rate(emulator_factory, tmp_path):
    emu = emulator_factory(
        faults=FaultConfig(
            accept_delay=0.1, job_duration=0.2, eocanvas_jobs_per_hour=3, time_scale=720
        )
    )
    ledger = tmp_path / "shared-quota.sqlite"
    procs = []
    for i, year in enumerate((2019, 2020, 2021)):
        wd = tmp_path / f"campaign{i}"
        cfg = write_config(
            wd, emu.url, years=[year], seasons=SUMMER, images_per_season=2,
            quota={"eocanvas_per_hour": 3, "time_scale": 720, "ledger": str(ledger)},
        )  # fmt: skip
        procs.append(
            subprocess.Popen(
                snakemake_cmd(wd, cfg, "--cores", "4", *composites([year], ["summer"])),
                env=env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-2000:] for o in outs)
    times = [s["time"] for s in submitted(emu)]
    assert len(times) >= 6
    assert max_in_window(times, 3600 / 720) <= 3
    assert emu.accounting()["quota_denials"] == [], (
        "the shared ledger kept every run under the limit"
    )
    assert "waiting for an EOCanvas slot" in "".join(outs)
    assert_no_duplicate_work(emu)


def test_monthly_limit_stops_cleanly_and_work_resumes_later(emulator_factory, tmp_path):
    month_s = 45.0
    scale = 30 * 86400 / month_s
    emu = emulator_factory(
        faults=FaultConfig(
            accept_delay=0.1,
            job_duration=0.2,
            eocanvas_jobs_per_month=2,
            eocanvas_jobs_per_hour=100,
            time_scale=scale,
        )
    )
    cfg = write_config(
        tmp_path, emu.url, seasons=SUMMER, packing="per-subtile", images_per_season=2,
        quota={"eocanvas_per_month": 2, "eocanvas_per_hour": 100, "time_scale": scale},
        eocanvas={"retries": 0},
    )  # fmt: skip
    targets = composites([2019], ["summer"])
    first = run(tmp_path, cfg, "--cores", "4", *targets)
    assert first.returncode != 0
    out = first.stdout + first.stderr
    assert "month" in out and "resum" in out.lower()
    assert len(submitted(emu)) == 2
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/state/jobs").glob("*.json")]
    assert sum(r["state"] == "downloaded" for r in records) == 2
    # the window frees one "month" after the submissions that filled it
    time.sleep(max(0.0, max(s["time"] for s in submitted(emu)) + month_s + 1 - time.time()))
    second = run(tmp_path, cfg, "--cores", "4", *targets)
    # as many jobs as the new window allows; the campaign needs at most 4 here
    total_jobs = len(list((tmp_path / "results/state/jobs").glob("*.json")))
    if total_jobs > 4:
        pytest.fail(f"unexpected plan size {total_jobs}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(submitted(emu)) == total_jobs
    assert_no_duplicate_work(emu)
