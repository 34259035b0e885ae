"""Snakemake adapter: seasonal composite of one sub-tile, year and season (+ chl COG)."""

from seasonal_c2rcc.composite import Provenance, build_composite
from seasonal_c2rcc.grid import RasterGrid
from seasonal_c2rcc.masking import MaskConfig
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.composite")
p = snakemake.params
try:
    build_composite(
        list(snakemake.input.products),
        snakemake.output.nc,
        grid=RasterGrid(**p.grid),
        mask=MaskConfig.from_config(p.masking),
        provenance=Provenance.collect(graph_path=p.graph, backend=p.backend),
        cog_path=snakemake.output.cog,
        attrs=p.attrs,
    )
except Exception:
    log.exception("composite %s failed", snakemake.output.nc)
    raise
