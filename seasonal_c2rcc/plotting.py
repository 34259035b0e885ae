"""Figures: season maps, sub-tile time series and the campaign status matrix.

``plot_*`` functions draw on an ``ax`` (created if not given) and return it, so tests and users
can inspect what was drawn; ``*_figure`` functions assemble a whole figure for the Snakemake rules;
:func:`save_png` writes atomically. Nothing here calls ``plt.show()``. Basemap tiles come from
contextily, cached on disk; when they cannot be fetched (offline, proxy, provider down) the map is
drawn without them and says so.

What a reader needs to trust a map is on it: every map of a tile uses the tile's colour ranges
(:mod:`seasonal_c2rcc.figure_ranges`), logarithmic colour bars carry plain tick labels (0.3, 1, 3),
pixels without a valid observation are drawn in their own grey with a legend entry, and legends sit
outside the data. Time series are points with P10-P90 bars per season, never lines between seasons.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import paths
from .atomic import atomic_path
from .composite import VARIABLE_META
from .errors import OutputError
from .figure_ranges import LOG_VARIABLES, RGB_BANDS, ColourRange

log = logging.getLogger(__name__)

__all__ = [
    "BasemapConfig",
    "MapLayer",
    "NO_DATA_COLOUR",
    "PlotConfig",
    "STATE_COLOURS",
    "add_basemap",
    "log_ticks",
    "plain_number",
    "plot_acquisitions",
    "plot_season_map",
    "plot_status_map",
    "plot_status_matrix",
    "plot_timeseries",
    "plot_true_colour",
    "read_map_layer",
    "read_rgb_layer",
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
#: Pixels of a sub-tile without a valid observation: a mid grey none of the colour maps contains.
NO_DATA_COLOUR = "#a6a6a6"
#: Around the sub-tiles when there is no basemap (not processed).
OUTSIDE_COLOUR = "#ffffff"
#: The data-source note (e.g. the demo's synthetic emulator data).
NOTE_COLOUR = "#D55E00"
SHORT_NAMES = {
    "conc_chl": "Chl-a",
    "conc_tsm": "TSM",
    "kd489": "Kd(489)",
    "rrs_rgb": "Rrs true colour",
}


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
    #: Fixed colour limits per variable (the tile's ranges); a variable not listed gets the
    #: robust (P2-P98) limits of the map itself.
    limits: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: Fewer valid observations than this make a composite pixel no-data (for the legend text).
    min_valid_obs: int | None = None
    dpi: int = 120


def _units(variable: str) -> str:
    if variable == "rrs_rgb":
        return "sr-1"
    return VARIABLE_META.get(variable, (variable, "", None))[1]


def _no_data_label(min_valid_obs: int | None) -> str:
    fewer = f"fewer than {min_valid_obs}" if min_valid_obs else "too few"
    return f"no valid observation (land, cloud, or {fewer} valid scenes)"


# ----------------------------------------------------------------------------------------------
# Reading composites for maps
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapLayer:
    """One composite variable on its grid: ``data`` (rows x cols, or rows x cols x 3 for a
    true-colour layer; NaN = no data) and extent."""

    subtile: str
    data: np.ndarray
    extent: tuple[float, float, float, float]  # left, right, bottom, top (metres)
    epsg: int
    status: str
    n_acquisitions: int
    kind: str = "seasonal"  # or "climatology" (the composite's composite_kind)


def _read_layer(path: str | os.PathLike[str], names: Sequence[str]) -> MapLayer:
    import netCDF4
    from pyproj import CRS

    with netCDF4.Dataset(path, "r") as ds:
        ds.set_auto_mask(False)
        x = np.asarray(ds.variables["x"][:])
        y = np.asarray(ds.variables["y"][:])
        missing = [n for n in names if n not in ds.variables]
        if missing:
            raise OutputError(f"{path}: no variable {', '.join(missing)} to map")
        bands = [np.asarray(ds.variables[n][:], dtype=np.float32) for n in names]
        epsg = CRS.from_wkt(ds.variables["spatial_ref"].crs_wkt).to_epsg()
        attrs = {k: ds.getncattr(k) for k in ds.ncattrs()}
    data = bands[0] if len(bands) == 1 else np.stack(bands, axis=-1)
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
        kind=str(attrs.get("composite_kind", "seasonal")),
    )


def read_map_layer(
    path: str | os.PathLike[str], variable: str, statistic: str = "median"
) -> MapLayer:
    """Read ``<variable>_<statistic>`` of a composite with its extent and EPSG code."""
    return _read_layer(path, [f"{variable}_{statistic}"])


def read_rgb_layer(path: str | os.PathLike[str], statistic: str = "median") -> MapLayer:
    """Read the true-colour bands (Rrs at 665, 560, 490 nm) of a composite as one rows x cols x 3
    layer."""
    return _read_layer(path, [f"{b}_{statistic}" for b in RGB_BANDS])


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
# Plain tick labels on logarithmic colour bars
# ----------------------------------------------------------------------------------------------


def plain_number(value: float) -> str:
    """``0.3``, ``10``, ``0.005``: at most 3 significant digits, never exponent notation."""
    if value == 0:
        return "0"
    return np.format_float_positional(float(f"{value:.3g}"), trim="-")


def log_ticks(vmin: float, vmax: float, max_ticks: int = 8) -> list[float]:
    """Readable ticks for a logarithmic axis from ``vmin`` to ``vmax``: 1-3-10 steps (0.3, 1, 3,
    10), decades only on a wide range, finer mantissas (1-2-5, 1-2-3-5-7, 1-9) on a narrow one,
    never two ticks closer than 1/8 of the axis, and evenly spaced round values on a range too
    narrow for any of these."""
    if not (vmin > 0 and vmax > vmin):
        raise ValueError(f"log_ticks needs 0 < vmin < vmax, got {vmin}, {vmax}")
    lo, hi = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
    eps = 1e-9
    min_gap = (math.log10(vmax) - math.log10(vmin)) / 8

    def ticks(subs: Sequence[int]) -> list[float]:
        vals = (float(f"{m}e{e}") for e in range(lo, hi + 1) for m in subs)
        kept: list[float] = []
        for v in vals:
            if not vmin * (1 - eps) <= v <= vmax * (1 + eps):
                continue
            if kept and math.log10(v / kept[-1]) < min_gap:
                continue
            kept.append(v)
        return kept

    one_three = ticks((1, 3))
    if len(one_three) > max_ticks:
        decades = ticks((1,))
        step = math.ceil(len(decades) / max_ticks)
        return decades[::step]
    for subs in ((1, 3), (1, 2, 5), (1, 2, 3, 5, 7), tuple(range(1, 10))):
        t = ticks(subs)
        if len(t) >= 3:
            return t
    from matplotlib.ticker import MaxNLocator

    vals = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
    return [float(f"{v:.6g}") for v in vals if vmin * (1 - eps) <= v <= vmax * (1 + eps)]


def _log_colorbar_ticks(cb: Any, vmin: float, vmax: float) -> None:
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

    ticks = log_ticks(vmin, vmax)
    axis = cb.ax.yaxis if cb.orientation == "vertical" else cb.ax.xaxis
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FixedFormatter([plain_number(t) for t in ticks]))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


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


def _map_frame(
    ax: Any,
    layers: Sequence[MapLayer],
    outlines: Mapping[str, Any] | None,
    basemap: BasemapConfig | None,
) -> tuple[str | None, int | None]:
    """Extent, aspect, basemap (or the plain outside colour) and axis labels of a map panel.
    Returns the basemap note (None when tiles were drawn) and the EPSG code."""
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
        ax.set_facecolor(OUTSIDE_COLOUR)
    if bounds is not None:  # contextily may widen the limits to whole tiles
        ax.set_xlim(x0 - pad, x1 + pad)
        ax.set_ylim(y0 - pad, y1 + pad)
    ax.set_xlabel(f"easting [m], EPSG:{epsg}" if epsg else "easting [m]", fontsize=8)
    ax.set_ylabel("northing [m]", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.ticklabel_format(style="plain", useOffset=False)
    return note, epsg


def _draw_outlines(ax: Any, outlines: Mapping[str, Any] | None) -> None:
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


def _finish_map(ax: Any, note: str | None, n_data: int, *, legend: bool, min_valid_obs: int) -> Any:
    """The notes and (optionally) the legend every map panel ends with; returns ``ax``."""
    _map_notes(ax, note, n_data)
    if legend:
        _legend_below(
            ax, map_legend_handles(basemap_drawn=note is None, min_valid_obs=min_valid_obs)
        )
    return ax


def _map_notes(ax: Any, note: str | None, n_data: int) -> None:
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


def map_legend_handles(*, basemap_drawn: bool, min_valid_obs: int | None = None) -> list[Any]:
    """Legend entries of a map: no-data grey, sub-tile outline, and (without a basemap) the
    outside area."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [
        Patch(
            facecolor=NO_DATA_COLOUR, edgecolor="0.3", lw=0.5, label=_no_data_label(min_valid_obs)
        ),
        Line2D([], [], color="black", lw=0.8, label="sub-tile outline (label: sub-tile id)"),
    ]
    if not basemap_drawn:
        handles.append(
            Patch(
                facecolor=OUTSIDE_COLOUR,
                edgecolor="0.3",
                lw=0.5,
                label="outside the sub-tiles: not processed",
            )
        )
    return handles


