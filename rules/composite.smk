# Seasonal composites, climatologies and the per-tile time-series table (docs/composites.md).


include: "composite_common.smk"


rule composite:
    input:
        products=c2rcc_products,
    output:
        nc="results/composites/{tile}/{year}/{season}/{subtile}.nc",
        cog="results/composites/{tile}/{year}/{season}/{subtile}_chl.tif",
    log:
        "logs/composite/{tile}/{year}/{season}/{subtile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        # the observation stack is reduced in 64 MiB blocks: memory does not grow with scenes
        mem_mb=1000,
    params:
        grid=composite_grid,
        attrs=composite_attrs,
        masking=config["masking"],
        graph=config["graph"],
        backend=config["backend"],
    script:
        "../scripts/composite.py"


rule climatology:
    input:
        products=climatology_products,
    output:
        nc="results/climatology/{tile}/{season}/{subtile}.nc",
    log:
        "logs/climatology/{tile}/{season}/{subtile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    resources:
        mem_mb=1000,
    params:
        grid=composite_grid,
        attrs=climatology_attrs,
        masking=config["masking"],
        graph=config["graph"],
        backend=config["backend"],
    script:
        "../scripts/climatology.py"


rule timeseries:
    input:
        composites=tile_composites,
    output:
        parquet="results/timeseries/{tile}.parquet",
        csv="results/timeseries/{tile}.csv",
    log:
        "logs/timeseries/{tile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    script:
        "../scripts/timeseries.py"
