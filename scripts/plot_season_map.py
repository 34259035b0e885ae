"""Snakemake adapter: median chl, TSM and Kd maps and an Rrs true-colour map of one tile, for one
year's season or the climatology of a season, on a basemap, in the tile's colour ranges (rules
season_map and climatology_map)."""

from seasonal_c2rcc import workflow as wf
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.figure_ranges import read_ranges
from seasonal_c2rcc.plotting import BasemapConfig, PlotConfig, save_png, season_map_figure
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.plotting")
p = snakemake.params
w = snakemake.wildcards
try:
    campaign = load_campaign(snakemake.config)
    figures = p.figures
    title = p.get("title") or wf.climatology_title(campaign, w.tile, w.season)
    fig = season_map_figure(
        list(snakemake.input.composites),
        title=title,
        outlines=wf.subtile_outlines(campaign, w.tile),
        ranges=read_ranges(snakemake.input.ranges),
        tile=w.tile,
        data_source_note=figures["data_source_note"],
        basemap=BasemapConfig(source=figures["basemap"], cache_dir=figures["basemap_cache"]),
        config=PlotConfig(min_valid_obs=figures["min_valid_obs"]),
    )
    save_png(fig, snakemake.output[0])
except Exception:
    log.exception("map %s failed", snakemake.output[0])
    raise
