"""Snakemake adapter: median chl and TSM map of one tile, and one year's season or the climatology
of a season, on a basemap (rules season_map and climatology_map)."""

from seasonal_c2rcc import workflow as wf
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.plotting import BasemapConfig, save_png, season_map_figure
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.plotting")
p = snakemake.params
w = snakemake.wildcards
try:
    campaign = load_campaign(snakemake.config)
    title = p.get("title") or wf.climatology_title(campaign, w.tile, w.season)
    fig = season_map_figure(
        list(snakemake.input.composites),
        title=title,
        outlines=wf.subtile_outlines(campaign, w.tile),
        basemap=BasemapConfig(source=p.figures["basemap"], cache_dir=p.figures["basemap_cache"]),
    )
    save_png(fig, snakemake.output[0])
except Exception:
    log.exception("map %s failed", snakemake.output[0])
    raise
