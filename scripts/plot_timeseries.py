"""Snakemake adapter: time-series figure of one sub-tile from its tile's table."""

from seasonal_c2rcc.plotting import save_png, timeseries_figure
from seasonal_c2rcc.runlog import script_logger
from seasonal_c2rcc.timeseries import read_timeseries

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.plotting")
w = snakemake.wildcards
try:
    fig = timeseries_figure(
        read_timeseries(snakemake.input.table),
        tile=w.tile,
        subtile=w.subtile,
        data_source_note=snakemake.params.data_source_note,
    )
    save_png(fig, snakemake.output[0])
except Exception:
    log.exception("time-series plot %s failed", snakemake.output[0])
    raise
