"""Snakemake adapter: cut one sub-tile out of its remote jobs' results, then build the seasonal
composite of that sub-tile, year and season (+ chl COG)."""

from seasonal_c2rcc import workflow as wf
from seasonal_c2rcc.composite import Provenance, build_composite
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.masking import MaskConfig
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.composite")
p = snakemake.params
w = snakemake.wildcards
try:
    campaign = load_campaign(snakemake.config)
    products = wf.clip_subtile(
        campaign,
        p.catalogue,
        w.subtile,
        snakemake.output.products,
        report=log.info,
    )
    build_composite(
        products,
        snakemake.output.nc,
        grid=wf.subtile_grid(campaign, w.tile, w.subtile),
        mask=MaskConfig.from_config(p.masking),
        provenance=Provenance.collect(graph_path=p.graph, backend=p.backend),
        cog_path=snakemake.output.cog,
        attrs=wf.composite_attrs(campaign, w.tile, w.subtile, w.year, w.season),
    )
except Exception:
    log.exception("composite %s failed", snakemake.output.nc)
    raise
