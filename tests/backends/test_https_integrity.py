"""Remote-job integrity over https, through the unmodified eocanvas and hda clients.

The emulator serves https (``tls=True``) with a self-signed certificate the clients trust through
``REQUESTS_CA_BUNDLE``, so the eocanvas client's https-only retry adapter (which repeats POSTs on
5xx) is in the path, as in production. Each test counts what a user pays for: jobs created on the
emulator.
"""

from __future__ import annotations

import json
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from seasonal_c2rcc.backends.base import JobSpec
from seasonal_c2rcc.emulator import EmulatorServer, FaultConfig
from seasonal_c2rcc.errors import JobFailedError

REPO = Path(__file__).resolve().parents[2]
GRAPH = (REPO / "graphs" / "s2_c2rcc.xml").read_text()
FAST = {"accept_delay": 0.05, "job_duration": 0.2, "order_ready_polls": 0}


@pytest.fixture
def tls_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., EmulatorServer]]:
    """Start https emulators whose certificate the clients trust; credentials in the env."""
    import hda.api

    from seasonal_c2rcc.emulator import jobs

    # hda sleeps 10 s before a retry; the emulator's result writer is not thread-safe (HDF5)
    monkeypatch.setattr(
        hda.api, "time", types.SimpleNamespace(time=__import__("time").time, sleep=lambda s: None)
    )
    lock = threading.Lock()
    write = jobs.write_output

    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return write(*args, **kwargs)

    monkeypatch.setattr(jobs, "write_output", locked)
    monkeypatch.setenv("HDA_USER", "tester")
    monkeypatch.setenv("HDA_PASSWORD", "secret")
    started: list[EmulatorServer] = []

    def make(**faults: Any) -> EmulatorServer:
        emu = EmulatorServer(
            tmp_path / f"emu{len(started)}",
            faults=FaultConfig(**{**FAST, **faults}),
            max_output_pixels=50_000_000,
            tls=True,
        ).start()
        assert emu.url.startswith("https://") and emu.ca_path is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emu.ca_path))
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


def campaign(
    emu: EmulatorServer, tmp: Path, images: int, **eocanvas: Any
) -> tuple[Any, list[JobSpec]]:
    """The 30UUA summer-2020 jobs (per-product packing) against ``emu``, frozen catalogue."""
    from seasonal_c2rcc.catalogue import search_season
    from seasonal_c2rcc.config import load_campaign, validate_schema
    from seasonal_c2rcc.wekeo import Credentials, Endpoints, hda_client
    from seasonal_c2rcc.workflow import job_spec, season_plan

    # one 10 km sub-tile: small results, so the emulator answers fast
    grid = tmp / "grid.json"
    grid.parent.mkdir(parents=True, exist_ok=True)
    full = json.loads((REPO / "config" / "subtiles" / "30UUA_utm.json").read_text())
    grid.write_text(json.dumps({"30UUA": full["30UUA"][:1]}))
    config = validate_schema({
        "subtiles": str(grid), "subtiles_crs": "EPSG:32630",
        "years": [2020], "cloud_cover_max": 40, "images_per_season": images, "resolution": 60,
        "wekeo": {"hda_url": emu.hda_url, "eocanvas_url": emu.eocanvas_url,
                  "eocanvas_token_url": emu.token_url, "http_timeout": 20},
        "eocanvas": {"poll_interval": 0.05, "poll_max_interval": 0.2, "retry_backoff": 0.05,
                     **eocanvas},
        "quota": {"ledger": str(tmp / "state" / "quota.sqlite")},
    })  # fmt: skip
    c = load_campaign(config, REPO)
    client = hda_client(
        Endpoints.from_config(config["wekeo"]), Credentials("tester", "secret"), timeout=20
    )
    doc = search_season(c, "30UUA", 2020, "summer", client=client)
    path = tmp / "catalog" / "summer.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    specs = [job_spec(c, path, j.key, GRAPH) for j in season_plan(c, path)]
    return config, specs


