"""Snakemake adapter: search one tile/year/season once and write the frozen selection."""

import shutil
from pathlib import Path

from seasonal_c2rcc import failfast
from seasonal_c2rcc.atomic import write_json_atomic
from seasonal_c2rcc.catalogue import search_season
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.paths import FROZEN_CATALOGUE
from seasonal_c2rcc.runlog import script_logger
from seasonal_c2rcc.workflow import refresh_requested

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.catalogue")
w = snakemake.wildcards
failfast.install(snakemake, log, f"catalogue search for {w.tile} {w.year} {w.season}")
frozen = Path(FROZEN_CATALOGUE.format(tile=w.tile, year=w.year, season=w.season))
if frozen.exists() and not refresh_requested(snakemake.config):
    # Snakemake re-runs this rule when its code changes; the selection must not change with it.
    shutil.copyfile(frozen, snakemake.output[0])
    log.info(
        "%s %s %s: re-using the frozen selection %s (to search again: snakemake --forcerun "
        "catalogue --config refresh_catalogue=true)", w.tile, w.year, w.season, frozen,
    )  # fmt: skip
else:
    doc = search_season(load_campaign(snakemake.config), w.tile, int(w.year), w.season)
    write_json_atomic(frozen, doc)
    write_json_atomic(snakemake.output[0], doc)
    n = len(doc["products"])
    log.info(
        "%s %s %s: %d found, %d selected for %d sub-tile(s)%s",
        w.tile, w.year, w.season, doc["n_found"], n, len(doc["subtiles"]),
        "" if n else " (no usable scene: the composites of this season will be explicit no-data)",
    )  # fmt: skip