def _legend_below(ax: Any, handles: Sequence[Any]) -> None:
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        fontsize=7,
        ncols=1,
        frameon=False,
    )


def plot_season_map(
    layers: Sequence[MapLayer],
    variable: str,
    *,
    ax: Any = None,
    outlines: Mapping[str, Any] | None = None,
    basemap: BasemapConfig | None = BasemapConfig(),  # noqa: B008
    config: PlotConfig = PlotConfig(),  # noqa: B008
    colorbar: bool = True,
    legend: bool = True,
) -> Any:
    """Map of one variable over all sub-tiles of a tile, on a basemap.

    Logarithmic colour scale with plain tick labels for chl, TSM and Kd; limits from
    ``config.limits`` (the tile's ranges) or else P2-P98 of this map. Pixels without a valid
    observation are drawn in :data:`NO_DATA_COLOUR`; ``legend`` puts the legend below the axes.
    ``outlines`` maps sub-tile id -> shapely polygon in the layers' CRS; they are always drawn
    (labelled with the id), so a sub-tile without data is visible as an empty outline.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6.5), layout="constrained")
    note, _ = _map_frame(ax, layers, outlines, basemap)
    log_scale = variable in LOG_VARIABLES
    limits = config.limits.get(variable) or (
        robust_log_limits([lay.data for lay in layers]) if log_scale else None
    )
    if limits is None:
        finite = [lay.data[np.isfinite(lay.data)] for lay in layers]
        vals = np.concatenate(finite) if finite else np.array([])
        limits = (
            (float(np.percentile(vals, 2)), float(np.percentile(vals, 98)))
            if vals.size and not log_scale
            else ((0.1, 10.0) if log_scale else (0.0, 1.0))
        )
        if not limits[1] > limits[0]:
            limits = (limits[0] - 1e-6, limits[1] + 1e-6)
    norm: Any = LogNorm(*limits) if log_scale else Normalize(*limits)
    cmap = plt.get_cmap(config.cmaps.get(variable, "viridis")).with_extremes(bad=NO_DATA_COLOUR)
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
    _draw_outlines(ax, outlines)
    short, units = SHORT_NAMES.get(variable, variable), _units(variable)
    if colorbar:
        if im is None:
            import matplotlib.cm as cm

            im = cm.ScalarMappable(norm=norm, cmap=cmap)
        cb = ax.figure.colorbar(im, ax=ax, shrink=0.9, extend="both")
        cb.set_label(f"{short} median [{units}]")
        if log_scale:
            _log_colorbar_ticks(cb, *limits)
    n_data = sum(bool(np.isfinite(lay.data).any()) for lay in layers)
    ax.set_title(
        f"{short} median ({n_data}/{len(outlines or layers)} sub-tiles with data)\n"
        f"colour range {plain_number(limits[0])}-{plain_number(limits[1])} {units}",
        fontsize=9,
    )
    return _finish_map(ax, note, n_data, legend=legend, min_valid_obs=config.min_valid_obs)


def plot_true_colour(
    layers: Sequence[MapLayer],
    *,
    ax: Any = None,
    limits: tuple[float, float] | None = None,
    outlines: Mapping[str, Any] | None = None,
    basemap: BasemapConfig | None = BasemapConfig(),  # noqa: B008
    config: PlotConfig = PlotConfig(),  # noqa: B008
    legend: bool = True,
) -> Any:
    """True-colour map from Rrs at 665, 560 and 490 nm (layers of :func:`read_rgb_layer`).

    The three bands share one linear stretch, ``limits`` (the tile's ``rrs_rgb`` range, in sr-1),
    so the colour balance is the water's own; a square-root gamma brightens dark water. A pixel
    where any band has no valid observation is drawn in :data:`NO_DATA_COLOUR`.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 6.5), layout="constrained")
    note, _ = _map_frame(ax, layers, outlines, basemap)
    if limits is None:
        limits = config.limits.get("rrs_rgb")
    if limits is None:
        vals = [lay.data[np.isfinite(lay.data)] for lay in layers]
        flat = np.concatenate(vals) if vals else np.array([])
        limits = (
            (float(np.percentile(flat, 2)), float(np.percentile(flat, 98)))
            if flat.size
            else (0.0, 0.02)
        )
    lo, hi = limits
    grey = np.array(to_rgb(NO_DATA_COLOUR), np.float32)
    for lay in layers:
        scaled = np.clip((lay.data - lo) / max(hi - lo, 1e-12), 0.0, 1.0) ** 0.5
        bad = ~np.isfinite(lay.data).all(axis=-1)
        rgb = np.where(bad[..., None], grey, np.nan_to_num(scaled))
        ax.imshow(rgb, extent=lay.extent, origin="upper", interpolation="nearest", zorder=2)
    _draw_outlines(ax, outlines)
    n_data = sum(bool(np.isfinite(lay.data).all(axis=-1).any()) for lay in layers)
    ax.set_title(
        f"Rrs true colour: R 665, G 560, B 490 nm ({n_data}/{len(outlines or layers)} sub-tiles "
        f"with data)\nlinear stretch {plain_number(lo)}-{plain_number(hi)} sr-1, gamma 0.5",
        fontsize=9,
    )
    return _finish_map(ax, note, n_data, legend=legend, min_valid_obs=config.min_valid_obs)


