# L1C product downloads into the product cache (backends native and gpt; rules/local.smk reads
# them). Network work: on the head node, bounded by the hda_downloads resource.

# Without a limit Snakemake ignores the resource and would start every download at once; a
# user's --resources replaces the profile's whole map, so check it is still there.
if workflow.is_main_process and "hda_downloads" not in workflow.global_resources:
    raise WorkflowError(
        "the resource hda_downloads has no limit: use the default profile (profiles/default) or "
        "add hda_downloads=N to your --resources"
    )

# Record this campaign as a user of the (possibly shared) cache, so `seasonal-c2rcc cache list`
# and `cache prune --unused` count its frozen catalogues even when every product is a cache hit
# and no download job runs. A local file write, no network.
if workflow.is_main_process:
    from seasonal_c2rcc.download import ProductCache, register_campaign

    register_campaign(ProductCache.from_config(config), paths.CATALOGUE_DIR)


rule download_product:
    # One job per product, keyed by the product id alone: a product that several sub-tiles,
    # seasons, jobs or re-runs use is one node of the DAG (tile/year/season wildcards would make
    # one job per use, all writing the same file). The id names its tile, so the script finds the
    # catalogue entry (id, location) in that tile's frozen selections; the DAG carries no
    # catalogue input, and a refreshed catalogue never re-downloads a product already cached.
    output:
        paths.cached_product(config),
    log:
        paths.DOWNLOAD_LOG,
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        hda_downloads=1,
    params:
        catalog_dir=paths.CATALOGUE_DIR,
    script:
        "../scripts/download_product.py"
