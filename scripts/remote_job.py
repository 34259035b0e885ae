"""Snakemake adapter: run one remote C2RCC job on EOCanvas and write its manifest."""

from pathlib import Path

from seasonal_c2rcc import failfast
from seasonal_c2rcc.atomic import write_json_atomic
from seasonal_c2rcc.backends.eocanvas import run_job
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.integrity import manifest_entries
from seasonal_c2rcc.runlog import script_logger
from seasonal_c2rcc.workflow import job_spec

snakemake = snakemake  # noqa: F821  (injected by Snakemake)
log = script_logger(snakemake, "seasonal_c2rcc.eocanvas")
w = snakemake.wildcards
failfast.install(
    snakemake,
    log,
    f"remote job {w.job}",
    hint=f"Job record: {snakemake.params.state_dir}/jobs/{w.job}.json; resume by re-running the same "
    "snakemake command (finished and running remote jobs are never submitted again)",
)
campaign = load_campaign(snakemake.config)
spec = job_spec(
    campaign,
    snakemake.params.catalogue,
    snakemake.wildcards.job,
    Path(snakemake.input.graph).read_text(),
)
outputs = run_job(
    spec,
    campaign.config,
    state_dir=Path(snakemake.params.state_dir),
    out_dir=Path(snakemake.params.out_dir),
    log_dir=Path(snakemake.params.log_dir),
    report=log.info,
)
write_json_atomic(
    snakemake.output[0],
    {
        "job": spec.key,
        "products": list(outputs),
        "files": outputs,
        "subtiles": list(spec.subtiles),
        # size and SHA-256 of each file: a later run finds a damaged file and fetches it again
        # (seasonal_c2rcc.integrity)
        "checks": manifest_entries(outputs),
    },
)