def _ranges_text(tile: str | None, ranges: Mapping[str, ColourRange]) -> str:
    parts = [
        f"{SHORT_NAMES.get(v, v)} {plain_number(r.low)}-{plain_number(r.high)} {r.units}"
        for v, r in ranges.items()
    ]
    sources = sorted({r.source.split(" of ")[0] for r in ranges.values()})
    where = f" of tile {tile}" if tile else ""
    return (
        f"Colour ranges, the same on every map{where} (all years and seasons): "
        + "; ".join(parts)
        + f" ({', '.join(sources)})"
    )


def season_map_figure(
    composites: Sequence[str | os.PathLike[str]],
    *,
    title: str,
    outlines: Mapping[str, Any] | None = None,
    variables: Sequence[str] = ("conc_chl", "conc_tsm", "kd489"),
    true_colour: bool = True,
    ranges: Mapping[str, ColourRange] | None = None,
    tile: str | None = None,
    data_source_note: str | None = None,
    basemap: BasemapConfig | None = BasemapConfig(),  # noqa: B008
    config: PlotConfig = PlotConfig(),  # noqa: B008
) -> Any:
    """Median maps of ``variables`` (and an Rrs true-colour panel) over all sub-tiles of one
    tile, year and season, two panels a row.

    ``ranges`` (the tile's colour ranges, :func:`seasonal_c2rcc.figure_ranges.read_ranges`) fix
    every panel's colour scale and are written under the maps; ``data_source_note`` (e.g.
    "synthetic data from the WEkEO emulator") goes in the title.
    """
    import matplotlib.pyplot as plt

    if ranges:
        config = PlotConfig(
            cmaps=config.cmaps,
            limits={**{v: (r.low, r.high) for v, r in ranges.items()}, **config.limits},
            min_valid_obs=config.min_valid_obs,
            dpi=config.dpi,
        )
    layers = {var: [read_map_layer(p, var) for p in composites] for var in variables}
    rgb = [read_rgb_layer(p) for p in composites] if true_colour else []
    first = layers[variables[0]] if variables else rgb
    n_acq = [lay.n_acquisitions for lay in first]
    bounds = _extent(first, outlines)
    aspect = 1.0 if bounds is None else (bounds[3] - bounds[2]) / max(bounds[1] - bounds[0], 1e-9)
    n_panels = len(variables) + (1 if true_colour else 0)
    n_cols = min(2, n_panels)
    n_rows = math.ceil(n_panels / n_cols)
    # size the panels to the region's shape so a wide strip of sub-tiles is not lost in white
    panel_h = max(3.0, min(7.0, 4.6 * aspect + 1.4))
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(6.4 * n_cols, panel_h * n_rows + 1.6),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axes.ravel())
    notes = []
    for ax, var in zip(flat, variables, strict=False):
        plot_season_map(
            layers[var], var, ax=ax, outlines=outlines, basemap=basemap, config=config, legend=False
        )
        notes.append(any("outlines only" in t.get_text() for t in ax.texts))
    if true_colour:
        ax = flat[len(variables)]
        plot_true_colour(
            rgb, ax=ax, outlines=outlines, basemap=basemap, config=config, legend=False
        )
        notes.append(any("outlines only" in t.get_text() for t in ax.texts))
    for ax in flat[n_panels:]:
        ax.set_axis_off()
    scenes = (
        f"{min(n_acq)}-{max(n_acq)}"
        if n_acq and min(n_acq) != max(n_acq)
        else (str(n_acq[0]) if n_acq else "0")
    )
    what = (
        "median of every valid C2RCC observation of the season in all years"
        if first and all(lay.kind == "climatology" for lay in first)
        else "seasonal median of valid C2RCC observations"
    )
    heading = f"{title}: {what}; {scenes} acquisitions per sub-tile"
    fig.suptitle(heading + (f"\n{data_source_note}" if data_source_note else ""), fontsize=11)
    handles = map_legend_handles(basemap_drawn=not all(notes), min_valid_obs=config.min_valid_obs)
    footer = [_ranges_text(tile, ranges)] if ranges else []
    if data_source_note:
        footer.append(f"Data: {data_source_note}")
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles),
        fontsize=8,
        frameon=False,
        title="\n".join(footer) or None,
        title_fontsize=8,
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


