# One catalogue search per tile, year and season, frozen once written. Rules read a frozen
# selection directly (rules/common.smk: catalogue_json); the checkpoint only runs for a missing
# selection or a refresh.


checkpoint catalogue:
    # No params or inputs on purpose: the selection is frozen, so editing the config never
    # triggers a new search. Refresh: snakemake --forcerun catalogue --config refresh_catalogue=true
    output:
        paths.CATALOGUE,
    log:
        "logs/catalogue/{tile}/{year}/{season}.log",
    retries: 2
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        # the attempt number, for seasonal_c2rcc.failfast (a permanent failure is not tried again)
        attempt=lambda wildcards, attempt: attempt,
    script:
        "../scripts/catalogue.py"
