"""Snakemake adapter: download one L1C product into the product cache (or find it there)."""

from pathlib import Path

from seasonal_c2rcc.config import validate_schema
from seasonal_c2rcc.download import download_product, find_catalogue_product
from seasonal_c2rcc.runlog import script_logger

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.download")
config = validate_schema(snakemake.config)
key = snakemake.wildcards.product
try:
    product = find_catalogue_product(key, snakemake.params.catalog_dir)
    path = download_product(product, config, report=log.info)
except Exception as exc:
    log.exception(
        "download of %s failed: %s. Nothing is left under %s; re-run the same snakemake command "
        "to try again (a placed order is re-used, never paid twice).",
        key, exc, snakemake.output[0],
    )  # fmt: skip
    raise
if Path(path).resolve() != Path(snakemake.output[0]).resolve():
    raise RuntimeError(f"{key} landed at {path}, not at the rule's output {snakemake.output[0]}")
