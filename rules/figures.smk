# Figures for people and the Snakemake report: season maps, sub-tile time series, campaign
# status (docs/composites.md). Captions in report/. Functions in rules/composite_common.smk.


rule season_map:
    input:
        composites=season_composites,
    output:
        report(
            SEASON_MAP,
            caption="../report/season_map.rst",
            category="{tile}",
            subcategory="season maps",
            labels={
                "figure": "chl and TSM map",
                "year": "{year}",
                "season": "{season}",
            },
        ),
    log:
        "logs/season_map/{tile}/{year}/{season}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    params:
        title="{tile} {season} {year}",
        figures=figures_config(),
    script:
        "../scripts/plot_season_map.py"


rule climatology_map:
    input:
        composites=season_climatologies,
    output:
        report(
            CLIMATOLOGY_MAP,
            caption="../report/climatology_map.rst",
            category="{tile}",
            subcategory="climatology maps",
            labels={"figure": "chl and TSM climatology", "season": "{season}"},
        ),
    log:
        "logs/climatology_map/{tile}/{season}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    params:
        figures=figures_config(),
    script:
        "../scripts/plot_season_map.py"


rule timeseries_plot:
    input:
        table=TIMESERIES_PARQUET,
    output:
        report(
            TIMESERIES_PNG,
            caption="../report/timeseries_plot.rst",
            category="{tile}",
            subcategory="time series",
            labels={"figure": "time series", "sub-tile": "{subtile}"},
        ),
    log:
        "logs/timeseries_plot/{tile}/{subtile}.log",
    conda:
        "../envs/seasonal-c2rcc.yaml"
    script:
        "../scripts/plot_timeseries.py"


# The campaign status at the end of a complete run, for the report: after every composite.
rule campaign_status_map:
    input:
        # the tables need every composite: this map comes last, with one edge per tile
        tables=tile_tables(),
    output:
        png=report(
            STATUS_PNG,
            caption="../report/campaign_status.rst",
            category="campaign",
            labels={"figure": "campaign status"},
        ),
        csv=STATUS_CSV,
        json=STATUS_JSON,
    log:
        "logs/campaign_status/final.log",
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    script:
        "../scripts/campaign_status.py"


# The status now, on a partial or running campaign: `snakemake campaign_status`. It needs no
# other job; the fingerprint of the state files is a parameter, so it re-runs exactly when the
# campaign state changed (force with --forcerun campaign_status).
rule campaign_status:
    output:
        png=paths.STATUS_NOW_PNG,
        csv=paths.STATUS_NOW_CSV,
        json=paths.STATUS_NOW_JSON,
    log:
        "logs/campaign_status/now.log",
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    params:
        fingerprint=status_fingerprint,
    script:
        "../scripts/campaign_status.py"
