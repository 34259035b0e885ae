"""Local state is verified before it is trusted (issue 11, item 5): damaged job results,
composites, tables and catalogues are remade by the next run, a finished remote job's results are
downloaded again instead of paid for again, and a corrupt job record is a one-line error naming
the file and the fix. Real Snakemake runs against the emulator (demo grid, 1 year, 1 season)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import netCDF4
import pandas as pd
import pytest

from seasonal_c2rcc.verify import verify_c2rcc_netcdf

from .harness import run, write_config

pytestmark = pytest.mark.slow

TARGETS = [
    "results/composites/30UUA/2019/summer/0.nc",
    "results/composites/30UUA/2019/summer/1.nc",
    "results/timeseries/30UUA.parquet",
]


def accepted(emu) -> int:
    """Remote jobs the service created (each one costs quota)."""
    return len([s for s in emu.accounting()["submissions"] if s.get("accepted")])


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 3)


def opens(path: Path) -> bool:
    try:
        with netCDF4.Dataset(path):
            return True
    except OSError:
        return False


def test_damaged_local_state_is_remade_and_finished_remote_jobs_are_downloaded_not_resubmitted(
    emulator, tmp_path
):
    cfg = write_config(
        tmp_path,
        emulator.url,
        seasons={"summer": {"start": "06-01", "end": "08-31"}},
        images_per_season=2,
    )
    first = run(tmp_path, cfg, "--cores", "2", *TARGETS)
    assert first.returncode == 0, first.stderr[-4000:]
    res = tmp_path / "results"
    # (the timeseries table needs every season of the demo config: summer and winter)
    manifests = sorted(res.glob("jobs/30UUA/2019/*/*.json"))
    assert len(manifests) >= 2
    n_jobs = accepted(emulator)
    assert n_jobs == len(manifests)
    n_downloads = len(emulator.accounting()["downloads"])

    # 1. a truncated job result under an intact manifest, every composite made from it intact
    # (a winter job; Snakemake alone says "Nothing to be done")
    m_a = json.loads(manifests[-1].read_text())
    file_a = Path(m_a["files"][m_a["products"][0]])
    file_a = file_a if file_a.is_absolute() else tmp_path / file_a
    truncate(file_a)
    # 2. a truncated job result whose manifest was deleted (today: a new paid job once the
    # composite has to run: summer/1 is truncated below)
    m_b = json.loads(manifests[0].read_text())
    file_b = Path(m_b["files"][m_b["products"][0]])
    file_b = file_b if file_b.is_absolute() else tmp_path / file_b
    truncate(file_b)
    manifests[0].unlink()
    # 3. a truncated composite whose inputs are all intact, 4. a truncated table,
    # 5. a truncated catalogue (its frozen copy in results/state/catalog is intact)
    comp = res / "composites/30UUA/2019/summer/1.nc"
    table = res / "timeseries/30UUA.parquet"
    cat = res / "catalog/30UUA/2019/summer.json"
    frozen = res / "state/catalog/30UUA/2019/summer.json"
    for f in (comp, table, cat):
        truncate(f)
    assert not opens(file_a) and not opens(comp)

    # the default target, as a user runs it (it also fetches set-aside job results again
    # where every composite is up to date)
    again = run(tmp_path, cfg, "--cores", "2")
    out = again.stdout + again.stderr
    assert again.returncode == 0, out[-4000:]
    assert "damaged local state repaired" in out and str(file_a.name) in out
    assert accepted(emulator) == n_jobs, "finished remote jobs are downloaded again, not re-run"
    assert len(emulator.accounting()["downloads"]) >= n_downloads + 2
    for f in (file_a, file_b):
        verify_c2rcc_netcdf(f)
    assert sorted(res.glob("jobs/30UUA/2019/*/*.json")) == manifests
    assert cat.read_bytes() == frozen.read_bytes()
    for sid in ("0", "1"):
        with netCDF4.Dataset(res / f"composites/30UUA/2019/summer/{sid}.nc") as ds:
            assert ds.getncattr("composite_status") in ("ok", "no_data")
    assert set(pd.read_parquet(table)["subtile"].astype(str)) == {"0", "1"}

    # repaired state is trusted again: nothing left to do, nothing spent
    settled = run(tmp_path, cfg, "-n")
    assert "Nothing to be done" in settled.stdout + settled.stderr, settled.stdout[-3000:]

    # 6. a corrupt job record of a job that has to run: one line naming the file and the fix
    rec = res / "state/jobs" / f"{manifests[1].stem}.json"  # a summer job
    assert rec.is_file()
    truncate(rec)
    manifests[1].unlink()
    (res / "composites/30UUA/2019/summer/0.nc").unlink()  # so that the job is needed now
    bad = run(tmp_path, cfg, "--cores", "2", *TARGETS)
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0, out[-3000:]
    assert f"job record {Path('results/state/jobs') / rec.name} is corrupt" in out, out[-3000:]
    assert "Restore it from a backup" in out and "Traceback" not in out, out[-3000:]
    assert accepted(emulator) == n_jobs, "a corrupt record never leads to a new job"
