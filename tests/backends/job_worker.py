"""Worker process for the https integrity tests: run one remote job as Snakemake's job would.

Run as ``python job_worker.py TASK.json``, where the task holds ``config`` (validated), ``catalogue``
(frozen catalogue path), ``key`` (job key) and ``work`` (state/jobs/logs folder). Jobs run in
separate processes, as under Snakemake: netCDF-C/HDF5 cannot verify two files at once in threads.
Prints ``{"outputs": {...}}`` or ``{"error": "..."}`` as one JSON line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    from seasonal_c2rcc.backends.eocanvas import run_job
    from seasonal_c2rcc.config import load_campaign
    from seasonal_c2rcc.workflow import job_spec

    task = json.loads(Path(sys.argv[1]).read_text())
    campaign = load_campaign(task["config"], REPO)
    graph = (REPO / "graphs" / "s2_c2rcc.xml").read_text()
    spec = job_spec(campaign, task["catalogue"], task["key"], graph)
    work = Path(task["work"])
    try:
        out = run_job(
            spec,
            campaign.config,
            state_dir=work / "state",
            out_dir=work / "jobs",
            log_dir=work / "logs",
            report=lambda m: print(m, file=sys.stderr, flush=True),
        )
    except Exception as exc:  # noqa: BLE001 - reported to the test
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return
    print(json.dumps({"outputs": out}), flush=True)


if __name__ == "__main__":
    main()
