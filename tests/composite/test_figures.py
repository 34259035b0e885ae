"""What a scientist checks on the figures: plain colour-bar ticks, one colour range for every map of
a tile, no-data drawn and explained, time series that never join seasons, integer counts, legends
outside the data, and the data-source note."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from c2rcc_testdata import GRID, VALID, product_name, write_product
from matplotlib.colors import to_rgba
from shapely.geometry import box

from seasonal_c2rcc.composite import build_composite
from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.figure_ranges import (
    check_configured_ranges,
    needs_composites,
    read_ranges,
    tile_colour_ranges,
    write_ranges,
)
from seasonal_c2rcc.masking import MaskConfig
from seasonal_c2rcc.plotting import (
    NO_DATA_COLOUR,
    PlotConfig,
    log_ticks,
    plot_acquisitions,
    plot_season_map,
    plot_timeseries,
    read_map_layer,
    robust_log_limits,
    season_map_figure,
    status_figure,
    timeseries_figure,
)
from seasonal_c2rcc.reporting import report_only_run
from seasonal_c2rcc.timeseries import build_timeseries

NOTE = "synthetic data from the WEkEO emulator"
WINDOWS = {"spring": ("03-01", "05-31"), "summer": ("06-01", "08-31"), "autumn": ("09-01", "11-30")}
#: Chl level of each (year, season): the seasons differ tenfold, so per-map scaling would differ.
LEVELS = {
    (2020, "spring"): 0.5,
    (2020, "summer"): 5.0,
    (2020, "autumn"): None,  # no scene: an unobserved season between two observed ones
    (2021, "spring"): 1.0,
    (2021, "summer"): 8.0,
}


def _composite(root, year, season, level):
    month = {"spring": "04", "summer": "07", "autumn": "10"}[season]
    inputs = []
    for i in range(2 if level else 0):
        field = np.full((GRID.height, GRID.width), level * (1 + 0.2 * i), np.float32)
        field[: GRID.height // 2] *= 3  # spatial structure
        flags = np.full(field.shape, VALID)
        flags[:3, :4] = 0  # a corner never valid: no-data pixels in every map
        name = product_name(f"{year}{month}{10 + i:02d}")
        inputs.append(write_product(root / "in" / f"{year}{season}" / f"{name}.nc", field, flags))
    out = root / "results/composites/30UUA" / str(year) / season / "0.nc"
    s, e = WINDOWS[season]
    build_composite(
        inputs,
        out,
        grid=GRID,
        mask=MaskConfig(min_valid_obs=2),
        attrs={
            "tile": "30UUA",
            "subtile": "0",
            "year": year,
            "season": season,
            "season_start": f"{year}-{s}",
            "season_end": f"{year}-{e}",
            "composite_kind": "seasonal",
        },
    )
    return out


@pytest.fixture(scope="module")
def tile(tmp_path_factory):
    root = tmp_path_factory.mktemp("tile")
    comps = {key: _composite(root, *key, level) for key, level in LEVELS.items()}
    return root, comps


OUTLINES = {
    "0": box(GRID.x0, GRID.y0 - GRID.height * GRID.res, GRID.x0 + GRID.width * GRID.res, GRID.y0)
}


def _colorbar_labels(ax):
    ax.figure.canvas.draw()
    cb = ax.images[0].colorbar
    major = [t.get_text() for t in cb.ax.yaxis.get_ticklabels()]
    minor = [t.get_text() for t in cb.ax.yaxis.get_ticklabels(minor=True) if t.get_text()]
    return major, minor


@pytest.mark.parametrize(
    ("vmin", "vmax", "expected"),
    [
        (0.25, 12, [0.3, 1, 3, 10]),
        (0.1, 30, [0.1, 0.3, 1, 3, 10, 30]),
        (0.64, 7.5, [1, 2, 5]),
        (0.0701, 0.295, [0.08, 0.1, 0.2]),
        (0.01, 1000, [0.01, 0.1, 1, 10, 100, 1000]),
        (1.1, 1.4, [1.1, 1.2, 1.3, 1.4]),
    ],
)
def test_log_ticks__round_values_a_reader_can_read(vmin, vmax, expected):
    assert log_ticks(vmin, vmax) == pytest.approx(expected)


def test_season_map__log_colour_bar_has_plain_tick_labels(tile):
    _, comps = tile
    layers = [read_map_layer(comps[(2020, "summer")], "conc_chl")]
    ax = plot_season_map(
        layers, "conc_chl", basemap=None, config=PlotConfig(limits={"conc_chl": (0.25, 12.0)})
    )
    major, minor = _colorbar_labels(ax)
    assert major == ["0.3", "1", "3", "10"]
    assert minor == []  # no stray 4x10^0-style labels on minor ticks
    plt.close(ax.figure)


def test_season_maps__one_colour_range_for_every_map_of_the_tile(tile, tmp_path):
    _, comps = tile
    seasonal = list(comps.values())
    ranges = tile_colour_ranges(seasonal, {}, (2, 98))
    write_ranges(ranges, tmp_path / "ranges.csv")
    back = read_ranges(tmp_path / "ranges.csv")
    assert [r.variable for r in ranges] == ["conc_chl", "conc_tsm", "kd489", "rrs_rgb"]
    # the pooled P2-P98 of every valid pixel of every composite (to the histogram's 0.6 %)
    pooled = np.concatenate([read_map_layer(p, "conc_chl").data.ravel() for p in seasonal])
    pooled = pooled[np.isfinite(pooled)]
    lo, hi = np.percentile(pooled, [2, 98])
    assert back["conc_chl"].low == pytest.approx(lo, rel=0.01)
    assert back["conc_chl"].high == pytest.approx(hi, rel=0.01)
    # a map scaled on its own would differ between seasons: the shared range is what makes them
    # comparable
    own = {
        key: robust_log_limits([read_map_layer(p, "conc_chl").data])
        for key, p in comps.items()
        if LEVELS[key]
    }
    assert own[(2020, "spring")][1] < own[(2020, "summer")][0]

    limits: dict[str, set] = {}
    for (year, season), path in comps.items():
        fig = season_map_figure(
            [path],
            title=f"30UUA {season} {year}",
            outlines=OUTLINES,
            ranges=back,
            tile="30UUA",
            basemap=None,
        )
        for ax in fig.axes:
            if not ax.images or ax.images[0].colorbar is None:
                continue
            im = ax.images[0]
            variable = {"Chl-a": "conc_chl", "TSM": "conc_tsm", "Kd(489)": "kd489"}[
                ax.get_title().split(" median")[0]
            ]
            limits.setdefault(variable, set()).add((im.norm.vmin, im.norm.vmax))
        # the range is written on the figure
        legend_title = fig.legends[0].get_title().get_text()
        assert f"Chl-a {back['conc_chl'].low:g}-{back['conc_chl'].high:g} mg m-3" in legend_title
        plt.close(fig)
    assert set(limits) == {"conc_chl", "conc_tsm", "kd489"}
    for variable, seen in limits.items():
        assert seen == {(back[variable].low, back[variable].high)}, variable


def test_season_map__no_data_is_its_own_grey_with_a_legend_entry(tile):
    _, comps = tile
    layers = [read_map_layer(comps[(2021, "spring")], "conc_tsm")]
    assert np.isnan(layers[0].data).any()
    ax = plot_season_map(
        layers, "conc_tsm", outlines=OUTLINES, basemap=None, config=PlotConfig(min_valid_obs=2)
    )
    im = ax.images[0]
    assert to_rgba(im.cmap.get_bad()) == to_rgba(NO_DATA_COLOUR)
    # the grey is not a colour of the colour map itself
    cmap_colours = im.cmap(np.linspace(0, 1, 256))[:, :3]
    assert np.abs(cmap_colours - to_rgba(NO_DATA_COLOUR)[:3]).max(axis=1).min() > 0.05
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("no valid observation" in t and "fewer than 2" in t for t in labels)
    assert any("outside the sub-tiles" in t for t in labels)
    # the legend sits below the map, not on the data
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0
    plt.close(ax.figure)


def test_season_map_figure__kd_and_true_colour_panels_and_the_note(tile):
    _, comps = tile
    fig = season_map_figure(
        [comps[(2020, "summer")]],
        title="30UUA summer 2020",
        outlines=OUTLINES,
        data_source_note=NOTE,
        basemap=None,
    )
    titles = " | ".join(ax.get_title() for ax in fig.axes)
    assert "Kd(489) median" in titles and "Rrs true colour" in titles
    rgb = [im for ax in fig.axes for im in ax.images if im.get_array().ndim == 3]
    assert len(rgb) == 1
    pixels = np.asarray(rgb[0].get_array())
    assert np.allclose(pixels[0, 0], to_rgba(NO_DATA_COLOUR)[:3])  # the never-valid corner
    assert NOTE in fig.get_suptitle()
    plt.close(fig)


def _series(tile):
    _, comps = tile
    return build_timeseries(list(comps.values()))


def test_timeseries__points_per_season_and_no_line_across_an_unobserved_season(tile):
    df = _series(tile)
    ax = plot_timeseries(df, "conc_chl")
    d = df[df["variable"] == "conc_chl"]
    start = pd.to_datetime(d["season_start"])
    mid = start + (pd.to_datetime(d["season_end"]) - start) / 2
    unobserved = mid[~np.isfinite(d["median"])]
    assert len(unobserved) == 1  # 2020 autumn
    gap = plt.matplotlib.dates.date2num(unobserved.iloc[0])

    def crosses(x0, x1):
        return min(x0, x1) < gap < max(x0, x1)

    points = 0
    for line in ax.lines:
        xs = plt.matplotlib.dates.date2num(np.asarray(line.get_xdata()))
        if line.get_linestyle() in ("None", "none", "", " "):
            points += len(xs) if line.get_marker() not in (None, "None", "", "_") else 0
            continue
        for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
            assert not crosses(x0, x1), "a line joins the seasons around an unobserved one"
    for coll in ax.collections:
        for seg in getattr(coll, "get_segments", list)():
            xs = np.asarray(seg)[:, 0]
            assert not crosses(xs.min(), xs.max())
    assert points == 4  # one point per observed season
    labels = ax.get_legend_handles_labels()[1]
    assert "season without valid data" in labels
    plt.close(ax.figure)


def test_acquisitions__integer_ticks(tile):
    df = _series(tile)
    ax = plot_acquisitions(df[df["variable"] == "conc_chl"])
    ax.figure.canvas.draw()
    ticks = ax.get_yticks()
    assert len(ticks) >= 2 and np.allclose(ticks, np.round(ticks))
    assert all("." not in t.get_text() for t in ax.get_yticklabels())
    plt.close(ax.figure)


def test_timeseries_figure__legend_outside_the_panels_and_the_note(tile):
    df = _series(tile)
    fig = timeseries_figure(df, tile="30UUA", subtile="0", data_source_note=NOTE)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert legend.x0 >= ax.get_window_extent(renderer).x1 - 1
    assert NOTE in fig.get_suptitle()
    plt.close(fig)


def test_status_figure__carries_the_note():
    df = pd.DataFrame(
        {
            "tile": ["30UUA"],
            "subtile": ["0"],
            "year": [2020],
            "season": ["spring"],
            "state": ["done"],
        }
    )
    fig = status_figure(df, data_source_note=NOTE)
    assert NOTE in fig.get_suptitle()
    plt.close(fig)


@pytest.mark.parametrize(
    ("ranges", "words"),
    [
        ({"conc_chl": [0, 30]}, ["figures.ranges.conc_chl", "above 0"]),
        ({"conc_tsm": [5, 1]}, ["figures.ranges.conc_tsm", "below the high end"]),
        ({"chl": [1, 2]}, ["figures.ranges.chl", "conc_chl"]),
        ({"kd489": ["a", 2]}, ["figures.ranges.kd489", "pair of numbers"]),
    ],
)
def test_configured_ranges__bad_entries_name_the_key(ranges, words):
    with pytest.raises(ConfigError) as err:
        check_configured_ranges(ranges)
    assert all(w in str(err.value) for w in words)


def test_configured_ranges__all_four_need_no_composite(tmp_path):
    fixed = {"conc_chl": [0.1, 30], "conc_tsm": [0.5, 50], "kd489": [0.05, 2], "rrs_rgb": [0, 0.02]}
    assert needs_composites({"conc_chl": [0.1, 30]}) and not needs_composites(fixed)
    ranges = tile_colour_ranges([], fixed)
    write_ranges(ranges, tmp_path / "r.csv")
    back = read_ranges(tmp_path / "r.csv")
    assert (back["conc_chl"].low, back["conc_chl"].high) == (0.1, 30.0)
    assert back["rrs_rgb"].source == "configured (figures.ranges)"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--report", "report.zip"], True),
        (["--report=report.html", "--cores", "1"], True),
        (["--report", "r.zip", "--report-after-run"], False),
        (["-n"], False),
        (["--report-stylesheet", "x.css"], False),
    ],
)
def test_report_only_run__from_the_command_line(argv, expected):
    assert report_only_run(argv) is expected
