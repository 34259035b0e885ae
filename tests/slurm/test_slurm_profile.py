"""The cluster profile (``--workflow-profile profiles/slurm``) on a real SLURM, against the emulator.

A one-node cluster comes from ``ci/slurm/start-slurm.sh`` (CI runs it before pytest). The run is a
tiny campaign (demo grid, one season, one scene) up to the tile's time-series table, so that each
level of the DAG is crossed once: head-node network rules (catalogue, remote_job) and SLURM jobs
(composite, which clips each sub-tile, -> timeseries), plus one head-node figure rule
(campaign_status_map).

What went through SLURM is read back from slurmctld itself (``squeue --states=all`` keeps finished
jobs for MinJobAge, 600 s in our slurm.conf), not only from Snakemake's messages.

Without ``sbatch`` on PATH the test is skipped (a laptop), unless SEASONAL_C2RCC_REQUIRE_SLURM=1
(CI), where a missing SLURM is a failure. On a cluster with several nodes, point
SEASONAL_C2RCC_SLURM_WORKDIR at a directory of a shared file system: pytest's tmp_path is local.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from pipeline.harness import ROOT, env, snakemake_cmd, write_config

from seasonal_c2rcc.composite import peak_memory_mb

pytestmark = pytest.mark.slow

REQUIRE_ENV = "SEASONAL_C2RCC_REQUIRE_SLURM"
SHARED_ENV = "SEASONAL_C2RCC_SLURM_WORKDIR"
SUBMITTED = re.compile(
    r"Job (?P<job>\d+) has been submitted with SLURM jobid (?P<slurm>\d+) \(log: (?P<log>[^)]+)\)"
)
TARGETS = ("results/timeseries/30UUA.csv", "results/figures/campaign_status.png")
#: Compute jobs of TARGETS on a 2-sub-tile, 1-season, 1-scene campaign (one product per sub-tile).
EXPECTED_SLURM = Counter({"composite": 2, "timeseries": 1})
#: Head-node rules of the same run: they must never reach SLURM.
LOCAL_RULES = {"catalogue", "remote_job", "campaign_status_map", "campaign_status", "bill"}


def _cmd_output(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout


def require_slurm() -> str:
    """The cluster's default partition, once its controller answers; skip or fail without SLURM.

    Called from the test body, not a fixture: a missing SLURM under CI is then a test failure.
    """
    if shutil.which("sbatch") is None:
        msg = (
            "SLURM is missing: sbatch is not on PATH (start one with: bash ci/slurm/start-slurm.sh)"
        )
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{msg}; {REQUIRE_ENV}=1 requires it", pytrace=False)
        pytest.skip(msg)
    # sbatch exists: from here on, a cluster that does not answer is a failure, not a skip.
    try:
        partitions = _cmd_output("sinfo", "--noheader", "-o", "%P %a").split("\n")
        states = _cmd_output("sinfo", "--noheader", "-N", "-o", "%T").split()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"SLURM commands are installed but sinfo fails (is slurmctld up?): {exc}")
    default = [p.split()[0].rstrip("*") for p in partitions if p.split() and "*" in p.split()[0]]
    assert default, f"no default partition in sinfo: {partitions}"
    usable = {"idle", "mixed", "allocated", "completing"}
    assert usable & set(states), f"no SLURM node takes jobs: {states}"
    return default[0]


def _slurm_jobs(run_id: str) -> dict[str, dict[str, str]]:
    """Jobs slurmctld knows under this Snakemake run's job name, finished ones included."""
    fmt = "%i|%T|%k|%P|%m|%l|%Z"  # id, state, comment, partition, memory, time limit, workdir
    out = _cmd_output("squeue", "--states=all", "--noheader", "--name", run_id, "--format", fmt)
    jobs = {}
    for line in out.splitlines():
        jid, state, comment, partition, mem, limit, workdir = line.split("|")
        jobs[jid] = dict(state=state, comment=comment, partition=partition, mem=mem,
                         limit=limit, workdir=workdir)  # fmt: skip
    return jobs


