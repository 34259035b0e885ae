"""Snakemake adapter: the colour range of every mapped variable of one tile (rule colour_ranges)."""

from seasonal_c2rcc.figure_ranges import tile_colour_ranges, write_ranges
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.figure_ranges")
p = snakemake.params
try:
    ranges = tile_colour_ranges(
        list(snakemake.input.composites), p.ranges, tuple(float(v) for v in p.percentiles)
    )
    write_ranges(ranges, snakemake.output[0])
    for r in ranges:
        log.info("%s: %g-%g %s (%s)", r.variable, r.low, r.high, r.units, r.source)
except Exception:
    log.exception("colour ranges %s failed", snakemake.output[0])
    raise
