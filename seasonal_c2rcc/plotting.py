"""Figures: season maps, sub-tile time series and the campaign status matrix.

``plot_*`` functions draw on an ``ax`` (created if not given) and return it; ``*_figure``
functions assemble a whole figure for the Snakemake rules; :func:`save_png` writes atomically.
Nothing here calls ``plt.show()``. Basemap tiles come from contextily, cached on disk; when they
cannot be fetched (offline, proxy, provider down) the map is drawn without them and says so.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import paths
from .composite import VARIABLE_META

log = logging.getLogger(__name__)

__all__ = [
    "BasemapConfig",
    "MapLayer",
    "PlotConfig",
    "STATE_COLOURS",
    "add_basemap",
    "plot_season_map",
    "plot_status_map",
    "plot_status_matrix",
    "plot_timeseries",
    "read_map_layer",
    "robust_log_limits",
    "save_png",
    "season_map_figure",
    "status_figure",
    "timeseries_figure",
]


#: Colours of the campaign states (colour-blind safe: blue / grey / vermilion / pale yellow).
STATE_COLOURS: dict[str, str] = {
    "done": "#0072B2",
    "no-data": "#999999",
    "failed": "#D55E00",
    "pending": "#F0E442",
}
SHORT_NAMES = {"conc_chl": "Chl-a", "conc_tsm": "TSM", "kd489": "Kd(489)"}
LOG_VARIABLES = frozenset({"conc_chl", "conc_tsm", "kd489"})


@dataclass(frozen=True)
class BasemapConfig:
    """Where basemap tiles come from and where they are cached.

    ``source`` is a provider name such as ``"Esri.OceanBasemap"`` (any ``xyzservices`` name), an
    XYZ URL template (``https://host/{z}/{x}/{y}.png``) or ``None`` for no basemap at all. Tiles
    fetched once are kept in ``cache_dir`` (contextily's on-disk cache) and reused offline.
    """

    source: str | None = "Esri.OceanBasemap"
    cache_dir: str | None = paths.BASEMAP_CACHE
    timeout: float = 10.0


@dataclass(frozen=True)
class PlotConfig:
    """Appearance knobs."""

    cmaps: Mapping[str, str] = field(
        default_factory=lambda: {"conc_chl": "viridis", "conc_tsm": "YlOrBr", "kd489": "magma_r"}
    )
    #: Fixed colour limits per variable; a variable not listed gets robust (P2-P98) limits.
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    dpi: int = 120


# ----------------------------------------------------------------------------------------------
# Reading composites for maps
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapLayer:
    """One composite variable on its grid: ``data`` (rows x cols, NaN = no data) and extent."""

    subtile: str
    data: np.ndarray
    extent: tuple[float, float, float, float]  # left, right, bottom, top (metres)
    epsg: int
    status: str
    n_acquisitions: int


def read_map_layer(
    path: str | os.PathLike[str], variable: str, statistic: str = "median"
) -> MapLayer:
    """Read ``<variable>_<statistic>`` of a composite with its extent and EPSG code."""
    import netCDF4
    from pyproj import CRS

    with netCDF4.Dataset(path, "r") as ds:
        ds.set_auto_mask(False)
        x = np.asarray(ds.variables["x"][:])
        y = np.asarray(ds.variables["y"][:])
        data = np.asarray(ds.variables[f"{variable}_{statistic}"][:], dtype=np.float32)
        epsg = CRS.from_wkt(ds.variables["spatial_ref"].crs_wkt).to_epsg()
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
    res_x = float(x[1] - x[0]) if x.size > 1 else 1.0
    res_y = float(y[0] - y[1]) if y.size > 1 else res_x
    extent = (x[0] - res_x / 2, x[-1] + res_x / 2, y[-1] - res_y / 2, y[0] + res_y / 2)
    return MapLayer(
        subtile=str(attrs.get("subtile", Path(path).stem)),
        data=data,
        extent=tuple(float(v) for v in extent),  # type: ignore[arg-type]
        epsg=int(epsg or 0),
        status=str(attrs.get("composite_status", "ok")),
        n_acquisitions=int(attrs.get("n_acquisitions", 0)),
    )


def robust_log_limits(
    arrays: Sequence[np.ndarray], lo_pct: float = 2, hi_pct: float = 98
) -> tuple[float, float] | None:
    """P2/P98 of the positive finite values of ``arrays``; None if there are none."""
    vals = (
        np.concatenate([a[np.isfinite(a) & (a > 0)].ravel() for a in arrays])
        if arrays
        else np.array([])
    )
    if vals.size == 0:
        return None
    lo, hi = np.percentile(vals, [lo_pct, hi_pct])
    if not hi > lo:  # a constant field: give the colour bar a span
        lo, hi = lo / 1.5, hi * 1.5
    return float(lo), float(hi)


# ----------------------------------------------------------------------------------------------
# Basemap
# ----------------------------------------------------------------------------------------------


def add_basemap(ax: Any, epsg: int, config: BasemapConfig = BasemapConfig()) -> str | None:  # noqa: B008
    """Draw contextily tiles under the current extent of ``ax`` (in EPSG ``epsg``).

    Returns None on success, else the reason the basemap is missing (never raises: a map without
    tiles is still a map).
    """
    if not config.source:
        return "basemap disabled"
    try:
        import contextily as ctx
        import xyzservices

        provider: Any = (
            config.source  # an XYZ URL template, e.g. a local tile server
            if config.source.startswith(("http://", "https://", "file://"))
            else xyzservices.providers.query_name(config.source)
        )
    except (ImportError, ValueError) as exc:
        return f"basemap provider {config.source!r} unavailable ({exc})"
    try:
        if config.cache_dir:
            Path(config.cache_dir).mkdir(parents=True, exist_ok=True)
            ctx.set_cache_dir(config.cache_dir)
        ctx.add_basemap(
            ax,
            crs=f"EPSG:{epsg}",
            source=provider,
            timeout=config.timeout,
            zorder=0,
            attribution_size=6,
        )
    except Exception as exc:  # noqa: BLE001 - any fetch/decode failure means "no tiles", not a failed figure
        log.warning(
            "basemap tiles unavailable (%s: %s); drawing without them", type(exc).__name__, exc
        )
        return "basemap tiles unavailable (offline?)"
    return None


# ----------------------------------------------------------------------------------------------
# Season map
# ----------------------------------------------------------------------------------------------


def plot_season_map(
    layers: Sequence[MapLayer],
    variable: str,
    *,
    ax: Any = None,
    outlines: Mapping[str, Any] | None = None,
    basemap: BasemapConfig | None = BasemapConfig(),  # noqa: B008
    config: PlotConfig = PlotConfig(),  # noqa: B008
    colorbar: bool = True,
) -> Any:
    """Map of one variable over all sub-tiles of a tile, log colour scale, on a basemap.

    ``outlines`` maps sub-tile id -> shapely polygon in the layers' CRS; they are always drawn
    (labelled with the id), so a sub-tile without data is visible as an empty outline.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6))
    epsg = next((lay.epsg for lay in layers if lay.epsg), None)
    bounds = _extent(layers, outlines)
    if bounds is not None:
        x0, x1, y0, y1 = bounds
        pad = 0.04 * max(x1 - x0, y1 - y0)
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_aspect("equal")
    note = add_basemap(ax, epsg, basemap) if (basemap is not None and epsg) else "basemap disabled"
    if note is not None:
        ax.set_facecolor("#e8eef2")
    limits = config.limits.get(variable) or robust_log_limits([lay.data for lay in layers])
    log_scale = variable in LOG_VARIABLES
    if limits is None:
        norm: Any = LogNorm(0.1, 10) if log_scale else Normalize(0, 1)
    else:
        norm = LogNorm(*limits) if log_scale else Normalize(*limits)
    cmap = plt.get_cmap(config.cmaps.get(variable, "viridis")).with_extremes(bad=(0, 0, 0, 0))
    im = None
    for lay in layers:
        masked = np.ma.masked_invalid(
            np.where(lay.data > 0, lay.data, np.nan) if log_scale else lay.data
        )
        im = ax.imshow(
            masked,
            extent=lay.extent,
            origin="upper",
            cmap=cmap,
            norm=norm,
            interpolation="nearest",
            zorder=2,
        )
    for sid, poly in (outlines or {}).items():
        xs, ys = poly.exterior.xy
        ax.plot(xs, ys, color="black", lw=0.8, zorder=3)
        if len(outlines or {}) <= 60:
            c = poly.centroid
            ax.annotate(
                str(sid),
                (c.x, c.y),
                ha="center",
                va="center",
                fontsize=7,
                zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.6, "lw": 0},
            )
    if bounds is not None:
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    long_name, units, _ = VARIABLE_META.get(variable, (variable, "", None))
    if colorbar:
        if im is None:
            import matplotlib.cm as cm

            im = cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.9, extend="both")
        cb.set_label(f"{SHORT_NAMES.get(variable, variable)} median [{units}]")
    n_data = sum(bool(np.isfinite(lay.data).any()) for lay in layers)
    ax.set_title(
        f"{SHORT_NAMES.get(variable, variable)} ({n_data}/{len(outlines or layers)} sub-tiles with data)",
        fontsize=10,
    )
    ax.set_xlabel(f"easting [m], EPSG:{epsg}" if epsg else "easting [m]", fontsize=8)
    ax.set_ylabel("northing [m]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(style="plain", useOffset=False)
    if note is not None:
        ax.text(
            0.01,
            0.01,
            f"{note}: sub-tile outlines only",
            transform=ax.transAxes,
            fontsize=7,
            va="bottom",
            ha="left",
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
            zorder=5,
        )
    if n_data == 0:
        ax.text(
            0.5,
            0.5,
            "no valid data this season",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            color="#444444",
            zorder=5,
        )
    return ax


def _extent(
    layers: Sequence[MapLayer], outlines: Mapping[str, Any] | None
) -> tuple[float, float, float, float] | None:
    boxes = [lay.extent for lay in layers]
    for poly in (outlines or {}).values():
        x0, y0, x1, y1 = poly.bounds
        boxes.append((x0, x1, y0, y1))
    if not boxes:
        return None
    return (
        min(b[0] for b in boxes),
        max(b[1] for b in boxes),
        min(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def season_map_figure(
    composites: Sequence[str | os.PathLike[str]],
    *,
    title: str,
    outlines: Mapping[str, Any] | None = None,
    variables: Sequence[str] = ("conc_chl", "conc_tsm"),
    basemap: BasemapConfig | None = BasemapConfig(),  # noqa: B008
    config: PlotConfig = PlotConfig(),  # noqa: B008
) -> Any:
    """Side-by-side median maps of ``variables`` over all sub-tiles of one tile, year and season."""
    import matplotlib.pyplot as plt

    layers = {var: [read_map_layer(p, var) for p in composites] for var in variables}
    n_acq = [lay.n_acquisitions for lay in layers[variables[0]]]
    bounds = _extent(layers[variables[0]], outlines)
    aspect = 1.0 if bounds is None else (bounds[3] - bounds[2]) / max(bounds[1] - bounds[0], 1e-9)
    # size the panels to the region's shape so a wide strip of sub-tiles is not lost in white
    height = max(3.8, min(9.0, 5.0 * aspect + 1.8))
    fig, axes = plt.subplots(
        1,
        len(variables),
        figsize=(6.4 * len(variables), height),
        squeeze=False,
        layout="constrained",
    )
    for ax, var in zip(axes[0], variables, strict=True):
        plot_season_map(layers[var], var, ax=ax, outlines=outlines, basemap=basemap, config=config)
    scenes = (
        f"{min(n_acq)}-{max(n_acq)}"
        if n_acq and min(n_acq) != max(n_acq)
        else (str(n_acq[0]) if n_acq else "0")
    )
    fig.suptitle(
        f"{title}\nseasonal median of valid C2RCC observations; {scenes} acquisitions per sub-tile",
        fontsize=11,
    )
    return fig


# ----------------------------------------------------------------------------------------------
# Time series
# ----------------------------------------------------------------------------------------------


def _mid_dates(df: pd.DataFrame) -> pd.Series:
    start = pd.to_datetime(df["season_start"])
    end = pd.to_datetime(df["season_end"])
    mid = start + (end - start) / 2
    fallback = pd.to_datetime(df["year"].astype(str) + "-07-01")
    return mid.fillna(fallback)


def plot_timeseries(
    df: pd.DataFrame, variable: str, *, ax: Any = None, config: PlotConfig = PlotConfig()
) -> Any:  # noqa: B008
    """Spatial median of ``variable`` per season (markers coloured by season) with a P10-P90 band.

    ``df`` is the time-series table of one sub-tile (:mod:`seasonal_c2rcc.timeseries`).
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3))
    d = df[df["variable"] == variable].copy()
    d["t"] = _mid_dates(d)
    d = d.sort_values("t")
    ok = d[np.isfinite(d["median"])]
    if len(ok):
        if len(ok) > 1:
            ax.fill_between(
                ok["t"],
                ok["p10"],
                ok["p90"],
                color="0.85",
                label="P10-P90 over the sub-tile",
                zorder=1,
            )
        ax.errorbar(
            ok["t"],
            ok["median"],
            yerr=[ok["median"] - ok["p10"], ok["p90"] - ok["median"]],
            fmt="none",
            ecolor="0.45",
            elinewidth=1,
            capsize=3,
            zorder=2,
            label=None if len(ok) > 1 else "P10-P90 over the sub-tile",
        )
        ax.plot(ok["t"], ok["median"], color="0.3", lw=1, zorder=2)
        colours = plt.get_cmap("tab10")
        for i, s in enumerate(dict.fromkeys(d["season"])):  # colour fixed per season name
            sel = ok[ok["season"] == s]
            if len(sel):
                ax.scatter(
                    sel["t"],
                    sel["median"],
                    color=colours(i % 10),
                    s=28,
                    zorder=3,
                    label=s,
                    edgecolor="black",
                    lw=0.4,
                )
    else:
        ax.text(
            0.5,
            0.5,
            "no valid composite yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.4",
        )
    missing = d[~np.isfinite(d["median"])]
    if len(missing) and len(ok):
        ymin = (
            float(np.nanmin(ok["p10"]))
            if variable in LOG_VARIABLES
            else float(np.nanmin(ok["p10"]))
        )
        ax.scatter(
            missing["t"],
            np.full(len(missing), ymin),
            marker="x",
            color="#D55E00",
            s=20,
            zorder=3,
            label="no data",
        )
    if variable in LOG_VARIABLES and len(ok) and (ok["p10"] > 0).all():
        ax.set_yscale("log")
    units = VARIABLE_META.get(variable, (variable, "", None))[1]
    ax.set_ylabel(f"{SHORT_NAMES.get(variable, variable)} [{units}]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncols=6, loc="upper left", framealpha=0.7)
    return ax


def timeseries_figure(
    df: pd.DataFrame,
    *,
    tile: str,
    subtile: str,
    variables: Sequence[str] = ("conc_chl", "conc_tsm", "kd489"),
) -> Any:
    """Per-sub-tile figure: one panel per variable plus acquisitions and valid fraction per season."""
    import matplotlib.pyplot as plt

    d = df[(df["tile"] == tile) & (df["subtile"].astype(str) == str(subtile))]
    fig, axes = plt.subplots(
        len(variables) + 1,
        1,
        figsize=(9, 2.3 * (len(variables) + 1)),
        sharex=True,
        layout="constrained",
    )
    for ax, var in zip(axes[:-1], variables, strict=True):
        plot_timeseries(d, var, ax=ax)
    ax = axes[-1]
    first = d[d["variable"] == variables[0]].copy()
    first["t"] = _mid_dates(first)
    first = first.sort_values("t")
    width = pd.Timedelta(days=40)
    ax.bar(
        first["t"], first["n_acquisitions"], width=width, color="#0072B2", label="acquisitions used"
    )
    ax.set_ylabel("acquisitions")
    ax2 = ax.twinx()
    ax2.plot(
        first["t"],
        100 * first["valid_fraction"],
        "o-",
        color="#D55E00",
        ms=3,
        lw=1,
        label="valid pixels",
    )
    ax2.set_ylabel("valid pixels [%]")
    ax2.set_ylim(0, 105)
    ax.legend(loc="upper left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    fig.suptitle(
        f"{tile} sub-tile {subtile}: seasonal spatial median (line, markers) and P10-P90 (band)",
        fontsize=11,
    )
    return fig


# ----------------------------------------------------------------------------------------------
# Campaign status
# ----------------------------------------------------------------------------------------------


def plot_status_matrix(df: pd.DataFrame, *, ax: Any = None) -> Any:
    """Matrix of unit states: one row per tile/sub-tile, one column per year and season."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from .status import STATES, summary_counts

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    rows = list(dict.fromkeys(zip(df["tile"], df["subtile"].astype(str), strict=True)))
    seasons = list(dict.fromkeys(df["season"]))
    cols = sorted(
        dict.fromkeys(zip(df["year"].astype(int), df["season"], strict=True)),
        key=lambda c: (c[0], seasons.index(c[1])),
    )
    ri = {r: i for i, r in enumerate(rows)}
    ci = {c: i for i, c in enumerate(cols)}
    grid = np.full((max(1, len(rows)), max(1, len(cols))), np.nan)
    code = {s: i for i, s in enumerate(STATES)}
    for t, s, y, se, st in zip(
        df["tile"],
        df["subtile"].astype(str),
        df["year"].astype(int),
        df["season"],
        df["state"],
        strict=True,
    ):
        grid[ri[(t, s)], ci[(y, se)]] = code.get(st, code["pending"])
    cmap = ListedColormap([STATE_COLOURS[s] for s in STATES]).with_extremes(bad="white")
    ax.imshow(
        np.ma.masked_invalid(grid),
        cmap=cmap,
        vmin=-0.5,
        vmax=len(STATES) - 0.5,
        aspect="auto",
        interpolation="nearest",
    )
    step_c = max(1, len(cols) // 40)
    ax.set_xticks(range(0, len(cols), step_c))
    ax.set_xticklabels([f"{y}\n{s}" for y, s in cols[::step_c]], fontsize=7)
    step_r = max(1, len(rows) // 50)
    ax.set_yticks(range(0, len(rows), step_r))
    ax.set_yticklabels([f"{t}/{s}" for t, s in rows[::step_r]], fontsize=7)
    if len(rows) * len(cols) <= 400:  # grid lines only where cells are big enough to see them
        ax.set_xticks(np.arange(-0.5, len(cols)), minor=True)
        ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
        ax.grid(which="minor", color="white", lw=1)
        ax.tick_params(which="minor", length=0)
    counts = summary_counts(df)
    ax.legend(
        handles=[Patch(color=STATE_COLOURS[s], label=f"{s} ({counts[s]})") for s in STATES],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        title="sub-tile seasons",
        title_fontsize=8,
    )
    ax.set_xlabel("year / season")
    ax.set_ylabel("tile / sub-tile")
    return ax


def plot_status_map(
    df: pd.DataFrame, geometries: Mapping[tuple[str, str], Any], *, ax: Any = None
) -> Any:
    """Map of the sub-tiles (lon/lat polygons keyed by (tile, sub-tile id)) coloured by the share
    of their seasons that are finished (done or no-data); a thick vermilion edge marks a sub-tile
    with a failed season."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    d = df.assign(subtile=df["subtile"].astype(str))
    finished = d["state"].isin(["done", "no-data"]).groupby([d["tile"], d["subtile"]]).mean()
    failed = (d["state"] == "failed").groupby([d["tile"], d["subtile"]]).any()
    cmap = plt.get_cmap("Blues")
    norm = Normalize(0, 1)
    for key, poly in geometries.items():
        frac = float(finished.get(key, 0.0))
        xs, ys = poly.exterior.xy
        bad = bool(failed.get(key, False))
        ax.fill(
            xs,
            ys,
            facecolor=cmap(norm(0.15 + 0.85 * frac)),
            edgecolor=STATE_COLOURS["failed"] if bad else "black",
            lw=2.5 if bad else 0.6,
        )
        if len(geometries) <= 60:
            c = poly.centroid
            ax.annotate(f"{key[1]}\n{frac:.0%}", (c.x, c.y), ha="center", va="center", fontsize=7)
    ax.set_aspect(
        1.0 / np.cos(np.deg2rad(np.mean([p.centroid.y for p in geometries.values()])))
        if geometries
        else "equal"
    )
    ax.set_xlabel("longitude [°]", fontsize=8)
    ax.set_ylabel("latitude [°]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(
        "share of seasons finished per sub-tile\n(vermilion edge: a season failed)", fontsize=9
    )
    return ax


def status_figure(
    df: pd.DataFrame,
    *,
    title: str = "Campaign status",
    geometries: Mapping[tuple[str, str], Any] | None = None,
) -> Any:
    """The campaign status matrix (and, given lon/lat sub-tile polygons, a map) as one figure."""
    import matplotlib.pyplot as plt

    n_rows = max(1, df[["tile", "subtile"]].drop_duplicates().shape[0])
    n_cols = max(1, df[["year", "season"]].drop_duplicates().shape[0])
    w = min(24.0, 4.0 + 0.45 * n_cols)
    h = min(30.0, 2.0 + 0.3 * n_rows)
    if geometries:
        h = max(h, 5.0)
        fig, (ax_map, ax) = plt.subplots(
            1, 2, figsize=(w + 5.0, h), layout="constrained", width_ratios=[5.0, w]
        )
        plot_status_map(df, geometries, ax=ax_map)
    else:
        fig, ax = plt.subplots(figsize=(w, h), layout="constrained")
    plot_status_matrix(df, ax=ax)
    done = (df["state"].isin(["done", "no-data"])).mean() * 100 if len(df) else 0.0
    fig.suptitle(f"{title}: {len(df)} sub-tile seasons, {done:.0f} % finished", fontsize=11)
    return fig


def save_png(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG atomically (``.part`` + rename) and close it."""
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return out