@pytest.fixture
def workdir(tmp_path: Path):
    """The run directory: tmp_path, or a fresh one under $SEASONAL_C2RCC_SLURM_WORKDIR."""
    base = os.environ.get(SHARED_ENV)
    if not base:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="seasonal-c2rcc-slurm-", dir=base))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _minutes(limit: str) -> int:
    """squeue's time limit ("30:00", "2:00:00", "1-00:00:00") in minutes."""
    days, _, hms = limit.rpartition("-")
    parts = [int(x) for x in hms.split(":")]
    seconds = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    return int(days or 0) * 1440 + seconds // 60


def _run(workdir: Path, config: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    cmd = snakemake_cmd(workdir, config, *args)
    cmd[cmd.index("--workflow-profile") + 1] = str(ROOT / "profiles" / "slurm")
    return subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=timeout)


def test_compute_rules_run_as_slurm_jobs_and_network_rules_on_the_head_node(emulator, workdir):
    slurm_partition = require_slurm()
    cfg = write_config(workdir, emulator.url, images_per_season=1, masking={"min_valid_obs": 1})
    # write_config merges dict overrides into the demo's seasons; keep only summer.
    doc = yaml.safe_load(cfg.read_text())
    doc["seasons"] = {"summer": doc["seasons"]["summer"]}
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))

    r = _run(
        workdir, cfg,
        # Speed only: the profile's 20 s first status check would add ~20 s per DAG level here
        # (jobs take 10-20 s); 6 s still keeps 3 x 6 s below MinJobAge, so squeue stays in use.
        "--slurm-init-seconds-before-status-checks", "6",
        # Evidence: the plugin deletes the SLURM logs of successful jobs by default.
        "--slurm-keep-successful-logs",
        *TARGETS,
        timeout=360,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]

    run_id = re.search(r"SLURM run ID: (\S+)", out)
    assert run_id, "the slurm executor did not start:\n" + out[-3000:]
    printed = {m["slurm"]: m for m in SUBMITTED.finditer(out)}
    jobs = _slurm_jobs(run_id[1])

    # slurmctld saw exactly the jobs Snakemake reported, all finished cleanly.
    assert set(jobs) == set(printed), (jobs, sorted(printed))
    assert {j["state"] for j in jobs.values()} == {"COMPLETED"}, jobs
    rules = Counter(re.match(r"rule_([a-z_]+?)(?:_wildcards_|$)", j["comment"])[1]
                    for j in jobs.values())  # fmt: skip
    assert rules == EXPECTED_SLURM, rules
    assert not LOCAL_RULES & set(rules)
    # The profile's settings reached sbatch: default partition, default and per-rule memory,
    # wall time, and the run directory as the job's working directory.
    defaults = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())[
        "default-resources"
    ]
    comp = next((workdir / "results/composites").rglob("*.nc"))
    with xr.open_dataset(comp) as ds:
        composite_mb = peak_memory_mb(ds.sizes["x"], ds.sizes["y"])
    for j in jobs.values():
        assert j["partition"] == slurm_partition
        assert _minutes(j["limit"]) == defaults["runtime"], j
        rule = re.match(r"rule_([a-z_]+?)(?:_wildcards_|$)", j["comment"])[1]
        # composite asks for the memory bound of its sub-tile grid (rules/composite.smk); the
        # others get the default
        expected_mb = composite_mb if rule == "composite" else defaults["mem_mb"]
        assert j["mem"] == f"{expected_mb}M", j
        assert Path(j["workdir"]).resolve() == workdir.resolve()

    # Each SLURM job ran the rule inside its allocation (the jobstep executor's own log).
    for m in printed.values():
        log = Path(m["log"])
        assert log.is_file() and log.resolve().is_relative_to(workdir.resolve() / ".snakemake")
        text = log.read_text()
        assert "--executor slurm-jobstep" in text and "Finished jobid: 0" in text, text[-2000:]

    # The network rules ran on the head node: Snakemake ran them as local jobs and the emulator
    # got one search and one accepted submission (per-product packing: 1 scene, 2 sub-tiles).
    for rule in ("catalogue", "remote_job", "campaign_status_map"):
        assert re.search(rf"^local(rule|checkpoint) {rule}:", out, re.M), rule
    acc = emulator.accounting()
    assert len(acc["searches"]) == 1
    assert len([s for s in acc["submissions"] if s.get("accepted")]) == 1
    assert (workdir / "results/state/quota.sqlite").is_file(), "ledger on the head node's disk"

    # Outputs written on the "compute node" exist and open, with data.
    res = workdir / "results"
    for sid in ("0", "1"):
        with xr.open_dataset(res / f"composites/30UUA/2019/summer/{sid}.nc") as ds:
            assert np.isfinite(ds["conc_chl_median"].values).any()
            assert int(ds["conc_chl_count"].max()) == 1
    table = pd.read_csv(res / "timeseries/30UUA.csv")
    assert set(table["subtile"].astype(str)) == {"0", "1"}
    assert (table["n_valid_pixels"] > 0).any()
    assert (res / "figures/campaign_status.png").stat().st_size > 0

    # A second run finds everything done: no new sbatch, no new remote work.
    # Only the file triggers: whether files written by SLURM jobs count as up to date on the head
    # node. (The code/params triggers would also react to colleagues editing rules or scripts in
    # a shared checkout while this test runs.)
    again = _run(workdir, cfg, "--rerun-triggers", "mtime", "input", "--", *TARGETS, timeout=120)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    reasons = re.findall(r"^(?:local)?(?:rule|checkpoint) .*$|^    reason: .*$", again.stderr, re.M)
    assert "Nothing to be done" in again.stdout + again.stderr, "\n".join(reasons)
    assert not SUBMITTED.search(again.stdout + again.stderr)
    assert len([s for s in emulator.accounting()["submissions"] if s.get("accepted")]) == 1


