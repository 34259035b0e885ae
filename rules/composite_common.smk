# Paths, parameters and input functions of rules/composite.smk and rules/figures.smk (kept apart
# from the rules, as `snakemake --lint` asks). Uses from rules/common.smk: config, CAMPAIGN,
# SUBTILES, YEARS, SEASONS, TILES, subtile_ids, c2rcc_products, campaign_units.
import dataclasses
import types

from seasonal_c2rcc.grid import subtile_raster_grid
from seasonal_c2rcc.status import state_fingerprint

COMPOSITE_NC = "results/composites/{tile}/{year}/{season}/{subtile}.nc"
COMPOSITE_COG = "results/composites/{tile}/{year}/{season}/{subtile}_chl.tif"
CLIMATOLOGY_NC = "results/climatology/{tile}/{season}/{subtile}.nc"
TIMESERIES_PARQUET = "results/timeseries/{tile}.parquet"
TIMESERIES_CSV = "results/timeseries/{tile}.csv"
SEASON_MAP = "results/figures/{tile}/{year}/{season}_map.png"
CLIMATOLOGY_MAP = "results/figures/{tile}/climatology/{season}_map.png"
TIMESERIES_PNG = "results/figures/{tile}/timeseries_{subtile}.png"
STATUS_PNG = "results/figures/campaign_status.png"


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


def season_composites(wildcards):
    """The composites of every sub-tile of one tile, year and season."""
    return expand(
        COMPOSITE_NC,
        tile=wildcards.tile,
        year=wildcards.year,
        season=wildcards.season,
        subtile=subtile_ids(wildcards.tile),
    )


def season_climatologies(wildcards):
    """The climatologies of every sub-tile of one tile and season."""
    return expand(
        CLIMATOLOGY_NC,
        tile=wildcards.tile,
        season=wildcards.season,
        subtile=subtile_ids(wildcards.tile),
    )


def climatology_title(wildcards):
    """Title of a climatology map, with the years it covers."""
    span = f"{min(YEARS)}-{max(YEARS)}" if len(YEARS) > 1 else str(YEARS[0])
    return f"{wildcards.tile} {wildcards.season}, climatology {span}"


def all_composites():
    """Every seasonal composite of the campaign."""
    return [
        COMPOSITE_NC.format(tile=t, year=y, season=s, subtile=st)
        for t, y, s, st in campaign_units()
    ]


def subtile_outlines(wildcards):
    """{sub-tile id: UTM WKT} of one tile, for the map outlines."""
    return {s.id: s.geometry.wkt for s in SUBTILES if s.tile == wildcards.tile}


def figures_config():
    """Figure settings (``figures`` config section when present, else the defaults)."""
    section = config.get("figures") or {}
    return {
        "basemap": section.get("basemap", "Esri.OceanBasemap"),
        "basemap_cache": section.get("basemap_cache", "results/.basemap_cache"),
    }


def status_fingerprint(wildcards):
    """Changes whenever a composite, catalogue, job record or clipped product changes."""
    return state_fingerprint("results")


def composite_targets():
    """Every final output of compositing and figures, for the Snakefile's `rule all`."""
    targets = []
    for t, y, s, st in campaign_units():
        fmt = dict(tile=t, year=y, season=s, subtile=st)
        targets += [COMPOSITE_NC.format(**fmt), COMPOSITE_COG.format(**fmt)]
    for tile in TILES:
        ids = subtile_ids(tile)
        targets += expand(CLIMATOLOGY_NC, tile=tile, season=SEASONS, subtile=ids)
        targets += [
            TIMESERIES_PARQUET.format(tile=tile),
            TIMESERIES_CSV.format(tile=tile),
        ]
        targets += expand(SEASON_MAP, tile=tile, year=YEARS, season=SEASONS)
        targets += expand(CLIMATOLOGY_MAP, tile=tile, season=SEASONS)
        targets += expand(TIMESERIES_PNG, tile=tile, subtile=ids)
    targets.append(STATUS_PNG)
    return list(dict.fromkeys(targets))
