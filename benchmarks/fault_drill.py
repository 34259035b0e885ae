"""Fault drill: the demo grid through every emulator fault mode and SIGKILL points, over https.

For each drill a fresh emulator (``tls=True``; the real Snakemake subprocesses trust its
certificate through ``REQUESTS_CA_BUNDLE``) serves the demo campaign (2 sub-tiles of 30UUA, 2019,
summer and winter, 60 m). The workflow is run as a user would: run, and when it stops, run the same
command again (``--unlock`` first if Snakemake says the directory is locked), at most
``--max-runs`` times. Printed per drill: faults injected, jobs needed (job records), jobs created on
the emulator, failed or stuck attempts (paid retries, expected), duplicates (jobs created beyond
needed + paid retries, must be 0), composites equal to a clean run's (must be all), runs, and
manual steps besides re-running the same command (must be only ``--unlock``).

    python benchmarks/fault_drill.py [--seeds 0 1] [--only submit_504 kill_3] [--max-runs 6]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.emulator import EmulatorServer, FaultConfig  # noqa: E402

#: A quota "hour" of 5 s on both sides (emulator and ledger), so retries never wait a real hour.
TIME_SCALE = 720.0
FAST = {"accept_delay": 0.1, "job_duration": 0.5, "order_ready_polls": 1, "time_scale": TIME_SCALE}

#: name -> (emulator fault settings, extra eocanvas config, SIGKILL after this many submissions)
DRILLS: dict[str, tuple[dict[str, Any], dict[str, Any], int | None]] = {
    "submit_504": ({"submit_5xx_after_create_rate": 0.5}, {}, None),
    "submit_504_all": ({"submit_5xx_after_create_rate": 1.0}, {}, None),
    "http_5xx": ({"http_5xx_rate": 0.1}, {}, None),
    "dropped": ({"drop_connection_rate": 0.05}, {}, None),
    "truncated": ({"truncate_download_rate": 0.3}, {}, None),
    "job_failure": ({"job_failure_rate": 0.3}, {"retries": 3}, None),
    "stuck": ({"stuck_job_rate": 0.3}, {"job_timeout": 4.0, "retries": 3}, None),
    "kill_1": ({"job_duration": 3.0}, {}, 1),
    "kill_3": ({"job_duration": 3.0}, {}, 3),
    "kill_5_504": ({"job_duration": 3.0, "submit_5xx_after_create_rate": 0.5}, {}, 5),
}


def _serialise_emulator_writes() -> None:
    """The emulator writes result NetCDFs from several threads; HDF5 is not thread-safe."""
    from seasonal_c2rcc.emulator import jobs

    lock = threading.Lock()
    original = jobs.write_output

    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    jobs.write_output = locked


def write_config(work: Path, emu: EmulatorServer, eocanvas: dict[str, Any]) -> Path:
    cfg = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    cfg["subtiles"] = str(REPO / cfg["subtiles"])
    cfg["graph"] = str(REPO / "graphs" / "s2_c2rcc.xml")
    cfg["wekeo"] = {"hda_url": emu.hda_url, "eocanvas_url": emu.eocanvas_url, "http_timeout": 20}
    cfg["eocanvas"] = {"poll_interval": 0.2, "poll_max_interval": 0.5, "retry_backoff": 0.2,
                       **eocanvas}  # fmt: skip
    cfg["quota"] = {"time_scale": TIME_SCALE}
    work.mkdir(parents=True, exist_ok=True)
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def targets() -> list[str]:
    return [f"results/composites/30UUA/2019/{s}/{i}.nc" for s in ("summer", "winter") for i in "01"]


def command(work: Path, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(work), "--configfile", str(config),
            "--workflow-profile", str(REPO / "profiles" / "default"), "--cores", "4",
            *args]  # fmt: skip


def environment(emu: EmulatorServer) -> dict[str, str]:
    return dict(os.environ, HDA_USER="drill", HDA_PASSWORD="drill-password",
                HDA_RC="/nonexistent/.hdarc", REQUESTS_CA_BUNDLE=str(emu.ca_path))  # fmt: skip


def accepted(emu: EmulatorServer) -> list[dict[str, Any]]:
    return [s for s in emu.accounting()["submissions"] if s.get("accepted")]


def run_drill(work: Path, emu: EmulatorServer, eocanvas: dict[str, Any], kill_after: int | None,
              max_runs: int) -> dict[str, Any]:  # fmt: skip
    config = write_config(work, emu, eocanvas)
    env = environment(emu)
    manual: list[str] = []
    runs = 0
    if kill_after is not None:
        log = open(work / "killed-run.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(command(work, config, *targets()), env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.time() + 300
        while time.time() < deadline and len(accepted(emu)) < kill_after and proc.poll() is None:
            time.sleep(0.1)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        runs += 1
        # What the README tells a user after a kill: unlock, then run the same command again.
        subprocess.run(command(work, config, "--unlock"), env=env, capture_output=True)
        manual.append("--unlock")
    ok = False
    while runs < max_runs:
        r = subprocess.run(command(work, config, *targets()), env=env, capture_output=True,
                           text=True, timeout=1200)  # fmt: skip
        runs += 1
        if r.returncode == 0:
            ok = True
            break
        text = r.stdout + r.stderr
        if "cannot be locked" in text or "LockException" in text or "is locked" in text:
            subprocess.run(command(work, config, "--unlock"), env=env, capture_output=True)
            manual.append("--unlock")
        elif "reset-job" in text:
            manual.append("reset-job")
            break
    records = [json.loads(p.read_text()) for p in (work / "results/state/jobs").glob("*.json")]
    paid_retries = sum(
        1 for rec in records for a in rec.get("attempts", [])
        if a.get("status") not in (None, "successful")
    )  # fmt: skip
    subs = accepted(emu)
    work_items = Counter(
        (tuple(s["products"]), json.dumps(s["geo_regions"], sort_keys=True)) for s in subs
    )
    return {
        "ok": ok,
        "runs": runs,
        "manual": manual,
        "needed": len(records),
        "created": len(subs),
        "paid_retries": paid_retries,
        "duplicates": len(subs) - len(records) - paid_retries,
        "same_work_twice": sum(n - 1 for n in work_items.values()),
        "faults": Counter(f["kind"] for f in emu.accounting()["faults_injected"]),
    }


def composites_equal(work: Path, clean: Path) -> tuple[int, int]:
    same = 0
    for t in targets():
        a, b = work / t, clean / t
        if not a.exists() or not b.exists():
            continue
        with xr.open_dataset(a) as da, xr.open_dataset(b) as db:
            if all(
                np.array_equal(da[v].values, db[v].values, equal_nan=True) for v in db.data_vars
            ):
                same += 1
    return same, len(targets())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--only", nargs="*", help=f"drills to run (default all: {', '.join(DRILLS)})")
    ap.add_argument("--max-runs", type=int, default=6)
    ap.add_argument("--keep", type=Path, help="keep the work folders here")
    ns = ap.parse_args()
    _serialise_emulator_writes()
    names = ns.only or list(DRILLS)
    tmp = ns.keep or Path(tempfile.mkdtemp(prefix="fault-drill-"))
    t0 = time.time()
    clean = tmp / "clean"
    with EmulatorServer(tmp / "emu-clean", faults=FaultConfig(**FAST), tls=True,
                        max_output_pixels=50_000_000) as emu:  # fmt: skip
        base = run_drill(clean, emu, {}, None, 2)
    if not base["ok"]:
        sys.exit(f"the clean run failed; see {clean}")
    print(f"clean run: {base['needed']} jobs, {base['created']} created ({time.time() - t0:.0f} s)")
    header = ("drill", "seed", "faults injected", "needed", "created", "paid retries",
              "duplicates", "same work twice", "composites = clean", "runs", "manual steps")  # fmt: skip
    rows = []
    for name in names:
        faults, eocanvas, kill_after = DRILLS[name]
        for seed in ns.seeds:
            work = tmp / f"{name}-s{seed}"
            with EmulatorServer(tmp / f"emu-{name}-s{seed}", faults=FaultConfig(**{**FAST, **faults}),
                                seed=seed, tls=True, max_output_pixels=50_000_000) as emu:  # fmt: skip
                res = run_drill(work, emu, eocanvas, kill_after, ns.max_runs)
            same, total = composites_equal(work, clean)
            injected = ", ".join(f"{k} {v}" for k, v in sorted(res["faults"].items()))
            if kill_after is not None:
                injected = ", ".join(x for x in (f"SIGKILL after {kill_after}", injected) if x)
            row = (name, str(seed), injected or "-", str(res["needed"]), str(res["created"]),
                   str(res["paid_retries"]), str(res["duplicates"]), str(res["same_work_twice"]),
                   f"{same}/{total}", str(res["runs"]), " ".join(res["manual"]) or "none")  # fmt: skip
            rows.append(row)
            print(" | ".join(row), flush=True)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    bad = [r for r in rows if r[6] != "0" or len(set(r[8].split("/"))) != 1
           or set(r[10].split()) - {"none", "--unlock"}]  # fmt: skip
    print(
        f"\n{len(rows)} drills in {time.time() - t0:.0f} s; {len(bad)} with a problem; work in {tmp}"
    )


if __name__ == "__main__":
    main()
