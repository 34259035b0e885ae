"""Snakemake adapter: process one planned job locally (backend native or gpt) and write its
manifest, the same one the EOCanvas path writes."""

from pathlib import Path

from seasonal_c2rcc.atomic import write_json_atomic
from seasonal_c2rcc.backends.local import run_local_job
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.integrity import manifest_entries
from seasonal_c2rcc.runlog import script_logger
from seasonal_c2rcc.workflow import job_spec

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.local")
campaign = load_campaign(snakemake.config)
spec = job_spec(
    campaign,
    snakemake.params.catalogue,
    snakemake.wildcards.job,
    Path(snakemake.input.graph).read_text(),
)
try:
    outputs = run_local_job(
        spec,
        dict(zip(spec.product_keys, snakemake.input.products, strict=True)),
        campaign.config,
        out_dir=Path(snakemake.params.out_dir),
        log_dir=Path(snakemake.params.log_dir),
        threads=snakemake.threads,
        report=log.info,
    )
except Exception as exc:
    log.exception(
        "job %s (backend %s) failed: %s. Re-run the same snakemake command to resume: results "
        "already made and verified are kept, downloaded products stay in the cache.",
        spec.key, campaign.config["backend"], exc,
    )  # fmt: skip
    raise
write_json_atomic(
    snakemake.output[0],
    {
        "job": spec.key,
        "backend": campaign.config["backend"],
        "products": list(outputs),
        "files": outputs,
        "subtiles": list(spec.subtiles),
        # size and SHA-256 of each file, checked before the composite clips it
        "checks": manifest_entries(outputs),
    },
)