def test_native_backend_processes_on_slurm_and_downloads_on_the_head_node(
    emulator, workdir, nets_dir
):
    """``backend: native`` under the SLURM profile: each product's processing job (local_job) is
    an sbatch job with the native section's memory and threads; its download stays on the head
    node (network), once per product."""
    require_slurm()
    cfg = write_config(
        workdir, emulator.url, images_per_season=1, masking={"min_valid_obs": 1},
        backend="native", native={"nets": str(nets_dir), "threads": 1, "mem_mb": 1500},
        product_cache=str(workdir / "cache"),
    )  # fmt: skip
    doc = yaml.safe_load(cfg.read_text())
    doc["seasons"] = {"summer": doc["seasons"]["summer"]}
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    targets = [f"results/composites/30UUA/2019/summer/{sid}.nc" for sid in ("0", "1")]
    r = _run(
        workdir, cfg, "--slurm-init-seconds-before-status-checks", "6",
        "--slurm-keep-successful-logs", *targets, timeout=480,
    )  # fmt: skip
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", out)
    assert run_id, out[-3000:]
    jobs = _slurm_jobs(run_id[1])
    assert {j["state"] for j in jobs.values()} == {"COMPLETED"}, jobs
    by_rule: dict[str, list[dict[str, str]]] = {}
    for j in jobs.values():
        rule = re.match(r"rule_([a-z_]+?)(?:_wildcards_|$)", j["comment"])[1]
        by_rule.setdefault(rule, []).append(j)
    products = emulator.accounting()["orders"]
    # one processing job per product on SLURM, with the native section's memory; the
    # composites after them; the downloads never reached SLURM
    assert len(by_rule.get("local_job", [])) == len(products) >= 1, by_rule
    assert {j["mem"] for j in by_rule["local_job"]} == {"1500M"}
    assert len(by_rule.get("composite", [])) == 2
    assert "download_product" not in by_rule and "catalogue" not in by_rule
    assert re.search(r"^localrule download_product:", out, re.M)
    assert emulator.accounting()["counters"]["jobs_created"] == 0
    for sid in ("0", "1"):
        with xr.open_dataset(workdir / f"results/composites/30UUA/2019/summer/{sid}.nc") as ds:
            assert np.isfinite(ds["conc_chl_median"].values).any()