def _season_colours(seasons: Sequence[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10")
    return {s: colours(i % 10) for i, s in enumerate(dict.fromkeys(seasons))}


def plot_timeseries(
    df: pd.DataFrame,
    variable: str,
    *,
    ax: Any = None,
    config: PlotConfig = PlotConfig(),  # noqa: B008
    legend: bool = True,
) -> Any:
    """Spatial median of ``variable`` per season as a point (coloured by season) with the
    sub-tile's P10-P90 as an error bar; a season without valid data is a hatched span over its
    window. Nothing joins two seasons: there is no observation between them.

    ``df`` is the time-series table of one sub-tile (:mod:`seasonal_c2rcc.timeseries`).
    ``legend`` puts the legend to the right of the axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3), layout="constrained")
    d = df[df["variable"] == variable].copy()
    d["t"] = _mid_dates(d)
    d = d.sort_values("t")
    ok = d[np.isfinite(d["median"].astype(float))]
    colours = _season_colours(list(d["season"]))
    for season, colour in colours.items():
        sel = ok[ok["season"] == season]
        if not len(sel):
            continue
        ax.errorbar(
            sel["t"],
            sel["median"],
            yerr=[sel["median"] - sel["p10"], sel["p90"] - sel["median"]],
            fmt="o",
            linestyle="none",
            color=colour,
            markeredgecolor="black",
            markeredgewidth=0.4,
            markersize=5,
            ecolor=colour,
            elinewidth=1.2,
            capsize=3,
            zorder=3,
            label=season,
        )
    missing = d[~np.isfinite(d["median"].astype(float))]
    for i, (_, row) in enumerate(missing.iterrows()):
        start, end = pd.to_datetime(row["season_start"]), pd.to_datetime(row["season_end"])
        if pd.isna(start) or pd.isna(end):
            start = end = row["t"]
        ax.axvspan(
            start,
            end,
            facecolor="0.93",
            edgecolor="0.6",
            hatch="///",
            lw=0,
            zorder=0,
            label="season without valid data" if i == 0 else None,
        )
    if not len(ok):
        ax.text(
            0.5,
            0.5,
            "no valid composite yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.4",
        )
    if variable in LOG_VARIABLES and len(ok) and (ok["p10"] > 0).all():
        ax.set_yscale("log")
        lo, hi = float(ok["p10"].min()), float(ok["p90"].max())
        if hi > lo:
            from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

            pad = (hi / lo) ** 0.08
            ax.set_ylim(lo / pad, hi * pad)
            ticks = log_ticks(lo / pad, hi * pad)
            ax.yaxis.set_major_locator(FixedLocator(ticks))
            ax.yaxis.set_major_formatter(FixedFormatter([plain_number(t) for t in ticks]))
            ax.yaxis.set_minor_locator(NullLocator())
    units = _units(variable)
    ax.set_ylabel(f"{SHORT_NAMES.get(variable, variable)} [{units}]")
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def plot_acquisitions(df: pd.DataFrame, *, ax: Any = None, legend: bool = True) -> Any:
    """Acquisitions used per season (bars, integer axis) and the share of valid pixels (points on
    a second axis, 0-100 %) of one sub-tile; returns the acquisitions axis (the percentage axis
    is ``ax.valid_pixels_axis``)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.5), layout="constrained")
    d = df.drop_duplicates(["year", "season"]).copy()
    d["t"] = _mid_dates(d)
    d = d.sort_values("t")
    ax.bar(
        d["t"],
        d["n_acquisitions"].astype(int),
        width=pd.Timedelta(days=40),
        color="#0072B2",
        alpha=0.8,
        label="acquisitions used",
    )
    ax.set_ylabel("acquisitions")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=2))
    top = int(d["n_acquisitions"].max()) if len(d) else 1
    ax.set_ylim(0, max(1, top) * 1.15)
    ax2 = ax.twinx()
    ax2.plot(
        d["t"],
        100 * d["valid_fraction"].astype(float),
        linestyle="none",
        marker="D",
        color="#D55E00",
        ms=4,
        label="valid pixels [%]",
    )
    ax2.set_ylabel("valid pixels [%]")
    ax2.set_ylim(0, 105)
    ax.valid_pixels_axis = ax2
    if legend:
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(
            h1 + h2,
            l1 + l2,
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.08, 1.0),
            frameon=False,
        )
    return ax


