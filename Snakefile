# seasonal-c2rcc: Sentinel-2 L1C -> C2RCC (WEkEO EOCanvas) -> seasonal composites per sub-tile.
# Usage: README.md. Configuration keys and defaults: config/schema.yaml.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/catalogue.smk"


# One processing path per run, chosen by `backend`; both leave the same job manifests.
if config["backend"] == "eocanvas":

    include: "rules/c2rcc.smk"

else:

    include: "rules/download.smk"
    include: "rules/local.smk"


include: "rules/composite.smk"
include: "rules/figures.smk"
include: "rules/bill.smk"


rule all:
    default_target: True
    input:
        composite_targets(),


onstart:
    # Once, in the main process, after the DAG is built and before the first job; never on -n.
    # Credentials and one login, only if a job that talks to WEkEO is about to run.
    if not workflow.touch and preflight.needs_wekeo(
        job.rule.name for job in workflow.dag.needrun_jobs()
    ):
        preflight.access_or_exit(CAMPAIGN)


onerror:
    import sys

    sys.stderr.write(
        "\nseasonal-c2rcc: some jobs failed; their logs are named above (remote EOCanvas logs in "
        "logs/eocanvas/remote/, gpt logs in logs/local/gpt/). Fix the cause and run the same "
        "command again: finished outputs, submitted remote jobs and downloaded products are kept "
        "and never paid twice. If Snakemake says the "
        "directory is locked, run `snakemake --unlock` first.\n"
    )