def run(spec: JobSpec, config: dict[str, Any], tmp: Path, messages: list[str] | None = None) -> Any:
    from seasonal_c2rcc.backends.eocanvas import run_job

    return run_job(
        spec,
        config,
        state_dir=tmp / "state",
        out_dir=tmp / "jobs",
        log_dir=tmp / "logs",
        report=(messages.append if messages is not None else lambda m: None),
    )


def submissions(emu: EmulatorServer) -> list[dict[str, Any]]:
    return [s for s in emu.accounting()["submissions"] if s.get("accepted")]


def check_records(tmp: Path, emu: EmulatorServer) -> int:
    """Every record's remote job computed that record's products; returns the number of swaps."""
    made = {s["job_id"]: s["products"] for s in submissions(emu)}
    swaps = 0
    for f in (tmp / "state" / "jobs").glob("*.json"):
        rec = json.loads(f.read_text())
        want = [p + ".SAFE" if not p.endswith(".SAFE") else p for p in rec["products"]]
        got = made[rec["remote_job_id"]]
        swaps += sorted(got) != sorted(want)
    return swaps


@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_504_after_create_never_creates_extra_jobs(
    tls_emulator, tmp_path: Path, rate: float
) -> None:
    emu = tls_emulator(submit_5xx_after_create_rate=rate, quota_enabled=False)
    config, specs = campaign(emu, tmp_path, images=2)
    assert len(specs) >= 2
    for spec in specs:
        out = run(spec, config, tmp_path)
        assert sorted(out) == spec.product_keys
    acc = emu.accounting()
    assert acc["counters"]["jobs_created"] == len(specs)  # jobs created == jobs needed
    if rate == 1.0:
        assert len(
            [f for f in acc["faults_injected"] if f["kind"] == "submit_5xx_after_create"]
        ) == len(specs)
    assert check_records(tmp_path, emu) == 0


@pytest.mark.slow
def test_concurrent_lost_replies_never_swap_records(tls_emulator, tmp_path: Path) -> None:
    """Two job processes submit at once, every reply is lost, 20 trials: 0 swaps, 0 extra jobs.

    Each trial is a fresh campaign on its own account (the emulator lists jobs per user). Before
    this change the https client re-sent each POST 5 times and reconciliation matched by
    creation time (swapped in 2 of 3 trials)."""
    import os
    import subprocess
    import sys

    emu = tls_emulator(submit_5xx_after_create_rate=1.0, quota_enabled=False)
    config, specs = campaign(emu, tmp_path / "plan", images=2)
    catalogue = tmp_path / "plan" / "catalog" / "summer.json"
    worker = Path(__file__).with_name("job_worker.py")
    swaps = 0
    for trial in range(20):
        work = tmp_path / f"t{trial}"
        work.mkdir()
        cfg = {
            **config,
            "quota": {**config["quota"], "ledger": str(work / "state" / "quota.sqlite")},
        }
        env = {**os.environ, "HDA_USER": f"trial{trial}"}
        procs = []
        for spec in specs[:2]:
            task = work / f"{spec.key}.task.json"
            task.write_text(json.dumps({"config": cfg, "catalogue": str(catalogue),
                                        "key": spec.key, "work": str(work)}))  # fmt: skip
            procs.append(subprocess.Popen(
                [sys.executable, str(worker), str(task)], env=env, cwd=REPO,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            ))  # fmt: skip
        for p in procs:
            out, _ = p.communicate(timeout=300)
            result = json.loads(out.strip().splitlines()[-1])
            assert "outputs" in result, result
        swaps += check_records(work, emu)
    assert swaps == 0
    assert emu.accounting()["counters"]["jobs_created"] == 2 * 20


def test_permanent_error_costs_one_job(tls_emulator, tmp_path: Path) -> None:
    emu = tls_emulator(quota_enabled=False)
    config, specs = campaign(emu, tmp_path, images=1)
    bad = specs[0].graph.replace("<netSet>", "<fooBar>1</fooBar><netSet>")
    spec = JobSpec(**{**specs[0].__dict__, "graph": bad})
    messages: list[str] = []
    for _ in range(3):  # as Snakemake's retries and reruns would
        with pytest.raises(JobFailedError, match="Unknown element 'fooBar'"):
            run(spec, config, tmp_path, messages)
    assert emu.accounting()["counters"]["jobs_created"] == 1
    rec = json.loads((tmp_path / "state" / "jobs" / f"{spec.key}.json").read_text())
    assert rec["state"] == "rejected"
    (line,) = [m for m in messages if "REJECTED" in m]
    assert "Unknown element 'fooBar'" in line and rec["log"] in line


