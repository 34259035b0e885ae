"""Snakemake adapter: campaign status table (CSV + JSON) and matrix figure."""

from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.plotting import save_png, status_figure
from seasonal_c2rcc.runlog import script_logger
from seasonal_c2rcc.status import campaign_status, summary_counts, write_status_table

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.status")
try:
    c = load_campaign(snakemake.config)
    units = [(s.tile, y, w.name, s.id) for s in c.subtiles for y in c.years for w in c.seasons]
    df = campaign_status(units, "results")  # rule paths are relative to the working directory
    write_status_table(df, snakemake.output.csv, snakemake.output.json)
    shapes = {(s.tile, s.id): s.geometry_lonlat for s in c.subtiles}
    note = snakemake.params.data_source_note
    save_png(status_figure(df, geometries=shapes, data_source_note=note), snakemake.output.png)
    log.info("campaign status: %s", summary_counts(df))
except Exception:
    log.exception("campaign status failed")
    raise
