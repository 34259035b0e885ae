# Seasonal composites, climatologies and the per-tile time-series table (docs/composites.md).


include: "composite_common.smk"


rule composite:
    # Also cuts the sub-tile out of each job result: one job per sub-tile and season instead of one
    # per product keeps `snakemake -n` of a 31-tile campaign fast (docs/quota-and-packing.md).
    input:
        jobs=subtile_jobs,
    output:
        products=directory(SUBTILE_PRODUCTS),
        nc=COMPOSITE_NC,
        cog=COMPOSITE_COG,
    log:
        "logs/composite/{tile}/{year}/{season}/{subtile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        # a bound set by the sub-tile grid, not the number of scenes (docs/composites.md)
        mem_mb=composite_mem_mb,
    params:
        catalogue=CATALOGUE,
        products=subtile_products,
        resolution=config["resolution"],
        seasons=SEASON_WINDOWS,
        masking=config["masking"],
        graph=config["graph"],
        backend=config["backend"],
    script:
        "../scripts/composite.py"


rule climatology:
    input:
        products=climatology_products,
    output:
        nc=CLIMATOLOGY_NC,
    log:
        "logs/climatology/{tile}/{season}/{subtile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        # the same bound: a climatology pools every year's scenes in the same blocks
        mem_mb=composite_mem_mb,
    params:
        resolution=config["resolution"],
        years=YEARS,
        masking=config["masking"],
        graph=config["graph"],
        backend=config["backend"],
    script:
        "../scripts/climatology.py"


rule timeseries:
    input:
        composites=tile_composites,
    output:
        parquet=TIMESERIES_PARQUET,
        csv=TIMESERIES_CSV,
    log:
        "logs/timeseries/{tile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    script:
        "../scripts/timeseries.py"
