"""Glue between the Snakemake rules and the package: paths, per-season plans and job specs.

The rules' input functions and the scripts call these, so the plan the DAG is built from and the
plan a job runs are the same function of the same frozen catalogue.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from .atomic import read_json
from .catalogue import check_selection
from .config import Campaign
from .eocanvas_backend import JobSpec
from .graph import fill_graph
from .packing import RemoteJob, index_jobs, multi_input_graph, plan_jobs

CATALOGUE = "results/catalog/{tile}/{year}/{season}.json"
JOB_MANIFEST = "results/jobs/{tile}/{year}/{season}/{job}.json"
JOB_DIR = "results/jobs/{tile}/{year}/{season}"
PRODUCT = "results/c2rcc/{tile}/{year}/{season}/{subtile}/{product}.nc"
STATE_DIR = "results/state"


@cache
def _read_catalogue(path: str, mtime_ns: int) -> dict[str, Any]:
    return check_selection(read_json(path), path)


def read_catalogue(path: str | Path) -> dict[str, Any]:
    """Read and check a frozen selection, memoised per file version (input functions call this a
    lot: once per job and again after every checkpoint)."""
    p = Path(path)
    return _read_catalogue(str(p), p.stat().st_mtime_ns)


@cache
def _plan(campaign: Campaign, path: str, mtime_ns: int) -> tuple[RemoteJob, ...]:
    cfg = campaign.config
    doc = _read_catalogue(path, mtime_ns)
    return tuple(
        plan_jobs(
            doc,
            campaign.subtiles_of(doc["tile"]),
            mode=cfg["packing"],
            resolution=float(cfg["resolution"]),
            pixel_budget=int(cfg["pixel_budget"]),
        )
    )


def season_plan(campaign: Campaign, catalogue_path: str | Path) -> tuple[RemoteJob, ...]:
    """The remote jobs of one tile/year/season under the configured packing."""
    p = Path(catalogue_path)
    return _plan(campaign, str(p), p.stat().st_mtime_ns)


def job_serving(
    campaign: Campaign, catalogue_path: str | Path, subtile: str, product: str
) -> RemoteJob:
    """The job whose result holds ``product`` over ``subtile``."""
    jobs = season_plan(campaign, catalogue_path)
    try:
        return index_jobs(jobs)[(subtile, product)]
    except KeyError:
        raise KeyError(
            f"no job serves sub-tile {subtile} with {product} in {catalogue_path}"
        ) from None


def job_spec(
    campaign: Campaign, catalogue_path: str | Path, job_key: str, graph_text: str
) -> JobSpec:
    """Everything the backend needs to run ``job_key``: products, region and the filled graph."""
    doc = read_catalogue(catalogue_path)
    jobs = {j.key: j for j in season_plan(campaign, catalogue_path)}
    if job_key not in jobs:
        raise KeyError(f"job {job_key} is not in the plan of {catalogue_path}")
    job = jobs[job_key]
    graph = fill_graph(graph_text, job.geo_region, int(campaign.config["resolution"]))
    if len(job.products) > 1:
        graph = multi_input_graph(graph, len(job.products))
    products = tuple({"key": k, **doc["products"][k]} for k in job.products)
    return JobSpec(
        key=job.key,
        tile=doc["tile"],
        year=int(doc["year"]),
        season=doc["season"],
        products=products,
        geo_region=job.geo_region,
        subtiles=tuple(job.subtiles),
        graph=graph,
    )


def product_files(catalogue_path: str | Path, subtile: str) -> list[str]:
    """Per-product sub-tile files of one sub-tile and season (possibly none)."""
    doc = read_catalogue(catalogue_path)
    return [
        PRODUCT.format(
            tile=doc["tile"], year=doc["year"], season=doc["season"], subtile=subtile, product=k
        )
        for k in doc["subtiles"].get(subtile, [])
    ]
