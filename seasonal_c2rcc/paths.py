"""Every path the workflow writes under ``results/`` (and its logs), in one place.

Rules, scripts and the package format these templates; nothing else spells a ``results/`` path.
Wildcards: ``tile``, ``year``, ``season``, ``subtile``, ``job``, ``product``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

RESULTS = "results"

#: The frozen scene selection of one tile, year and season.
CATALOGUE = "results/catalog/{tile}/{year}/{season}.json"
#: The frozen copy a re-run of the catalogue rule restores instead of searching again.
FROZEN_CATALOGUE = "results/state/catalog/{tile}/{year}/{season}.json"
CATALOGUE_DIR = "results/catalog"

#: Processing jobs (remote or local): one manifest and one folder of result files per job.
JOB_MANIFEST = "results/jobs/{tile}/{year}/{season}/{job}.json"
JOB_DIR = "results/jobs/{tile}/{year}/{season}"

#: The per-product files of one sub-tile and season (a folder written whole by the composite rule).
SUBTILE_PRODUCTS = "results/c2rcc/{tile}/{year}/{season}/{subtile}"

#: Durable job records, the quota ledger and frozen catalogue copies.
STATE_DIR = "results/state"

COMPOSITE_NC = "results/composites/{tile}/{year}/{season}/{subtile}.nc"
COMPOSITE_COG = "results/composites/{tile}/{year}/{season}/{subtile}_chl.tif"
CLIMATOLOGY_NC = "results/climatology/{tile}/{season}/{subtile}.nc"
TIMESERIES_PARQUET = "results/timeseries/{tile}.parquet"
TIMESERIES_CSV = "results/timeseries/{tile}.csv"

#: The colour range of every mapped variable, shared by all maps of a tile (figure_ranges).
COLOUR_RANGES = "results/figures/{tile}/colour_ranges.csv"
SEASON_MAP = "results/figures/{tile}/{year}/{season}_map.png"
CLIMATOLOGY_MAP = "results/figures/{tile}/climatology/{season}_map.png"
TIMESERIES_PNG = "results/figures/{tile}/timeseries_{subtile}.png"
STATUS_PNG = "results/figures/campaign_status.png"
STATUS_CSV = "results/figures/campaign_status.csv"
STATUS_JSON = "results/figures/campaign_status.json"
#: `snakemake campaign_status`: the state now, on a partial or running campaign.
STATUS_NOW_PNG = "results/status/campaign_status.png"
STATUS_NOW_CSV = "results/status/campaign_status.csv"
STATUS_NOW_JSON = "results/status/campaign_status.json"

BILL = "results/bill.md"
BASEMAP_CACHE = "results/.basemap_cache"

#: A job's permanent failure, written by its first attempt so that Snakemake's `retries:` attempts
#: exit at once with the same line (seasonal_c2rcc.failfast); `key` joins the job's wildcards.
FAILFAST_MARKER = "results/state/failfast/{rule}/{key}.json"

#: Remote EOCanvas logs of failed attempts.
REMOTE_LOG_DIR = "logs/eocanvas/remote"

#: Logs of the product downloads (rule download_product).
DOWNLOAD_LOG = "logs/download/{product}.log"


def product_cache_dir(config: Mapping[str, Any]) -> str:
    """The L1C product cache of the validated config (``product_cache``; outside ``results/``, so
    deleting results never loses a download; ``~`` is expanded)."""
    return os.path.expanduser(str(config["product_cache"]))


def cached_product(config: Mapping[str, Any], product: str = "{product}") -> str:
    """The verified zip of one downloaded L1C product (``{product}``: its id without ``.SAFE``);
    with the default argument, the pattern rule ``download_product`` outputs."""
    return os.path.join(product_cache_dir(config), f"{product}.zip")
