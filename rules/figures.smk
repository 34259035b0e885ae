# Figures for people and the Snakemake report: season maps, sub-tile time series, campaign
# status (docs/composites.md). Captions in report/. Functions in rules/composite_common.smk.


# One colour range per mapped variable for every map of a tile (all years, seasons and the
# climatologies): configured (figures.ranges) or pooled P2-P98 of all the tile's composites.
rule colour_ranges:
    input:
        composites=colour_range_composites,
    output:
        COLOUR_RANGES,
    log:
        "logs/colour_ranges/{tile}.log",
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    params:
        ranges=config["figures"]["ranges"],
        percentiles=config["figures"]["range_percentiles"],
    script:
        "../scripts/colour_ranges.py"


rule season_map:
    input:
        composites=season_composites,
        ranges=COLOUR_RANGES,
    output:
        report(
            SEASON_MAP,
            caption="../report/season_map.rst",
            category="{tile}",
            subcategory="season maps",
            labels={
                "figure": "chl, TSM, Kd and Rrs maps",
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
        ranges=COLOUR_RANGES,
    output:
        report(
            CLIMATOLOGY_MAP,
            caption="../report/climatology_map.rst",
            category="{tile}",
            subcategory="climatology maps",
            labels={
                "figure": "chl, TSM, Kd and Rrs climatology",
                "season": "{season}",
            },
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
    params:
        data_source_note=config["figures"]["data_source_note"],
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
    params:
        data_source_note=config["figures"]["data_source_note"],
    script:
        "../scripts/campaign_status.py"


# The status now, on a partial or running campaign: `snakemake campaign_status`. It needs no
# other job; the fingerprint of the state files is a parameter, so it re-runs exactly when the
# campaign state changed (force with --forcerun campaign_status). A report built before the
# campaign ends shows it (composite_targets() asks for it then).
rule campaign_status:
    output:
        png=report(
            paths.STATUS_NOW_PNG,
            caption="../report/campaign_status_now.rst",
            category="campaign",
            labels={"figure": "campaign status (partial campaign)"},
        ),
        csv=paths.STATUS_NOW_CSV,
        json=paths.STATUS_NOW_JSON,
    log:
        "logs/campaign_status/now.log",
    localrule: True
    conda:
        "../envs/seasonal-c2rcc.yaml"
    params:
        fingerprint=status_fingerprint,
        data_source_note=config["figures"]["data_source_note"],
    script:
        "../scripts/campaign_status.py"
