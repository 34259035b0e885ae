"""Snakemake adapter: multi-year climatology of one sub-tile and season.

The median is over every valid observation of every year (the per-product files), not over the
yearly medians.
"""

from pathlib import Path

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
    build_composite(
        # each folder is written whole by rule composite: exactly the season's selected products
        sorted(f for d in snakemake.input.products for f in Path(d).glob("S2*.nc")),
        snakemake.output.nc,
        grid=wf.subtile_grid(campaign, w.tile, w.subtile),
        mask=MaskConfig.from_config(p.masking),
        provenance=Provenance.collect(graph_path=p.graph, backend=p.backend),
        attrs=wf.climatology_attrs(campaign, w.tile, w.subtile, w.season),
    )
except Exception:
    log.exception("climatology %s failed", snakemake.output.nc)
    raise
