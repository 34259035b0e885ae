"""Snakemake adapter: write the campaign's bill (never searches, never spends)."""

from pathlib import Path

from seasonal_c2rcc import paths
from seasonal_c2rcc.atomic import atomic_path
from seasonal_c2rcc.bill import compute_bill, render_bill
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.bill")
campaign = load_campaign(snakemake.config)
bill = compute_bill(campaign.config, list(campaign.subtiles), Path(paths.CATALOGUE_DIR))
text = render_bill(bill, "markdown")
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(text + "\n")
log.info("\n%s", render_bill(bill, "text"))