def test_stuck_job_is_dismissed_on_the_service(tls_emulator, tmp_path: Path) -> None:
    emu = tls_emulator(stuck_job_rate=1.0, quota_enabled=False)
    config, specs = campaign(emu, tmp_path, images=1, job_timeout=1.0)
    with pytest.raises(JobFailedError, match="stuck"):
        run(specs[0], config, tmp_path)
    acc = emu.accounting()
    assert acc["counters"]["jobs_dismissed"] == 1
    (sub,) = submissions(emu)
    assert [d["job_id"] for d in acc["dismissals"]] == [sub["job_id"]]
    rec = json.loads((tmp_path / "state" / "jobs" / f"{specs[0].key}.json").read_text())
    assert rec["attempts"][0]["stuck"] == "cancelled" and rec["state"] == "failed"


def test_429_waits_for_the_reset_the_service_gives(tls_emulator, tmp_path: Path) -> None:
    """The emulator allows 1 job per 'hour' of 6 s; our ledger thinks 10 per real hour, so the
    second submission meets a 429 whose X-Quota-Reset is all there is to go by."""
    import time

    from seasonal_c2rcc import wekeo
    from seasonal_c2rcc.backends.eocanvas import JobRunner, Settings
    from seasonal_c2rcc.quota import QuotaLedger, QuotaLimits

    emu = tls_emulator(eocanvas_jobs_per_hour=1, time_scale=600.0)
    config, specs = campaign(emu, tmp_path, images=2)
    endpoints = wekeo.Endpoints.from_config(config["wekeo"])
    creds = wekeo.Credentials("tester", "secret")
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        time.sleep(min(s, 10.0))  # the code before this change asked for 360 s

    settings = Settings(poll_interval=0.05, poll_max_interval=0.2)
    settings.jitter = lambda: 0.25  # a fixed jitter, to compare with the service's reset
    with QuotaLedger(tmp_path / "q.sqlite", QuotaLimits(), sleep=sleep) as ledger:
        for spec in specs[:2]:
            JobRunner(
                spec,
                hda=wekeo.hda_client(endpoints, creds, timeout=20),
                canvas=wekeo.EOCanvas(endpoints, creds, timeout=20),
                ledger=ledger,
                dataset_id=config["wekeo"]["dataset_id"],
                state_dir=tmp_path / "state",
                out_dir=tmp_path / "jobs",
                log_dir=tmp_path / "logs",
                settings=settings,
                report=lambda m: None,
            ).run()
    acc = emu.accounting()
    (denial,) = acc["quota_denials"]
    second = submissions(emu)[-1]
    # the retry went out at the service's reset plus the jitter, not a guessed interval
    assert denial["reset"] + 0.25 <= second["time"] <= denial["reset"] + 0.25 + 1.0
    assert sum(waits) == pytest.approx(denial["reset"] + 0.25 - denial["time"], abs=0.5)
    assert acc["counters"]["jobs_created"] == 2


def test_emulator_cli_serves_https_with_its_certificate(tmp_path: Path) -> None:
    """``python -m seasonal_c2rcc.emulator --tls``: https only, trusted through its certificate."""
    import subprocess
    import sys

    import requests

    proc = subprocess.Popen(
        [sys.executable, "-m", "seasonal_c2rcc.emulator", "--tls", "--port", "0",
         "--state-dir", str(tmp_path / "emu")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on https://127.0.0.1:"), line
        url = line.removeprefix("listening on ")
        cert = tmp_path / "emu" / "tls" / "cert.pem"
        assert requests.get(f"{url}/admin/health", verify=str(cert), timeout=10).json()["ok"]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/admin/health", verify=True, timeout=10)  # system CAs only
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0
