"""One colour range per variable for every map of a tile (all years, seasons and climatologies).

Maps of one tile are only comparable side by side when they share their colour scale. The range of
each mapped variable is either fixed in the config (``figures.ranges``) or, by default, the pooled
``figures.range_percentiles`` (P2-P98) of every pixel of every seasonal composite of the tile. The
rule ``colour_ranges`` writes them once per tile to a small CSV (``paths.COLOUR_RANGES``) that every
map of the tile reads and that the report's captions show as a table.

Pooled percentiles come from one fixed histogram per variable, filled composite by composite, so
memory does not grow with the number of composites; bins are 0.0025 decades wide on the
logarithmic variables (0.6 % relative) and 2.5e-5 sr-1 on Rrs, far below what a colour bar shows.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import ConfigError, OutputError

__all__ = [
    "LOG_VARIABLES",
    "MAP_VARIABLES",
    "RGB_BANDS",
    "ColourRange",
    "check_configured_ranges",
    "needs_composites",
    "pooled_ranges",
    "read_ranges",
    "tile_colour_ranges",
    "write_ranges",
]

#: What the maps show: three colour-mapped variables and an Rrs true-colour image (``rrs_rgb``).
MAP_VARIABLES: tuple[str, ...] = ("conc_chl", "conc_tsm", "kd489", "rrs_rgb")
#: Drawn (and their range pooled) on a logarithmic scale: roughly log-normal quantities.
LOG_VARIABLES = frozenset({"conc_chl", "conc_tsm", "kd489"})
#: Red, green, blue of the true-colour panel: Rrs at 665, 560 and 490 nm, one shared stretch.
RGB_BANDS: tuple[str, str, str] = ("rrs_B4", "rrs_B3", "rrs_B2")
UNITS = {"conc_chl": "mg m-3", "conc_tsm": "g m-3", "kd489": "m-1", "rrs_rgb": "sr-1"}

_LOG_BINS = np.linspace(-6.0, 6.0, 4801)  # log10 of the value
_RRS_BINS = np.linspace(-0.05, 0.15, 8001)  # sr-1


@dataclass(frozen=True)
class ColourRange:
    """The colour range of one variable on every map of one tile, and where it comes from."""

    variable: str
    low: float
    high: float
    units: str
    source: str


def check_configured_ranges(ranges: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    """The ``figures.ranges`` config section as ``{variable: (low, high)}``.

    Raises ConfigError naming the key and the fix for an unknown variable, a pair that is not
    ``[low, high]`` with low < high, or a low end <= 0 on a logarithmic variable.
    """
    out: dict[str, tuple[float, float]] = {}
    for var, pair in (ranges or {}).items():
        key = f"config key 'figures.ranges.{var}'"
        if var not in MAP_VARIABLES:
            raise ConfigError(f"{key}: unknown map variable; use one of {', '.join(MAP_VARIABLES)}")
        if (
            not isinstance(pair, Sequence)
            or isinstance(pair, str)
            or len(pair) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in pair)
        ):
            raise ConfigError(f"{key}: {pair!r} is not a pair of numbers [low, high]")
        low, high = float(pair[0]), float(pair[1])
        if not low < high:
            raise ConfigError(f"{key}: [{low:g}, {high:g}]: the low end must be below the high end")
        if var in LOG_VARIABLES and low <= 0:
            raise ConfigError(
                f"{key}: [{low:g}, {high:g}]: the low end must be above 0 (logarithmic colour "
                "scale), e.g. 0.1"
            )
        out[var] = (low, high)
    return out


def needs_composites(configured: Mapping[str, Any] | None) -> bool:
    """True unless the config fixes the range of every map variable (then no composite is read,
    and the maps of a season can be drawn before the rest of the tile is done)."""
    return any(v not in (configured or {}) for v in MAP_VARIABLES)


def _histogram_bands(variable: str) -> tuple[str, ...]:
    return RGB_BANDS if variable == "rrs_rgb" else (variable,)


def _median(ds: Any, band: str) -> np.ndarray:
    name = f"{band}_median"
    if name not in ds.variables:
        raise OutputError(f"{ds.filepath()}: no variable {name} (not a seasonal-c2rcc composite?)")
    ds.set_auto_mask(False)
    return np.asarray(ds.variables[name][:], dtype=np.float64)


def pooled_ranges(
    composites: Iterable[str | os.PathLike[str]],
    variables: Sequence[str] = MAP_VARIABLES,
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> dict[str, tuple[float, float, int]]:
    """``{variable: (low, high, n_values)}``: the ``percentiles`` of the median values of every
    pixel of every composite pooled; a variable without any valid value is left out.

    Logarithmic variables pool their positive values in log10; ``rrs_rgb`` pools the three
    true-colour bands together (one stretch keeps the colour balance).
    """
    import netCDF4

    hists = {
        v: np.zeros((_LOG_BINS if v in LOG_VARIABLES else _RRS_BINS).size - 1, np.int64)
        for v in variables
    }
    for path in composites:
        with netCDF4.Dataset(path, "r") as ds:
            for var in variables:
                for band in _histogram_bands(var):
                    a = _median(ds, band)
                    if var in LOG_VARIABLES:
                        vals = np.log10(a[np.isfinite(a) & (a > 0)])
                        edges = _LOG_BINS
                    else:
                        vals = a[np.isfinite(a)]
                        edges = _RRS_BINS
                    # values beyond the bins count in the end bins: they still move a percentile
                    vals = np.clip(vals, edges[0], edges[-1])
                    hists[var] += np.histogram(vals, bins=edges)[0]
    out: dict[str, tuple[float, float, int]] = {}
    for var, h in hists.items():
        n = int(h.sum())
        if n == 0:
            continue
        edges = _LOG_BINS if var in LOG_VARIABLES else _RRS_BINS
        cdf = np.concatenate([[0.0], np.cumsum(h) / n])
        lo, hi = (float(np.interp(p / 100.0, cdf, edges)) for p in percentiles)
        if var in LOG_VARIABLES:
            lo, hi = 10**lo, 10**hi
        if not hi > lo:  # a constant field: give the colour bar a span
            lo, hi = (lo / 1.5, hi * 1.5) if var in LOG_VARIABLES else (lo - 1e-4, hi + 1e-4)
        out[var] = (lo, hi, n)
    return out


def _round(v: float) -> float:
    """Three significant digits: what a colour bar and a caption can show."""
    return float(f"{v:.3g}")


def tile_colour_ranges(
    composites: Sequence[str | os.PathLike[str]],
    configured: Mapping[str, Any] | None,
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> list[ColourRange]:
    """The colour range of every map variable of one tile: configured ones as given, the others
    pooled from ``composites`` (every seasonal composite of the tile). A variable without any
    valid pixel in the whole tile gets a placeholder span, marked as such."""
    fixed = check_configured_ranges(configured)
    todo = [v for v in MAP_VARIABLES if v not in fixed]
    pooled = pooled_ranges(composites, todo, percentiles) if todo else {}
    p_lo, p_hi = (f"{p:g}" for p in percentiles)
    out = []
    for var in MAP_VARIABLES:
        if var in fixed:
            low, high = (float(f"{v:.6g}") for v in fixed[var])  # as the CSV keeps them
            source = "configured (figures.ranges)"
        elif var in pooled:
            low, high, n = pooled[var]
            low, high = _round(low), _round(high)
            if not high > low:
                high = float(f"{high * 1.001:.4g}")
            source = f"P{p_lo}-P{p_hi} of {n} pixel values in {len(composites)} composites"
        else:
            low, high = (0.1, 10.0) if var in LOG_VARIABLES else (0.0, 0.02)
            source = f"placeholder: no valid pixel in {len(composites)} composites"
        out.append(ColourRange(var, low, high, UNITS[var], source))
    return out


_FIELDS = ("variable", "low", "high", "units", "source")


def write_ranges(ranges: Sequence[ColourRange], path: str | os.PathLike[str]) -> Path:
    """Write the ranges as CSV (atomically) and read them back to verify."""
    out = Path(path)
    with atomic_path(out) as tmp:
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(_FIELDS)
            for r in ranges:
                w.writerow([r.variable, f"{r.low:g}", f"{r.high:g}", r.units, r.source])
        back = read_ranges(tmp)
        if [back[r.variable] for r in ranges] != list(ranges):
            raise OutputError(f"{out}: colour ranges did not read back as written")
    return out


def read_ranges(path: str | os.PathLike[str]) -> dict[str, ColourRange]:
    """``{variable: ColourRange}`` from a file written by :func:`write_ranges`."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or any(set(_FIELDS) - set(r) for r in rows):
        raise OutputError(f"{path}: not a colour-range table (columns {', '.join(_FIELDS)})")
    return {
        r["variable"]: ColourRange(
            r["variable"], float(r["low"]), float(r["high"]), r["units"], r["source"]
        )
        for r in rows
    }
