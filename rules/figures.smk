# Figures for people and the Snakemake report: season maps, sub-tile time series, campaign
# status (docs/composites.md). Captions in report/. Uses rules/composite.smk.
from seasonal_c2rcc.status import state_fingerprint

FIGURES = "results/figures"
STATUS_NOW = "results/status/campaign_status"


def figures_config():
    """Figure settings (``figures`` config section when present, else the defaults)."""
    section = config.get("figures") or {}
    return {
        "basemap": section.get("basemap", "Esri.OceanBasemap"),
        "basemap_cache": section.get("basemap_cache", "results/.basemap_cache"),
    }


def season_composites(wildcards):
    """The composites of every sub-tile of one tile, year and season."""
    return expand(
        COMPOSITE_NC,
        tile=wildcards.tile,
        year=wildcards.year,
        season=wildcards.season,
        subtile=subtile_ids(wildcards.tile),
    )


def subtile_outlines(wildcards):
    """{sub-tile id: UTM WKT} of one tile, for the map outlines."""
    return {s.id: s.geometry.wkt for s in SUBTILES if s.tile == wildcards.tile}


rule season_map:
    input:
        composites=season_composites,
    output:
        report(
            FIGURES + "/{tile}/{year}/{season}_map.png",
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
    params:
        outlines=subtile_outlines,
        title="{tile} {season} {year}",
        figures=figures_config(),
    script:
        "../scripts/plot_season_map.py"


rule timeseries_plot:
    input:
        table=TIMESERIES + ".parquet",
    output:
        report(
            FIGURES + "/{tile}/timeseries_{subtile}.png",
            caption="../report/timeseries_plot.rst",
            category="{tile}",
            subcategory="time series",
            labels={"figure": "time series", "sub-tile": "{subtile}"},
        ),
    log:
        "logs/timeseries_plot/{tile}/{subtile}.log",
    script:
        "../scripts/plot_timeseries.py"


# The campaign status at the end of a complete run, for the report: after every composite.
rule campaign_status_map:
    input:
        composites=all_composites(),
    output:
        png=report(
            FIGURES + "/campaign_status.png",
            caption="../report/campaign_status.rst",
            category="campaign",
            labels={"figure": "campaign status"},
        ),
        csv=FIGURES + "/campaign_status.csv",
        json=FIGURES + "/campaign_status.json",
    log:
        "logs/campaign_status/final.log",
    localrule: True
    params:
        results="results",
    script:
        "../scripts/campaign_status.py"


# The status now, on a partial or running campaign: `snakemake campaign_status`. It needs no
# other job; the fingerprint of the state files is a parameter, so it re-runs exactly when the
# campaign state changed (force with --forcerun campaign_status).
rule campaign_status:
    output:
        png=STATUS_NOW + ".png",
        csv=STATUS_NOW + ".csv",
        json=STATUS_NOW + ".json",
    log:
        "logs/campaign_status/now.log",
    localrule: True
    params:
        results="results",
        fingerprint=lambda wildcards: state_fingerprint("results"),
    script:
        "../scripts/campaign_status.py"


def composite_targets():
    """Every final output of compositing and figures, for the Snakefile's `rule all`."""
    targets = []
    for t, y, s, st in campaign_units():
        fmt = dict(tile=t, year=y, season=s, subtile=st)
        targets += [COMPOSITE_NC.format(**fmt), COMPOSITE_COG.format(**fmt)]
    for tile in TILES:
        targets += expand(
            CLIMATOLOGY_NC, tile=tile, season=SEASONS, subtile=subtile_ids(tile)
        )
        targets += [TIMESERIES.format(tile=tile) + ext for ext in (".parquet", ".csv")]
        targets += expand(
            FIGURES + "/{tile}/{year}/{season}_map.png",
            tile=tile,
            year=YEARS,
            season=SEASONS,
        )
        targets += expand(
            FIGURES + "/{tile}/timeseries_{subtile}.png",
            tile=tile,
            subtile=subtile_ids(tile),
        )
    targets.append(FIGURES + "/campaign_status.png")
    return list(dict.fromkeys(targets))
