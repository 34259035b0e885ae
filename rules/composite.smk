# Seasonal composites, climatologies and the per-tile time-series table (docs/composites.md).
# Uses from rules/common.smk: config, CAMPAIGN, SUBTILES, YEARS, SEASONS, TILES, subtile_ids,
# c2rcc_products, campaign_units.
import dataclasses
import types

from seasonal_c2rcc.grid import subtile_raster_grid

COMPOSITE_NC = "results/composites/{tile}/{year}/{season}/{subtile}.nc"
COMPOSITE_COG = "results/composites/{tile}/{year}/{season}/{subtile}_chl.tif"
CLIMATOLOGY_NC = "results/climatology/{tile}/{season}/{subtile}.nc"
TIMESERIES = "results/timeseries/{tile}"


def _subtile(wildcards):
    for s in SUBTILES:
        if s.tile == wildcards.tile and s.id == wildcards.subtile:
            return s
    raise ValueError(
        f"sub-tile {wildcards.tile}/{wildcards.subtile} is not in the grid"
    )


def composite_grid(wildcards):
    """The sub-tile raster grid (plain dict) every per-product file of the sub-tile is on."""
    return dataclasses.asdict(
        subtile_raster_grid(_subtile(wildcards), config["resolution"])
    )


def composite_attrs(wildcards):
    """Global attributes identifying a seasonal composite."""
    first, last = CAMPAIGN.season(wildcards.season).dates(int(wildcards.year))
    return {
        "composite_kind": "seasonal",
        "tile": wildcards.tile,
        "subtile": wildcards.subtile,
        "year": int(wildcards.year),
        "season": wildcards.season,
        "season_start": first.isoformat(),
        "season_end": last.isoformat(),
        "resolution_m": float(config["resolution"]),
    }


def climatology_attrs(wildcards):
    """Global attributes identifying a climatology (all campaign years of one season)."""
    return {
        "composite_kind": "climatology",
        "tile": wildcards.tile,
        "subtile": wildcards.subtile,
        "season": wildcards.season,
        "years": " ".join(str(y) for y in YEARS),
        "resolution_m": float(config["resolution"]),
    }


def climatology_products(wildcards):
    """Per-product files of one sub-tile and season over every campaign year."""
    return [
        p
        for y in YEARS
        for p in c2rcc_products(
            types.SimpleNamespace(
                tile=wildcards.tile,
                year=str(y),
                season=wildcards.season,
                subtile=wildcards.subtile,
            )
        )
    ]


def tile_composites(wildcards):
    """Every seasonal composite of one tile (all sub-tiles, years and seasons)."""
    return expand(
        COMPOSITE_NC,
        tile=wildcards.tile,
        year=YEARS,
        season=SEASONS,
        subtile=subtile_ids(wildcards.tile),
    )


def all_composites():
    """Every seasonal composite of the campaign."""
    return [
        COMPOSITE_NC.format(tile=t, year=y, season=s, subtile=st)
        for t, y, s, st in campaign_units()
    ]


rule composite:
    input:
        products=c2rcc_products,
    output:
        nc=COMPOSITE_NC,
        cog=COMPOSITE_COG,
    log:
        "logs/composite/{tile}/{year}/{season}/{subtile}.log",
    resources:
        # the observation stack is processed in 64 MiB blocks: memory does not grow with scenes
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
        nc=CLIMATOLOGY_NC,
    log:
        "logs/climatology/{tile}/{season}/{subtile}.log",
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
        parquet=TIMESERIES + ".parquet",
        csv=TIMESERIES + ".csv",
    log:
        "logs/timeseries/{tile}.log",
    script:
        "../scripts/timeseries.py"
