"""The real workflow (``python -m snakemake``) against the emulator, as a user runs it.

Each test starts its own emulator and checks outcomes through files a user would open and through
the emulator's accounting (what the remote service saw and billed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from seasonal_c2rcc.emulator import FaultConfig
from seasonal_c2rcc.flags import DEFAULT_EXCLUDE_FLAGS, FLAG_MASKS, flag_mask

from .harness import run, start, write_config

pytestmark = pytest.mark.slow


def submitted(emu) -> list[dict]:
    """Accepted submissions (jobs the service created and counts against the quota)."""
    return [s for s in emu.accounting()["submissions"] if s.get("accepted")]


def assert_no_duplicate_work(emu) -> None:
    work = Counter(
        (tuple(s["products"]), json.dumps(s["geo_regions"], sort_keys=True)) for s in submitted(emu)
    )
    dupes = {k: n for k, n in work.items() if n > 1}
    assert not dupes, f"work submitted more than once: {dupes}"


def composite_reference(files: list[Path], var: str, min_obs: int) -> tuple[np.ndarray, np.ndarray]:
    stack, valid = [], []
    exclude = flag_mask(DEFAULT_EXCLUDE_FLAGS)
    for f in files:
        with xr.open_dataset(f, mask_and_scale=False) as ds:
            flags = ds["c2rcc_flags"].values.astype(np.uint32)
            ok = ((flags & FLAG_MASKS["Valid_PE"]) != 0) & ((flags & exclude) == 0)
            stack.append(np.where(ok, ds[var].values.astype("float64"), np.nan))
            valid.append(ok)
    arr = np.stack(stack)
    count = np.sum(valid, axis=0)
    with np.errstate(all="ignore"):
        med = np.nanmedian(arr, axis=0)
    return np.where(count >= min_obs, med, np.nan), count


def test_demo_grid_runs_end_to_end_and_a_second_run_does_nothing(emulator, tmp_path):
    cfg = write_config(tmp_path, emulator.url)
    r = run(tmp_path, cfg, "--cores", "4")
    assert r.returncode == 0, r.stderr[-4000:]

    res = tmp_path / "results"
    n_products = 0
    for season in ("summer", "winter"):
        doc = json.loads((res / f"catalog/30UUA/2019/{season}.json").read_text())
        for sid in ("0", "1"):
            files = [res / f"c2rcc/30UUA/2019/{season}/{sid}/{k}.nc" for k in doc["subtiles"][sid]]
            assert files and all(f.exists() for f in files)
            n_products += len(files)
            comp = res / f"composites/30UUA/2019/{season}/{sid}.nc"
            with xr.open_dataset(comp) as ds:
                ref, count = composite_reference(files, "conc_chl", min_obs=3)
                np.testing.assert_allclose(
                    ds["conc_chl_median"].values, ref, rtol=1e-6, equal_nan=True
                )
                np.testing.assert_array_equal(ds["conc_chl_count"].values, count)
                assert np.isfinite(ds["conc_chl_median"].values).any()
                assert (
                    set(ds.attrs["input_products"].split()) <= set(doc["products"])
                    or ds.attrs["input_products"]
                )
    assert n_products == 12

    acc = emulator.accounting()
    assert len(acc["searches"]) == 2, "one search per tile, year and season"
    # per-product packing: one job per product for both adjacent sub-tiles, not one per sub-tile
    assert len(submitted(emulator)) == 6
    assert_no_duplicate_work(emulator)
    orders = Counter(o["product_id"] for o in acc["orders"])
    assert max(orders.values()) == 1, "each product ordered once"

    again = run(tmp_path, cfg, "--cores", "4")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Nothing to be done" in again.stdout + again.stderr
    acc2 = emulator.accounting()
    assert len(acc2["searches"]) == 2 and len(submitted(emulator)) == 6

    dry = run(tmp_path, cfg, "-n", "--quiet", "rules")
    assert dry.returncode == 0 and "remote_job" not in dry.stdout

    # The frozen selections are read without the checkpoint: forcing the catalogue rule (what a
    # code change of it does) plans nothing.
    forced = run(tmp_path, cfg, "-n", "--forcerun", "catalogue")
    assert forced.returncode == 0 and "Nothing to be done" in forced.stdout + forced.stderr
    # A refresh searches again through the checkpoint; the same selection re-runs no remote job
    # and no composite, in this run or the next. (Snakemake plans the downstream steps before the
    # checkpoint has run, so the local figures, tables and climatologies are made again.)
    refresh = run(tmp_path, cfg, "--cores", "2", "--forcerun", "catalogue",
                  "--config", "refresh_catalogue=true")  # fmt: skip
    assert refresh.returncode == 0, refresh.stderr[-3000:]
    log = refresh.stdout + refresh.stderr
    assert len(re.findall(r"^\S*checkpoint catalogue:$", log, re.M)) == 2, log[-3000:]
    assert not re.search(r"^\S*rule (remote_job|composite):$", log, re.M), log[-3000:]
    assert len(emulator.accounting()["searches"]) == 4 and len(submitted(emulator)) == 6
    after = run(tmp_path, cfg, "-n")
    assert "Nothing to be done" in after.stdout + after.stderr, after.stdout[-3000:]
    # a lost COG re-runs its one composite, nothing else
    (res / "composites/30UUA/2019/summer/1_chl.tif").unlink()
    one = run(tmp_path, cfg, "-n", "--quiet", "rules")
    assert re.search(r"^composite\s+1$", one.stdout, re.M), one.stdout
    assert not re.search(r"^(remote_job|catalogue)\s", one.stdout, re.M), one.stdout

    # credentials never reach logs, results, reports or metadata
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.stat().st_size < 50_000_000:
            assert b"test-password" not in f.read_bytes(), f


def test_frozen_catalogue_is_not_searched_again_when_the_config_changes(emulator, tmp_path):
    cfg = write_config(
        tmp_path, emulator.url, seasons={"summer": {"start": "06-01", "end": "08-31"}}
    )
    target = "results/catalog/30UUA/2019/summer.json"
    assert run(tmp_path, cfg, "--cores", "1", target).returncode == 0
    before = (tmp_path / target).read_text()
    cfg2 = write_config(
        tmp_path,
        emulator.url,
        seasons={"summer": {"start": "06-01", "end": "08-31"}},
        cloud_cover_max=5,
    )
    # a forced re-run without asking for a refresh (e.g. Snakemake's code-change trigger) keeps it
    r = run(tmp_path, cfg2, "--cores", "1", "--forcerun", "catalogue", "--", target)
    assert r.returncode == 0 and (tmp_path / target).read_text() == before
    assert len(emulator.accounting()["searches"]) == 1
    r = run(tmp_path, cfg2, "--cores", "1", target)
    assert r.returncode == 0 and (tmp_path / target).read_text() == before
    assert len(emulator.accounting()["searches"]) == 1
    r = run(
        tmp_path,
        cfg2,
        "--cores",
        "1",
        "--forcerun",
        "catalogue",
        "--config",
        "refresh_catalogue=true",
        "--",
        target,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(emulator.accounting()["searches"]) == 2
    assert json.loads((tmp_path / target).read_text())["cloud_cover_max"] == 5


def test_sigkill_while_remote_jobs_run_then_resume_submits_nothing_twice(
    emulator_factory, tmp_path
):
    emu = emulator_factory(faults=FaultConfig(accept_delay=0.2, job_duration=6.0))
    cfg = write_config(tmp_path, emu.url)
    proc = start(tmp_path, cfg, "--cores", "8")
    deadline = time.time() + 120
    while time.time() < deadline and len(submitted(emu)) < 3:
        time.sleep(0.3)
    assert len(submitted(emu)) >= 3, (tmp_path / "snakemake-run.log").read_text()[-3000:]
    os.killpg(proc.pid, signal.SIGKILL)  # the head and every job process, mid-poll
    proc.wait(timeout=30)
    n_before = len(submitted(emu))
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/state/jobs").glob("*.json")]
    assert any(r["state"] in ("submitted", "running") for r in records)

    unlock = run(tmp_path, cfg, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    r = run(tmp_path, cfg, "--cores", "8")
    assert r.returncode == 0, r.stderr[-4000:]
    assert "re-attaching to remote job" in (r.stdout + r.stderr) or n_before == 6
    assert len(submitted(emu)) == 6
    assert_no_duplicate_work(emu)
    for f in (tmp_path / "results/c2rcc").rglob("*.nc"):
        with xr.open_dataset(f) as ds:
            assert ds.sizes["x"] > 0 and "conc_chl" in ds
    assert len(list((tmp_path / "results/composites").rglob("*.nc"))) == 4


def test_failing_job_is_retried_then_given_up_with_its_log_saved(emulator_factory, tmp_path):
    emu = emulator_factory(
        faults=FaultConfig(accept_delay=0.1, job_duration=0.3, job_failure_rate=1.0)
    )
    cfg = write_config(
        tmp_path,
        emu.url,
        seasons={"summer": {"start": "06-01", "end": "08-31"}},
        images_per_season=1,
        eocanvas={"retries": 1},
    )
    r = run(tmp_path, cfg, "--cores", "2")
    assert r.returncode != 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "results/state/jobs").glob("*.json")]
    assert records and all(rec["state"] == "gave_up" for rec in records)
    assert all(len(rec["attempts"]) == 2 for rec in records)
    assert len(submitted(emu)) == 2 * len(records), "one submission plus one retry per job"
    for rec in records:
        logs = sorted((tmp_path / "logs/eocanvas/remote").glob(f"{rec['key']}.attempt*.log"))
        assert len(logs) == 2 and "ERROR" in logs[-1].read_text()
        assert rec["log"].endswith(logs[-1].name) and rec["log"] in (r.stdout + r.stderr)
    n = len(submitted(emu))

    # a new run does not quietly spend quota on a job that gave up
    again = run(tmp_path, cfg, "--cores", "2")
    assert again.returncode != 0 and "reset-job" in (again.stdout + again.stderr)
    assert len(submitted(emu)) == n


def test_truncated_download_is_rejected_and_fetched_again_without_a_new_job(
    emulator_factory, tmp_path
):
    emu = emulator_factory(
        faults=FaultConfig(accept_delay=0.1, job_duration=0.3, truncate_download_rate=1.0)
    )
    cfg = write_config(
        tmp_path,
        emu.url,
        seasons={"summer": {"start": "06-01", "end": "08-31"}},
        images_per_season=1,
        eocanvas={"retries": 0},
    )
    r = run(tmp_path, cfg, "--cores", "2")
    assert r.returncode != 0
    assert "truncated" in (r.stdout + r.stderr)
    assert not list((tmp_path / "results/jobs").rglob("*.nc")), (
        "no truncated file passes for a result"
    )
    emu.set_faults(truncate_download_rate=0.0)
    r = run(tmp_path, cfg, "--cores", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    n_jobs = len(list((tmp_path / "results/state/jobs").glob("*.json")))
    assert len(submitted(emu)) == n_jobs, "finished remote jobs are downloaded again, not re-run"
    assert len(emu.accounting()["downloads"]) > n_jobs


def test_season_without_usable_scenes_gives_an_explicit_no_data_composite(emulator, tmp_path):
    cfg = write_config(
        tmp_path,
        emulator.url,
        seasons={"summer": {"start": "06-01", "end": "08-31"}},
        cloud_cover_max=0,
    )
    r = run(tmp_path, cfg, "--cores", "2", "results/composites/30UUA/2019/summer/0.nc")
    assert r.returncode == 0, r.stderr[-3000:]
    with xr.open_dataset(tmp_path / "results/composites/30UUA/2019/summer/0.nc") as ds:
        assert ds.attrs["composite_status"] == "no_data"
        assert np.isnan(ds["conc_chl_median"].values).all()
    assert submitted(emulator) == []


def test_dry_run_of_the_users_campaign_plans_every_search_without_touching_the_network(tmp_path):
    import yaml

    from .harness import ROOT

    user = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    user["subtiles"] = str(ROOT / user["subtiles"])
    user["graph"] = str(ROOT / user["graph"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(user))
    r = run(tmp_path, cfg, "-n", "--quiet", "rules")
    assert r.returncode == 0, r.stderr[-3000:]
    # 8 years x 4 seasons of 30UUA: one catalogue search each; products follow once they are known
    assert re.search(r"catalogue\s+32", r.stdout), r.stdout


def test_a_query_the_catalogue_rejects_fails_with_its_message(emulator):
    from seasonal_c2rcc import wekeo
    from seasonal_c2rcc.errors import CatalogueError

    client = wekeo.hda_client(
        wekeo.Endpoints(hda_url=emulator.hda_url, eocanvas_url=emulator.eocanvas_url),
        wekeo.Credentials("u", "p"),
        timeout=10,
        retries=1,
    )
    with pytest.raises(CatalogueError, match="HTTP 400") as err:
        wekeo.search(client, {"dataset_id": "EO:ESA:DAT:SENTINEL-2", "cloudCover": {"lte": 20}})
    assert "cloudCover" in str(err.value)


def test_multi_input_packing_files_each_result_under_its_own_product(emulator, tmp_path):
    from seasonal_c2rcc.clip import source_product

    from .harness import composites

    cfg = write_config(
        tmp_path,
        emulator.url,
        seasons={"summer": {"start": "06-01", "end": "08-31"}},
        packing="multi-input",
    )
    r = run(tmp_path, cfg, "--cores", "4", *composites([2019], ["summer"]))
    assert r.returncode == 0, r.stderr[-3000:]
    (job,) = submitted(emulator)  # 3 products of one season and group: one remote job
    assert len(job["products"]) == 3
    results = sorted((tmp_path / "results/jobs").rglob("*.nc"))
    assert len(results) == 3
    for f in results:
        assert source_product(f) == f.stem
    for f in (tmp_path / "results/c2rcc").rglob("*.nc"):
        assert source_product(f) == f.stem
