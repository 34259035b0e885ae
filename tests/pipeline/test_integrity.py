"""The checks behind "local state is verified before it is trusted" (seasonal_c2rcc.integrity),
on small files: fast, no Snakemake (the workflow test is tests/pipeline/test_local_state.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import netCDF4
import numpy as np
import pandas as pd
import pytest

from seasonal_c2rcc.errors import OutputError, StateError
from seasonal_c2rcc.integrity import (
    check_manifest_files,
    hdf5_damage,
    manifest_entries,
    manifests_to_refetch,
    parquet_damage,
    read_job_record,
    repair_results,
)

JOB = "S2A_MSIL1C_20190723T113136_N0500_R010_T30UUA_20230830T041021__g1"


def _nc(path: Path, n: int = 50) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", n)
        ds.createDimension("x", n)
        v = ds.createVariable("conc_chl", "f4", ("y", "x"))
        v[:] = np.arange(n * n, dtype=np.float32).reshape(n, n)
    return path


def _cut(path: Path, keep: float = 0.5) -> None:
    os.truncate(path, int(path.stat().st_size * keep))


def test_hdf5_and_parquet_checks_find_truncated_files_and_pass_intact_ones(tmp_path):
    nc = _nc(tmp_path / "a.nc")
    assert hdf5_damage(nc) is None
    _cut(nc, 0.9)
    assert "truncated" in hdf5_damage(nc)
    assert hdf5_damage(tmp_path / "missing.nc") == "missing"
    (tmp_path / "text.nc").write_text("not hdf5 at all")
    assert "no HDF5 signature" in hdf5_damage(tmp_path / "text.nc")
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"a": range(100)}).to_parquet(pq)
    assert parquet_damage(pq) is None
    _cut(pq)
    assert parquet_damage(pq) is not None


def _campaign(tmp_path: Path) -> tuple[Path, Path, Path]:
    """results/ with one job (manifest with checks), one catalogue and its frozen copy."""
    res = tmp_path / "results"
    result = _nc(res / f"jobs/30UUA/2019/summer/{JOB}/P1.nc")
    manifest = res / f"jobs/30UUA/2019/summer/{JOB}.json"
    checks = manifest_entries({"P1": str(result)})
    # paths relative to the workflow's directory, as remote_job writes them
    files = {"P1": str(result.relative_to(tmp_path))}
    manifest.write_text(json.dumps({"files": files, "checks": checks}))
    doc = json.dumps({"tile": "30UUA", "products": {}, "subtiles": {}})
    for sub in ("catalog", "state/catalog"):
        (res / sub / "30UUA/2019").mkdir(parents=True)
        (res / sub / "30UUA/2019/summer.json").write_text(doc)
    return res, manifest, result


def test_repair_sets_aside_a_damaged_job_and_restores_an_unparsable_catalogue(tmp_path):
    res, manifest, result = _campaign(tmp_path)
    assert repair_results(res) == [] and manifests_to_refetch(res) == []
    _cut(result)
    cat = res / "catalog/30UUA/2019/summer.json"
    _cut(cat)
    lines = repair_results(res)
    assert len(lines) == 2 and "restored from its frozen copy" in lines[0], lines
    assert cat.read_text() == (res / "state/catalog/30UUA/2019/summer.json").read_text()
    assert not manifest.exists() and not result.exists()
    assert manifest.with_name(manifest.name + ".damaged").exists()
    # the default target asks for it until the job has made it again
    assert manifests_to_refetch(res) == [f"results/jobs/30UUA/2019/summer/{JOB}.json"]


def test_a_job_file_of_another_size_than_its_manifest_recorded_is_fetched_again(tmp_path):
    res, manifest, result = _campaign(tmp_path)
    with open(result, "ab") as f:
        f.write(b"\0" * 10)  # still a readable HDF5 file, but not the one downloaded
    assert any("manifest recorded" in line for line in repair_results(res))
    assert not manifest.exists()


def test_a_job_file_changed_in_place_fails_the_composite_with_how_to_resume(tmp_path, monkeypatch):
    res, manifest, result = _campaign(tmp_path)
    monkeypatch.chdir(tmp_path)  # the composite job runs in the workflow's directory
    check_manifest_files(manifest, ["P1"])  # intact: passes
    data = bytearray(result.read_bytes())
    data[-100] ^= 0xFF  # same size, other bytes
    result.write_bytes(bytes(data))
    assert repair_results(res) == []  # the cheap start-of-run check cannot see it
    with pytest.raises(OutputError, match="SHA-256 differs.*Run the same snakemake command again"):
        check_manifest_files(manifest, ["P1"])
    assert not result.exists() and not manifest.exists()


def test_truncated_composites_and_tables_are_removed_so_they_are_made_again(tmp_path):
    res = tmp_path / "results"
    comp = _nc(res / "composites/30UUA/2019/summer/0.nc")
    clim = _nc(res / "climatology/30UUA/summer/0.nc")
    clip = _nc(res / "c2rcc/30UUA/2019/summer/0/P1.nc")
    table = res / "timeseries/30UUA.parquet"
    table.parent.mkdir()
    pd.DataFrame({"a": [1]}).to_parquet(table)
    # a writer's temporary files and folders (half-written by a running job) are not touched
    busy = [
        _nc(res / "composites/30UUA/2019/summer/.1.nc.77.tmp.nc"),
        _nc(res / "c2rcc/30UUA/2019/summer/.1.77.tmp/P1.nc"),
    ]
    for f in busy:
        _cut(f)
    assert repair_results(res) == []
    assert all(f.exists() for f in busy)
    for f in (comp, clim, clip, table):
        _cut(f)
    assert len(repair_results(res)) == 4
    assert not comp.exists() and not clim.exists() and not table.exists()
    assert not clip.parent.exists()  # the folder is the composite's output: cut out again


def test_a_corrupt_job_record_names_the_file_and_the_fix(tmp_path):
    rec = tmp_path / "state/jobs" / f"{JOB}.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"key": JOB, "state": "downloaded", "remote_job_id": "x"}))
    assert read_job_record(rec)["state"] == "downloaded"
    _cut(rec)
    with pytest.raises(StateError) as err:
        read_job_record(rec)
    msg = str(err.value)
    assert str(rec) in msg and "not valid JSON" in msg and f"mv {rec} {rec}.corrupt" in msg
    assert err.value.permanent


def test_reset_job_on_a_corrupt_record_prints_the_fix_not_a_traceback(tmp_path, capsys):
    from seasonal_c2rcc import cli

    rec = tmp_path / "results/state/jobs" / f"{JOB}.json"
    rec.parent.mkdir(parents=True)
    rec.write_text('{"key": "K", "sta')
    assert cli.main(["reset-job", "--results", str(tmp_path / "results"), JOB]) != 0
    err = capsys.readouterr().err
    assert f"job record {rec} is corrupt" in err and "Traceback" not in err
