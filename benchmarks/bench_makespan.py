"""Makespan of a batch of EOCanvas jobs against the emulator under a time-scaled quota (issue 4).

An in-process WEkEO emulator enforces the quota (10 jobs per rolling "hour", 100 per "month") with
the hour shortened by ``time_scale``. ``--workers`` OS processes (Snakemake's ``eocanvas_jobs``
concurrency) each run jobs through the project's backend (:func:`backends.eocanvas.run_job`: HDA
order, paced submission through the shared quota ledger, polling, download, verification), exactly
as ``scripts/remote_job.py`` does. Catalogues are searched on the emulator with ``hda``.

Printed, all measured in this run:

* makespan / (jobs / rate): wall time from the start until the last job is downloaded, divided by
  the quota-bound ideal of the issue (jobs / 10 per hour); target <= 1.05;
* submission span / greedy ideal: first to last accepted submission, divided by the shortest span the
  rolling windows allow ((jobs - 1) // 10 hours); this isolates the pacing overhead;
* 429 replies, and the most submissions the server saw in any rolling hour (must be <= 10).

Run: ``.venv/bin/python benchmarks/bench_makespan.py [--jobs 30 --workers 10 --hour 30]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.quota import QuotaLimits, ideal_makespan, max_in_window  # noqa: E402

_CAMPAIGN = None


def _init(config: dict, env: dict[str, str]) -> None:
    os.environ.update(env)
    global _CAMPAIGN
    from seasonal_c2rcc.config import load_campaign

    _CAMPAIGN = load_campaign(config, REPO)


def _run_one(args: tuple[str, str, str]) -> tuple[str, float, float]:
    """One Snakemake ``remote_job`` in a worker process: spec from the frozen catalogue, run it."""
    from seasonal_c2rcc.backends.eocanvas import run_job
    from seasonal_c2rcc.workflow import job_spec

    catalogue, key, work = args
    assert _CAMPAIGN is not None
    t0 = time.time()
    spec = job_spec(_CAMPAIGN, catalogue, key, (REPO / "graphs" / "s2_c2rcc.xml").read_text())
    out = run_job(spec, _CAMPAIGN.config, state_dir=Path(work) / "state",
                  out_dir=Path(work) / "jobs", log_dir=Path(work) / "logs",
                  report=lambda msg: None)  # fmt: skip
    assert out, key
    return key, t0, time.time()


def _serialise_emulator_writes() -> None:
    """The emulator writes result NetCDFs from its worker thread *and* from request threads; the
    bundled HDF5 is not thread-safe and two concurrent writes can crash the process (seen: segfault
    in libhdf5). Serialise them in this process (reported to the emulator's author)."""
    import threading

    from seasonal_c2rcc.emulator import jobs

    lock = threading.Lock()
    original = jobs.write_output

    def locked(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            return original(*args, **kwargs)

    jobs.write_output = locked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--workers", type=int, default=10, help="concurrent job processes")
    ap.add_argument("--hour", type=float, default=30.0, help="length of a quota 'hour' in seconds")
    ap.add_argument("--job-duration", type=float, default=0.5, help="emulated running time (s)")
    ns = ap.parse_args()

    from seasonal_c2rcc.catalogue import search_season
    from seasonal_c2rcc.config import load_campaign, validate_schema
    from seasonal_c2rcc.emulator.faults import FaultConfig
    from seasonal_c2rcc.emulator.server import EmulatorServer
    from seasonal_c2rcc.wekeo import Credentials, Endpoints, hda_client
    from seasonal_c2rcc.workflow import season_plan

    _serialise_emulator_writes()
    scale = 3600.0 / ns.hour
    limits = QuotaLimits(10, 100, 100, time_scale=scale)
    faults = FaultConfig(time_scale=scale, job_duration=ns.job_duration, accept_delay=0.1,
                         order_ready_polls=0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(
        Path(tmp) / "emu", faults=faults, max_output_pixels=50_000_000
    ) as emu:
        config = validate_schema({
            "subtiles": "config/subtiles/30UUA_utm.json", "subtiles_crs": "EPSG:32630",
            "years": [2020], "cloud_cover_max": 40, "images_per_season": 3, "resolution": 60,
            "packing": "per-subtile",
            "wekeo": {"hda_url": emu.hda_url, "eocanvas_url": emu.eocanvas_url,
                      "eocanvas_token_url": emu.token_url, "http_timeout": 30},
            "eocanvas": {"poll_interval": 0.1, "poll_max_interval": 0.3, "retry_backoff": 0.5},
            "quota": {"time_scale": scale, "ledger": str(Path(tmp) / "state" / "quota.sqlite")},
        })  # fmt: skip
        campaign = load_campaign(config, REPO)
        env = {"HDA_USER": "bench", "HDA_PASSWORD": "bench-password"}
        client = hda_client(Endpoints.from_config(config["wekeo"]), Credentials(**{
            "user": env["HDA_USER"], "password": env["HDA_PASSWORD"]}), timeout=30)  # fmt: skip
        todo: list[tuple[str, str, str]] = []
        for season in [w.name for w in campaign.seasons]:
            doc = search_season(campaign, "30UUA", 2020, season, client=client)
            path = Path(tmp) / "catalog" / "30UUA" / "2020" / f"{season}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc))
            todo += [(str(path), j.key, str(Path(tmp) / "work")) for j in season_plan(campaign, path)]
        todo = todo[: ns.jobs]
        n = len(todo)
        print(f"emulator {emu.url}: quota hour = {ns.hour:g} s (time_scale {scale:g}), "
              f"{n} jobs, {ns.workers} worker processes, job duration {ns.job_duration:g} s")
        t0 = time.time()
        with ProcessPoolExecutor(ns.workers, initializer=_init, initargs=(config, env)) as pool:
            done = list(pool.map(_run_one, todo))
        t1 = time.time()
        assert emu.app is not None
        # The server's own quota record: the time each accepted job took its slot.
        accepted = sorted(float(t) for (t,) in emu.app.state.query(
            "SELECT time FROM quota WHERE service='eocanvas'"))  # fmt: skip
        refused = [e for e in emu.app.state.events()
                   if e[0] == "quota_denied" and e[2].get("service") == "eocanvas"]  # fmt: skip
    assert len(accepted) == n, (len(accepted), n)
    makespan = t1 - t0
    ideal_rate = n / limits.eocanvas_per_hour * limits.hour_window
    span = accepted[-1] - accepted[0]
    ideal_span = ideal_makespan(n, limits)
    print(f"jobs done: {len(done)}/{n}")
    print(f"makespan {makespan:.2f} s; quota-bound ideal jobs/rate = {ideal_rate:.2f} s; "
          f"ratio {makespan / ideal_rate:.3f} (target <= 1.05)")
    print(f"submission span {span:.2f} s; greedy rolling-window ideal {ideal_span:.2f} s; "
          f"ratio {span / ideal_span if ideal_span else float('nan'):.3f}")
    durations = sorted(b - a for _, a, b in done)
    print(f"per-job wall time (order, wait for a slot, run, download, verify): median "
          f"{durations[len(durations) // 2]:.2f} s, max {durations[-1]:.2f} s")
    print("accepted submissions at (s from start): "
          + " ".join(f"{t - t0:.1f}" for t in accepted))
    print(f"max submissions in any rolling hour: {max_in_window(accepted, limits.hour_window)} "
          f"(limit {limits.eocanvas_per_hour}); quota refusals seen by the server: {len(refused)}")


if __name__ == "__main__":
    main()
