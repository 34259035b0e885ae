# Configuration, wildcard constraints and input functions shared by all rules.
from snakemake.exceptions import WorkflowError

from pathlib import Path

from seasonal_c2rcc import paths, preflight
from seasonal_c2rcc import workflow as wf
from seasonal_c2rcc.backends.local import (
    check_local_config,
    local_job_mem_mb,
    local_job_threads,
)
from seasonal_c2rcc.errors import SeasonalC2rccError

# Everything checkable without network or credentials, also on dry runs: one line per problem and
# exit 1 (config/schema.yaml defaults are filled into `config`). The credentials and the one token
# request come in the Snakefile's onstart, before the first job.
CAMPAIGN = preflight.campaign_or_exit(config)

# Local backends: packing, the graph's c2rcc.msi parameters and the nets (native) or gpt itself,
# before any product is downloaded.
if config["backend"] != "eocanvas":
    try:
        check_local_config(config, Path(config["graph"]).read_text())
    except SeasonalC2rccError as exc:
        preflight.fail(exc)

# Without a limit Snakemake ignores the resource and would run every remote job at once; a
# user's --resources replaces the profile's whole map, so check it is still there.
if workflow.is_main_process and "eocanvas_jobs" not in workflow.global_resources:
    preflight.fail(
        "the resource eocanvas_jobs has no limit: use the default profile (profiles/default) or "
        "add eocanvas_jobs=N to your --resources"
    )

SUBTILES = list(CAMPAIGN.subtiles)
TILES = CAMPAIGN.tiles
YEARS = list(CAMPAIGN.years)
SEASONS = [w.name for w in CAMPAIGN.seasons]


wildcard_constraints:
    tile=r"\d\d[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V]",
    year=r"\d{4}",
    season="|".join(SEASONS),
    subtile=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
    product=r"S2[A-D]_MSIL1C_[0-9T]+_N\d{4}_R\d{3}_T\w{5}_[0-9T]+",
    job=r"[A-Za-z0-9_]+",


def subtile_ids(tile):
    """Sub-tile ids of one tile, in grid-file order."""
    return [s.id for s in CAMPAIGN.subtiles_of(tile)]


REFRESH_CATALOGUE = wf.refresh_requested(config)


def catalogue_json(wildcards):
    """The selection of the wildcards' tile/year/season (runs the search first if needed).

    A frozen selection is read without the checkpoint (see wf.frozen_catalogue for why).
    """
    frozen = wf.frozen_catalogue(
        wildcards.tile, wildcards.year, wildcards.season, refresh=REFRESH_CATALOGUE
    )
    if frozen is not None:
        return frozen
    return checkpoints.catalogue.get(
        tile=wildcards.tile, year=wildcards.year, season=wildcards.season
    ).output[0]


def subtile_jobs(wildcards):
    """Manifests of the remote jobs whose results hold {tile}/{year}/{season}/{subtile}'s
    products; empty for a season without scenes."""
    return wf.subtile_job_manifests(
        CAMPAIGN, catalogue_json(wildcards), wildcards.subtile
    )


def subtile_products(wildcards):
    """The products {tile}/{year}/{season}/{subtile} selected (a param of composite: a refreshed
    selection re-runs the composite through the params trigger even when the same remote jobs
    serve it, as under multi-input packing)."""
    return wf.read_catalogue(catalogue_json(wildcards))["subtiles"].get(
        wildcards.subtile, []
    )


def local_job_products(wildcards):
    """The cached L1C products a local job processes (backend native or gpt), in branch order."""
    doc = wf.read_catalogue(catalogue_json(wildcards))
    for job in wf.season_plan(CAMPAIGN, catalogue_json(wildcards)):
        if job.key == wildcards.job:
            return [ancient(paths.cached_product(config, p)) for p in job.products]
    raise WorkflowError(
        f"job {wildcards.job} is not in the plan of {doc['tile']}/{doc['year']}/{doc['season']}"
    )


#: Threads and memory of one local processing job (the rule's resources; SLURM asks for them).
LOCAL_JOB_THREADS = local_job_threads(config)
LOCAL_JOB_MEM_MB = local_job_mem_mb(config)
