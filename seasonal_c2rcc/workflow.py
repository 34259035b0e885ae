"""Glue between the Snakemake rules and the package: paths, per-season plans and job specs.

The rules' input functions and the scripts call these, so the plan the DAG is built from and the
plan a job runs are the same function of the same frozen catalogue.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from .atomic import atomic_dir, read_json
from .backends.base import JobSpec
from .catalogue import check_selection
from .clip import clip_to_grid
from .config import Campaign
from .graph import fill_graph
from .grid import RasterGrid, subtile_raster_grid
from .integrity import check_manifest_files
from .packing import RemoteJob, index_jobs, multi_input_graph, plan_jobs
from .paths import CATALOGUE, FROZEN_CATALOGUE, JOB_MANIFEST


def refresh_requested(config: dict[str, Any]) -> bool:
    """True when the run was asked to search the catalogue again (``refresh_catalogue``)."""
    return str(config.get("refresh_catalogue", False)).lower() == "true"


def frozen_catalogue(tile: str, year: str | int, season: str, *, refresh: bool) -> str | None:
    """Path of the tile/year/season selection if it can no longer change, else None.

    A selection is frozen once written with its copy under ``results/state/catalog`` (a re-run of
    the catalogue rule, e.g. on a code change, restores that copy instead of searching) and while
    no refresh is asked. Rules read a frozen selection directly instead of through
    ``checkpoints.catalogue.get()``: Snakemake re-evaluates every job that depends on a checkpoint
    after the DAG is built, which was half the dry-run time of a large campaign
    (docs/quota-and-packing.md).
    """
    if refresh:
        return None
    path = CATALOGUE.format(tile=tile, year=year, season=season)
    try:
        size = os.stat(path).st_size
        copy_size = os.stat(FROZEN_CATALOGUE.format(tile=tile, year=year, season=season)).st_size
    except OSError:
        return None
    # an interrupted copy or a hand edit would make the re-run restore something else
    return path if size == copy_size else None


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
        utm_bounds=tuple(job.utm_bounds),
        epsg=job.epsg,
        resolution=job.resolution,
    )


def subtile_sources(
    campaign: Campaign, catalogue_path: str | Path, subtile: str
) -> dict[str, RemoteJob]:
    """Each product the sub-tile selected -> the remote job whose result holds it (selection
    order). Empty for a season without usable scenes."""
    doc = read_catalogue(catalogue_path)
    index = index_jobs(season_plan(campaign, catalogue_path))
    try:
        return {p: index[(subtile, p)] for p in doc["subtiles"].get(subtile, [])}
    except KeyError as exc:
        raise KeyError(f"no job serves sub-tile {subtile} with {exc} in {catalogue_path}") from None


def subtile_job_manifests(
    campaign: Campaign, catalogue_path: str | Path, subtile: str
) -> list[str]:
    """Manifests of the remote jobs one sub-tile and season needs, each once."""
    doc = read_catalogue(catalogue_path)
    keys = dict.fromkeys(j.key for j in subtile_sources(campaign, catalogue_path, subtile).values())
    return [
        JOB_MANIFEST.format(tile=doc["tile"], year=doc["year"], season=doc["season"], job=k)
        for k in keys
    ]


def clip_subtile(
    campaign: Campaign,
    catalogue_path: str | Path,
    subtile: str,
    out_dir: str | Path,
    *,
    report: Callable[[str], None] = lambda msg: None,
) -> list[Path]:
    """Cut the sub-tile out of the result of every job serving it: ``out_dir/{product}.nc`` per
    selected product, exactly the pixels a per-subtile job would have given (clip.clip_to_grid).

    ``out_dir`` is written whole or not at all (a temporary folder, then renamed)."""
    doc = read_catalogue(catalogue_path)
    grid = subtile_grid(campaign, doc["tile"], subtile)
    sources = subtile_sources(campaign, catalogue_path, subtile)
    manifests: dict[str, dict[str, Any]] = {}
    out: list[Path] = []
    with atomic_dir(out_dir) as tmp:
        for product, job in sources.items():
            path = JOB_MANIFEST.format(
                tile=doc["tile"], year=doc["year"], season=doc["season"], job=job.key
            )
            if path not in manifests:
                # the job files' size and SHA-256 against the manifest, once per job
                check_manifest_files(path, [p for p, j in sources.items() if j.key == job.key])
                manifests[path] = read_json(path)
            manifest = manifests[path]
            attrs = {
                "seasonal_c2rcc_job": job.key,
                "seasonal_c2rcc_subtile": f"{doc['tile']}/{subtile}",
            }
            clip_to_grid(manifest["files"][product], grid, tmp / f"{product}.nc", attrs=attrs)
            report(
                f"clipped {product} sub-tile {subtile} ({grid.width} x {grid.height} px) from job {job.key}"
            )
            out.append(Path(out_dir) / f"{product}.nc")
    return out


def subtile_grid(campaign: Campaign, tile: str, subtile: str) -> RasterGrid:
    """The raster grid every per-product file and composite of ``tile``/``subtile`` is on."""
    for s in campaign.subtiles_of(tile):
        if s.id == subtile:
            return subtile_raster_grid(s, float(campaign.config["resolution"]))
    raise KeyError(f"sub-tile {tile}/{subtile} is not in the grid")


def composite_attrs(
    campaign: Campaign, tile: str, subtile: str, year: str | int, season: str
) -> dict[str, Any]:
    """Global attributes identifying a seasonal composite."""
    first, last = campaign.season(season).dates(int(year))
    return {
        "composite_kind": "seasonal",
        "tile": tile,
        "subtile": subtile,
        "year": int(year),
        "season": season,
        "season_start": first.isoformat(),
        "season_end": last.isoformat(),
        "resolution_m": float(campaign.config["resolution"]),
    }


def climatology_attrs(campaign: Campaign, tile: str, subtile: str, season: str) -> dict[str, Any]:
    """Global attributes identifying a climatology (all campaign years of one season)."""
    return {
        "composite_kind": "climatology",
        "tile": tile,
        "subtile": subtile,
        "season": season,
        "years": " ".join(str(y) for y in campaign.years),
        "resolution_m": float(campaign.config["resolution"]),
    }


def climatology_title(campaign: Campaign, tile: str, season: str) -> str:
    """Title of a climatology map, with the years it covers."""
    years = campaign.years
    span = f"{min(years)}-{max(years)}" if len(years) > 1 else str(years[0])
    return f"{tile} {season}, climatology {span}"


def subtile_outlines(campaign: Campaign, tile: str) -> dict[str, Any]:
    """{sub-tile id: UTM geometry} of one tile, for the map outlines."""
    return {s.id: s.geometry for s in campaign.subtiles_of(tile)}
