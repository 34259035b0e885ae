"""Snakemake adapter: median chl and TSM map of one tile, year and season on a basemap."""

from shapely import wkt

from seasonal_c2rcc.plotting import BasemapConfig, save_png, season_map_figure
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.plotting")
p = snakemake.params
try:
    fig = season_map_figure(
        list(snakemake.input.composites),
        title=p.title,
        outlines={k: wkt.loads(v) for k, v in p.outlines.items()},
        basemap=BasemapConfig(source=p.figures["basemap"], cache_dir=p.figures["basemap_cache"]),
    )
    save_png(fig, snakemake.output[0])
except Exception:
    log.exception("season map %s failed", snakemake.output[0])
    raise
