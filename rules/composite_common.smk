# Paths, parameters and input functions of rules/composite.smk and rules/figures.smk (kept apart
# from the rules, as `snakemake --lint` asks). Uses from rules/common.smk: config, CAMPAIGN,
# YEARS, SEASONS, TILES, subtile_ids, subtile_jobs, subtile_products.
import os

import functools
import sys

from seasonal_c2rcc.composite import peak_memory_mb
from seasonal_c2rcc.integrity import manifests_to_refetch, repair_results
from seasonal_c2rcc.status import state_fingerprint
from seasonal_c2rcc import paths, preflight
from seasonal_c2rcc.errors import SeasonalC2rccError
from seasonal_c2rcc.figure_ranges import check_configured_ranges, needs_composites
from seasonal_c2rcc.reporting import existing_targets, report_only_run
from seasonal_c2rcc.paths import (
    CATALOGUE,
    CLIMATOLOGY_MAP,
    CLIMATOLOGY_NC,
    COLOUR_RANGES,
    COMPOSITE_COG,
    COMPOSITE_NC,
    RESULTS,
    SEASON_MAP,
    STATUS_CSV,
    STATUS_JSON,
    STATUS_PNG,
    SUBTILE_PRODUCTS,
    TIMESERIES_CSV,
    TIMESERIES_PARQUET,
    TIMESERIES_PNG,
)

# Local state is verified before it is trusted, once per run and before the DAG is built: a damaged
# job result, composite, table or catalogue is put where this run remakes it (a finished remote
# job's results are downloaded again, never re-submitted). seasonal_c2rcc/integrity.py.
if workflow.is_main_process:
    for line in repair_results(RESULTS):
        sys.stderr.write(f"seasonal-c2rcc: damaged local state repaired: {line}\n")

# Static params (no per-job function: a 31-tile campaign has ~20k composite jobs): a change of
# resolution or season dates still re-runs the composites through Snakemake's params trigger.
SEASON_WINDOWS = {
    w.name: "{:02d}-{:02d}/{:02d}-{:02d}".format(*w.start, *w.end)
    for w in CAMPAIGN.seasons
}


@functools.cache
def _subtile_mem_mb(tile, subtile):
    grid = wf.subtile_grid(CAMPAIGN, tile, subtile)
    return peak_memory_mb(grid.width, grid.height)


def composite_mem_mb(wildcards):
    """Memory of one composite or climatology job (MB): bounded by the sub-tile grid at the
    configured resolution, whatever the number of scenes (composite.peak_memory_mb)."""
    return _subtile_mem_mb(wildcards.tile, wildcards.subtile)


def climatology_products(wildcards):
    """The per-product folders of one sub-tile and season, every campaign year."""
    return expand(
        SUBTILE_PRODUCTS,
        tile=wildcards.tile,
        year=YEARS,
        season=wildcards.season,
        subtile=wildcards.subtile,
    )


def tile_composites(wildcards):
    """Every seasonal composite of one tile (all sub-tiles, years and seasons)."""
    return expand(
        COMPOSITE_NC,
        tile=wildcards.tile,
        year=YEARS,
        season=SEASONS,
        subtile=subtile_ids(wildcards.tile),
    )


def season_composites(wildcards):
    """The composites of every sub-tile of one tile, year and season."""
    return expand(
        COMPOSITE_NC,
        tile=wildcards.tile,
        year=wildcards.year,
        season=wildcards.season,
        subtile=subtile_ids(wildcards.tile),
    )


def season_climatologies(wildcards):
    """The climatologies of every sub-tile of one tile and season."""
    return expand(
        CLIMATOLOGY_NC,
        tile=wildcards.tile,
        season=wildcards.season,
        subtile=subtile_ids(wildcards.tile),
    )


# A bad `figures.ranges` entry stops the run here, before any job: one line naming the key.
try:
    check_configured_ranges(config["figures"]["ranges"])
except SeasonalC2rccError as exc:
    preflight.fail(exc)


def figures_config():
    """The validated ``figures`` config section (schema defaults filled in) and the masking
    threshold the maps' no-data legend names."""
    return {
        **config["figures"],
        "min_valid_obs": config["masking"]["min_valid_obs"],
    }


def colour_range_composites(wildcards):
    """What the tile's colour ranges are computed from: every seasonal composite of the tile,
    or nothing when `figures.ranges` fixes every mapped variable (then a season's maps need
    only that season's composites)."""
    if needs_composites(config["figures"]["ranges"]):
        return tile_composites(wildcards)
    return []


def status_fingerprint(wildcards):
    """Changes whenever a composite, catalogue, job record or clipped product changes."""
    return state_fingerprint(RESULTS)


def tile_tables():
    """The time-series table of every tile (each needs all of its tile's composites)."""
    return [TIMESERIES_PARQUET.format(tile=t) for t in TILES]


def composite_targets():
    """The final outputs, for the default target (the Snakefile's all): every figure, every
    climatology, every chl COG, the CSV tables and the campaign status files.

    The composites and parquet tables are reached through these. Every output no other rule reads
    must be listed: Snakemake checks only the requested outputs of a job, so a lost COG or CSV
    would never be rebuilt."""
    targets = []
    for tile in TILES:
        ids = subtile_ids(tile)
        targets += expand(
            COMPOSITE_COG, tile=tile, year=YEARS, season=SEASONS, subtile=ids
        )
        targets += expand(CLIMATOLOGY_NC, tile=tile, season=SEASONS, subtile=ids)
        targets += expand(SEASON_MAP, tile=tile, year=YEARS, season=SEASONS)
        targets += expand(CLIMATOLOGY_MAP, tile=tile, season=SEASONS)
        targets += expand(TIMESERIES_PNG, tile=tile, subtile=ids)
        targets.append(TIMESERIES_CSV.format(tile=tile))
    targets += [STATUS_PNG, STATUS_CSV, STATUS_JSON]
    # damaged job results set aside (seasonal_c2rcc.integrity): fetched again now, even where
    # every composite is up to date
    targets += manifests_to_refetch(RESULTS)
    if report_only_run():
        # `snakemake --report` on a partial campaign: Snakemake fails on any output marked for
        # the report that does not exist yet, so ask only for what exists (the live status
        # figure too, while the final one is not there) and leave the rest out of the report.
        live = [] if os.path.exists(STATUS_PNG) else [paths.STATUS_NOW_PNG]
        return existing_targets(targets, live)
    return list(dict.fromkeys(targets))
