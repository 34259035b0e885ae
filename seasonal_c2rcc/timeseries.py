"""Per-tile time-series table of the seasonal composites.

One row per sub-tile, year, season and variable (tidy / long format, so new variables need no new
columns) with the spatial median, P10 and P90 of the composite's per-pixel *median* map, the
valid-pixel fraction (pixels with at least ``min_valid_obs`` observations, over all pixels of the
sub-tile grid) and the number of scenes: ``n_acquisitions`` (same-day duplicates counted once, what
the statistics used) and ``n_products``.

Everything is read from the composites' own attributes (tile, subtile, year, season, dates), so the
table does not depend on file naming.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .composite import COMPOSITE_VARIABLES, VARIABLE_META
from .errors import OutputError

log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "build_timeseries",
    "read_timeseries",
    "summarise_composite",
    "write_timeseries",
]


#: Columns of the table, in order.
COLUMNS: tuple[str, ...] = (
    "tile",
    "subtile",
    "year",
    "season",
    "season_start",
    "season_end",
    "variable",
    "units",
    "median",
    "p10",
    "p90",
    "valid_fraction",
    "n_valid_pixels",
    "n_pixels",
    "n_acquisitions",
    "n_products",
    "composite_status",
)


def _attr(ds: Any, name: str, default: Any = None) -> Any:
    return ds.getncattr(name) if name in ds.ncattrs() else default


def summarise_composite(
    path: str | os.PathLike[str], variables: Iterable[str] = COMPOSITE_VARIABLES
) -> list[dict[str, Any]]:
    """Rows of the time-series table for one composite file (one per variable present)."""
    import netCDF4

    rows = []
    try:
        ds = netCDF4.Dataset(path, "r")
    except OSError as exc:
        raise OutputError(f"{path}: cannot open composite ({exc})") from None
    with ds:
        base = {
            "tile": str(_attr(ds, "tile", "")),
            "subtile": str(_attr(ds, "subtile", "")),
            "year": int(_attr(ds, "year", -1)),
            "season": str(_attr(ds, "season", "")),
            "season_start": _parse_date(_attr(ds, "season_start")),
            "season_end": _parse_date(_attr(ds, "season_end")),
            "n_acquisitions": int(_attr(ds, "n_acquisitions", 0)),
            "n_products": int(_attr(ds, "n_input_products", 0)),
            "composite_status": str(_attr(ds, "composite_status", "ok")),
        }
        for var in variables:
            name = f"{var}_median"
            if name not in ds.variables:
                continue
            v = ds.variables[name]
            v.set_auto_mask(False)
            data = np.asarray(v[:], dtype=np.float32)
            finite = data[np.isfinite(data)]
            n = int(finite.size)
            if n:
                p10, med, p90 = np.percentile(finite, [10, 50, 90])
            else:
                p10 = med = p90 = np.nan
            rows.append(
                {
                    **base,
                    "variable": var,
                    "units": VARIABLE_META.get(var, (var, str(getattr(v, "units", "")), None))[1],
                    "median": float(med),
                    "p10": float(p10),
                    "p90": float(p90),
                    "valid_fraction": n / data.size if data.size else 0.0,
                    "n_valid_pixels": n,
                    "n_pixels": int(data.size),
                }
            )
    return rows


def _parse_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    return dt.date.fromisoformat(str(value)[:10])


def build_timeseries(composites: Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """The time-series table of ``composites`` (see module docstring), sorted by sub-tile and time."""
    rows = [r for p in composites for r in summarise_composite(p)]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["year"] = df["year"].astype("int64")
    for c in ("n_valid_pixels", "n_pixels", "n_acquisitions", "n_products"):
        df[c] = df[c].astype("int64")
    for c in ("season_start", "season_end"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    order = {v: i for i, v in enumerate(COMPOSITE_VARIABLES)}
    df["_v"] = df["variable"].map(lambda v: order.get(v, len(order)))
    df = df.sort_values(["tile", "subtile", "season_start", "year", "season", "_v"], kind="stable")
    return df.drop(columns="_v").reset_index(drop=True)


def write_timeseries(
    composites: Iterable[str | os.PathLike[str]],
    parquet_path: str | os.PathLike[str],
    csv_path: str | os.PathLike[str],
) -> pd.DataFrame:
    """Build the table and write it as Parquet and CSV (each atomically, verified by re-reading)."""
    df = build_timeseries(composites)
    for path, writer in (
        (Path(parquet_path), lambda p: df.to_parquet(p, index=False)),
        (Path(csv_path), lambda p: df.to_csv(p, index=False, date_format="%Y-%m-%d")),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        try:
            writer(tmp)
            back = pd.read_parquet(tmp) if path.suffix == ".parquet" else pd.read_csv(tmp)
            if len(back) != len(df):
                raise OutputError(f"{tmp}: re-read {len(back)} rows, wrote {len(df)}")
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
    log.info(
        "time series: %d rows from %d sub-tile seasons",
        len(df),
        df.groupby(["subtile", "year", "season"]).ngroups,
    )
    return df


def read_timeseries(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a time-series table written by :func:`write_timeseries` (Parquet or CSV)."""
    p = Path(path)
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    return pd.read_csv(p, parse_dates=["season_start", "season_end"], dtype={"subtile": str})
