"""Snakemake adapter: cut one sub-tile out of a remote job's result for one product."""

from seasonal_c2rcc.atomic import read_json
from seasonal_c2rcc.clip import clip_to_grid
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.grid import subtile_raster_grid
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.clip")
w = snakemake.wildcards
campaign = load_campaign(snakemake.config)
subtile = next(s for s in campaign.subtiles_of(w.tile) if s.id == w.subtile)
manifest = read_json(snakemake.input.job)
src = manifest["files"][w.product]
grid = subtile_raster_grid(subtile, float(campaign.config["resolution"]))
clip_to_grid(
    src,
    grid,
    snakemake.output[0],
    attrs={"seasonal_c2rcc_job": manifest["job"], "seasonal_c2rcc_subtile": f"{w.tile}/{w.subtile}"},
)
log.info("clipped %s sub-tile %s (%d x %d px) from job %s", w.product, w.subtile, grid.width, grid.height, manifest["job"])
