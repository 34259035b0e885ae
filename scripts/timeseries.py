"""Snakemake adapter: the per-tile time-series table (Parquet + CSV) from its composites."""

from seasonal_c2rcc.runlog import script_logger
from seasonal_c2rcc.timeseries import write_timeseries

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.timeseries")
try:
    write_timeseries(
        list(snakemake.input.composites), snakemake.output.parquet, snakemake.output.csv
    )
except Exception:
    log.exception("time series %s failed", snakemake.output.parquet)
    raise