def timeseries_figure(
    df: pd.DataFrame,
    *,
    tile: str,
    subtile: str,
    variables: Sequence[str] = ("conc_chl", "conc_tsm", "kd489"),
    data_source_note: str | None = None,
) -> Any:
    """Per-sub-tile figure: one panel per variable plus acquisitions and valid fraction per
    season, one legend to the right of the panels."""
    import matplotlib.pyplot as plt

    d = df[(df["tile"] == tile) & (df["subtile"].astype(str) == str(subtile))]
    fig, axes = plt.subplots(
        len(variables) + 1,
        1,
        figsize=(10, 2.3 * (len(variables) + 1) + 0.4),
        sharex=True,
        layout="constrained",
    )
    for ax, var in zip(axes[:-1], variables, strict=True):
        plot_timeseries(d, var, ax=ax, legend=False)
    counts = plot_acquisitions(d[d["variable"] == variables[0]], ax=axes[-1], legend=False)
    handles: dict[str, Any] = {}
    for ax in [*axes, counts.valid_pixels_axis]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside right upper",
        fontsize=8,
        frameon=False,
        title="season median,\nbars: P10-P90\nover the sub-tile",
        title_fontsize=8,
    )
    fig.suptitle(
        f"{tile} sub-tile {subtile}: spatial median per season with its P10-P90 range"
        + (f"\n{data_source_note}" if data_source_note else ""),
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
            ax.annotate(
                f"{key[1]}\n{frac:.0%}",
                (c.x, c.y),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if frac > 0.5 else "black",  # readable on the dark fills
            )
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
    data_source_note: str | None = None,
) -> Any:
    """The campaign status matrix (and, given lon/lat sub-tile polygons, a map) as one figure;
    ``data_source_note`` goes in the title."""
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
    fig.suptitle(
        f"{title}: {len(df)} sub-tile seasons, {done:.0f} % finished"
        + (f"\n{data_source_note}" if data_source_note else ""),
        fontsize=11,
    )
    return fig


def save_png(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120) -> Path:
    """Save ``fig`` as PNG atomically, check that a PNG was written, and close the figure."""
    import matplotlib.pyplot as plt

    out = Path(path)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
            with open(tmp, "rb") as f:
                if f.read(8) != b"\x89PNG\r\n\x1a\n":
                    raise OutputError(f"{out}: the figure did not save as a PNG")
    finally:
        plt.close(fig)
    return out
