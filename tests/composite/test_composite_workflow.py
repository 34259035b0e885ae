"""The composite and figure rules under real Snakemake, with the report.

The catalogue and remote-processing part of the workflow is replaced by pre-made frozen catalogues,
job results and job manifests (this test's fixture, per-subtile packing) and a minimal stand-in for
``rules/common.smk`` that defines the same names from the same config; ``rules/composite.smk`` (which
clips each sub-tile out of the job results) and ``rules/figures.smk`` are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import yaml
from c2rcc_testdata import VALID, product_name, write_product

from seasonal_c2rcc import paths
from seasonal_c2rcc import workflow as wf
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.grid import subtile_raster_grid

ROOT = Path(__file__).resolve().parents[2]

SNAKEFILE = f"""
from seasonal_c2rcc import workflow as wf
from seasonal_c2rcc.config import load_campaign

configfile: "config.yaml"
report: "{ROOT}/report/workflow.rst"

CAMPAIGN = load_campaign(config)
config = CAMPAIGN.config  # validated, defaults filled in (as rules/common.smk does)
SUBTILES = list(CAMPAIGN.subtiles)
TILES = CAMPAIGN.tiles
YEARS = list(CAMPAIGN.years)
SEASONS = [w.name for w in CAMPAIGN.seasons]

wildcard_constraints:
    year=r"\\d{{4}}",
    season="|".join(SEASONS),

def subtile_ids(tile):
    return [s.id for s in CAMPAIGN.subtiles_of(tile)]

def subtile_jobs(wildcards):
    path = paths.CATALOGUE.format(**wildcards)
    return wf.subtile_job_manifests(CAMPAIGN, path, wildcards.subtile)

def subtile_products(wildcards):
    doc = wf.read_catalogue(paths.CATALOGUE.format(**wildcards))
    return doc["subtiles"].get(wildcards.subtile, [])

include: "{ROOT}/rules/composite.smk"
include: "{ROOT}/rules/figures.smk"

rule all:
    default_target: True
    input:
        composite_targets(),
"""


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(workdir / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "--workflow-profile",
        "none",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=workdir)


def write_remote_jobs(
    root: Path, campaign, season: str, results: dict[tuple[str, str], Path]
) -> None:
    """A frozen 2019 selection of ``season`` (each sub-tile selects its products in ``results``)
    and, for every job the packing plans from it, the manifest rule remote_job would have left."""
    cat = root / f"results/catalog/30UUA/2019/{season}.json"
    doc = {
        "schema": 1, "tile": "30UUA", "year": 2019, "season": season,
        "products": {p: {"id": f"{p}.SAFE", "size": 700_000_000} for _, p in results},
        "subtiles": {st.id: [p for s, p in results if s == st.id] for st in campaign.subtiles},
    }  # fmt: skip
    cat.parent.mkdir(parents=True, exist_ok=True)
    cat.write_text(json.dumps(doc))
    for job in wf.season_plan(campaign, cat):
        manifest = {
            "job": job.key,
            "products": list(job.products),
            "files": {p: str(results[(job.subtiles[0], p)].relative_to(root)) for p in job.products},
            "subtiles": list(job.subtiles),
        }
        path = root / paths.JOB_MANIFEST.format(tile="30UUA", year=2019, season=season, job=job.key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest))


@pytest.mark.slow
def test_workflow__composites_figures_status_and_report(tmp_path):
    cfg = {
        "subtiles": str(ROOT / "config/subtiles/demo_30UUA.json"),
        "subtiles_crs": "EPSG:32630",
        "years": [2019],
        "seasons": {
            "summer": {"start": "06-01", "end": "08-31"},
            "winter": {"start": "12-01", "end": "02-29"},
        },
        "resolution": 60,
        "graph": str(ROOT / "graphs/s2_c2rcc.xml"),
        "masking": {"min_valid_obs": 2},
        "packing": "per-subtile",
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    campaign = load_campaign(cfg)
    rng = np.random.default_rng(5)
    results: dict[tuple[str, str], Path] = {}  # (sub-tile, product) -> job result
    for st in campaign.subtiles:
        grid = subtile_raster_grid(st, 60)
        yy, xx = np.mgrid[0 : grid.height, 0 : grid.width]
        base = 0.5 + 10 * (xx + yy) / (grid.width + grid.height)  # a gradient: a map to look at
        days = ["20190605", "20190615", "20190702", "20190720"]
        if st.id == "1":
            days = days[:2]
        for i, day in enumerate(days):
            flags = np.full(base.shape, VALID, np.uint32)
            flags[rng.random(base.shape) < 0.1] = 0
            name = product_name(day, orbit=37 if i % 2 else 80)
            results[(st.id, name)] = write_product(
                tmp_path / f"results/jobs/30UUA/2019/summer/{st.id}_{name}.nc",
                base * (1 + 0.1 * i),
                flags,
                grid=grid,
            )
    write_remote_jobs(tmp_path, campaign, "summer", results)
    write_remote_jobs(tmp_path, campaign, "winter", {})  # no scenes -> explicit no-data composites

    r = _snakemake(tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]
    res = tmp_path / "results"
    for st in ("0", "1"):
        assert (res / f"composites/30UUA/2019/summer/{st}.nc").exists()
        assert (res / f"composites/30UUA/2019/summer/{st}_chl.tif").exists()
        assert (res / f"climatology/30UUA/summer/{st}.nc").exists()
    import netCDF4

    with netCDF4.Dataset(res / "composites/30UUA/2019/winter/0.nc") as ds:
        assert ds.composite_status == "no_data"
    with netCDF4.Dataset(res / "composites/30UUA/2019/summer/0.nc") as ds:
        assert ds.n_acquisitions == 4 and ds.backend == "eocanvas" and len(ds.graph_sha256) == 64
        assert json.loads(ds.c2rcc_parameters)  # parsed from the real graph
    for png in [
        "figures/30UUA/2019/summer_map.png",
        "figures/30UUA/2019/winter_map.png",
        "figures/30UUA/climatology/summer_map.png",
        "figures/30UUA/timeseries_0.png",
        "figures/30UUA/timeseries_1.png",
        "figures/campaign_status.png",
    ]:
        img = mpimg.imread(res / png)
        assert img.shape[0] >= 200 and img.shape[1] >= 300
        assert img[..., :3].std() > 0.05, png
    status = json.loads((res / "figures/campaign_status.json").read_text())
    assert status["counts"] == {"done": 2, "no-data": 2, "failed": 0, "pending": 0}

    # idempotent: a second run has nothing to do
    r = _snakemake(tmp_path, "-n")
    assert "Nothing to be done" in r.stdout + r.stderr

    # the live status target runs on its own, and again only when the state changed
    r = _snakemake(tmp_path, "campaign_status")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (res / "status/campaign_status.png").exists()
    r = _snakemake(tmp_path, "campaign_status", "-n")
    assert "Nothing to be done" in r.stdout + r.stderr
    (res / "composites/30UUA/2019/summer/1.nc").unlink()
    r = _snakemake(tmp_path, "campaign_status")
    assert r.returncode == 0
    doc = json.loads((res / "status/campaign_status.json").read_text())
    assert doc["counts"]["pending"] == 1

    # the report, with every figure and its caption
    r = _snakemake(tmp_path, "--report", str(tmp_path / "report.zip"))
    assert r.returncode == 0, r.stderr[-3000:]
    names = zipfile.ZipFile(tmp_path / "report.zip").namelist()
    assert sum(n.endswith(".png") for n in names) == 7  # 2 season, 2 climatology, 2 series, status
