"""Time-series table, campaign status and figures from composites built from known inputs."""

from __future__ import annotations

import json

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from c2rcc_testdata import GRID, VALID, product_name, write_product
from shapely.geometry import box

from seasonal_c2rcc.composite import build_composite
from seasonal_c2rcc.grid import RasterGrid
from seasonal_c2rcc.masking import MaskConfig
from seasonal_c2rcc.plotting import (
    BasemapConfig,
    add_basemap,
    plot_season_map,
    read_map_layer,
    save_png,
    season_map_figure,
    status_figure,
    timeseries_figure,
)
from seasonal_c2rcc.status import (
    campaign_status,
    state_fingerprint,
    summary_counts,
    write_status_table,
)
from seasonal_c2rcc.timeseries import COLUMNS, read_timeseries, write_timeseries

SEASONS = {"spring": ("03-01", "05-31"), "summer": ("06-01", "08-31")}
GRID_B = RasterGrid(
    GRID.epsg, GRID.x0 + GRID.width * GRID.res, GRID.y0, GRID.res, GRID.width, GRID.height
)


def _composite(root, subtile, year, season, grid, chl_values):
    """Composite of len(chl_values) scenes with constant chl each (all valid); [] -> no-data."""
    paths = []
    for i, c in enumerate(chl_values):
        month = "04" if season == "spring" else "07"
        name = product_name(f"{year}{month}{10 + i:02d}")
        field = np.full((grid.height, grid.width), c, np.float32)
        field[: grid.height // 2] *= 2  # north half twice as high: spatial structure in the map
        paths.append(
            write_product(
                root / "in" / subtile / f"{name}.nc", field, np.full(field.shape, VALID), grid=grid
            )
        )
    out = root / "results" / "composites" / "30UUA" / str(year) / season / f"{subtile}.nc"
    s, e = SEASONS[season]
    build_composite(
        paths,
        out,
        grid=grid,
        mask=MaskConfig(min_valid_obs=2),
        attrs={
            "tile": "30UUA",
            "subtile": subtile,
            "year": year,
            "season": season,
            "season_start": f"{year}-{s}",
            "season_end": f"{year}-{e}",
            "composite_kind": "seasonal",
        },
    )
    return out


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    comps = [
        _composite(root, "0", 2020, "spring", GRID, [1.0, 2.0, 3.0]),
        _composite(root, "0", 2020, "summer", GRID, [4.0, 5.0]),
        _composite(root, "0", 2021, "spring", GRID, [1.5, 2.5, 3.5, 4.5]),
        _composite(root, "0", 2021, "summer", GRID, []),  # no scenes
        _composite(root, "1", 2020, "spring", GRID_B, [8.0, 9.0]),
        _composite(root, "1", 2020, "summer", GRID_B, [1.0]),  # 1 obs < min_valid_obs=2
    ]
    return root, comps


def _png_checks(path, min_w=400, min_h=300):
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not blank
    background = np.all(rgb > 0.97, axis=-1)
    assert (~background).mean() > 0.05  # a real share of the image is drawn
    return img


def test_timeseries__values_fraction_and_scene_counts(campaign, tmp_path):
    root, comps = campaign
    df = write_timeseries(comps, tmp_path / "ts.parquet", tmp_path / "ts.csv")
    assert list(df.columns) == list(COLUMNS)
    chl = df[df["variable"] == "conc_chl"].set_index(["subtile", "year", "season"])
    # sub-tile 0, spring 2020: per pixel median(1,2,3)=2 (south) / 4 (north): spatial median 3
    r = chl.loc[("0", 2020, "spring")]
    assert r["median"] == pytest.approx(np.percentile([2.0] * 60 + [4.0] * 60, 50))
    assert r["p10"] == pytest.approx(2.0) and r["p90"] == pytest.approx(4.0)
    assert r["valid_fraction"] == 1.0 and r["n_acquisitions"] == 3 and r["n_products"] == 3
    assert r["units"] == "mg m-3"
    nd = chl.loc[("0", 2021, "summer")]
    assert (
        np.isnan(nd["median"]) and nd["valid_fraction"] == 0 and nd["composite_status"] == "no_data"
    )
    one = chl.loc[("1", 2020, "summer")]
    assert (
        np.isnan(one["median"])
        and one["n_acquisitions"] == 1
        and one["composite_status"] == "no_data"
    )
    # 6 composites x 11 variables, same content in both formats
    assert len(df) == 66
    back_csv, back_pq = (
        read_timeseries(tmp_path / "ts.csv"),
        read_timeseries(tmp_path / "ts.parquet"),
    )
    pd.testing.assert_frame_equal(back_pq, df)
    np.testing.assert_allclose(back_csv["median"], df["median"], equal_nan=True)
    assert (back_csv["subtile"] == df["subtile"]).all()


def test_timeseries_figure__png_not_blank(campaign, tmp_path):
    root, comps = campaign
    df = write_timeseries(comps, tmp_path / "ts.parquet", tmp_path / "ts.csv")
    out = save_png(timeseries_figure(df, tile="30UUA", subtile="0"), tmp_path / "ts.png")
    _png_checks(out)


def test_season_map__offline_falls_back_to_outlines_and_note(campaign, tmp_path):
    root, comps = campaign
    spring = [c for c in comps if "2020/spring" in str(c)]
    outlines = {
        "0": box(GRID.x0, GRID.y0 - 600, GRID.x0 + 720, GRID.y0),
        "1": box(GRID_B.x0, GRID_B.y0 - 600, GRID_B.x0 + 720, GRID_B.y0),
    }
    # an unreachable tile server: must not fail, must say so
    unreachable = BasemapConfig(
        source="OpenStreetMap.Mapnik", cache_dir=str(tmp_path / "cache"), timeout=2
    )
    fig = season_map_figure(
        spring, title="30UUA spring 2020", outlines=outlines, basemap=unreachable
    )
    axes = fig.axes
    texts = [t.get_text() for ax in axes for t in ax.texts]
    note = add_basemap(axes[0], 32630, unreachable)
    if note is not None:  # no internet here (the normal case in CI): the note is drawn
        assert any("outlines only" in t for t in texts)
    cbar_labels = [ax.get_ylabel() for ax in axes]
    assert any("mg m-3" in lab for lab in cbar_labels) and any(
        "g m-3" in lab and "TSM" in lab for lab in cbar_labels
    )
    out = save_png(fig, tmp_path / "map.png")
    _png_checks(out, min_w=800)


def test_plot_season_map__log_norm_and_no_data(campaign):
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    root, comps = campaign
    layers = [read_map_layer(comps[0], "conc_chl")]
    ax = plot_season_map(layers, "conc_chl", basemap=None)
    assert isinstance(ax.images[0].norm, LogNorm)
    assert ax.images[0].norm.vmin == pytest.approx(2.0) and ax.images[0].norm.vmax == pytest.approx(
        4.0
    )
    plt.close(ax.figure)
    empty = [read_map_layer(comps[3], "conc_tsm")]
    ax = plot_season_map(empty, "conc_tsm", basemap=None)
    assert any("no valid data" in t.get_text() for t in ax.texts)
    plt.close(ax.figure)


def test_campaign_status__all_four_states_from_composites_catalogue_and_jobs(campaign, tmp_path):
    root, comps = campaign
    res = root / "results"
    fp0 = state_fingerprint(res)
    cat = res / "catalog" / "30UUA" / "2022" / "spring.json"
    cat.parent.mkdir(parents=True, exist_ok=True)
    cat.write_text(
        json.dumps(
            {
                "tile": "30UUA",
                "year": 2022,
                "season": "spring",
                "products": {"P1": {}, "P2": {}},
                "subtiles": {"0": ["P1", "P2"], "1": []},
            }
        )
    )
    jobs = res / "state" / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    (jobs / "j1.json").write_text(
        json.dumps(
            {
                "key": "j1",
                "tile": "30UUA",
                "year": 2022,
                "season": "spring",
                "products": ["P1"],
                "subtiles": ["0"],
                "state": "gave_up",
                "error": "gpt exited 1",
                "log": "logs/eocanvas/remote/j1.log",
            }
        )
    )
    (jobs / "j2.json").write_text(
        json.dumps(
            {
                "key": "j2",
                "tile": "30UUA",
                "year": 2022,
                "season": "spring",
                "products": ["P2"],
                "subtiles": ["0"],
                "state": "running",
            }
        )
    )
    units = [
        ("30UUA", y, s, st) for st in ("0", "1") for y in (2020, 2021, 2022, 2023) for s in SEASONS
    ]
    df = campaign_status(units, res)
    assert state_fingerprint(res) != fp0
    st = df.set_index(["subtile", "year", "season"])["state"]
    assert st[("0", 2020, "spring")] == "done" and st[("1", 2020, "spring")] == "done"
    assert st[("1", 2020, "summer")] == "no-data"  # 1 scene < min_valid_obs: no pixel has data
    assert st[("0", 2021, "summer")] == "no-data"  # no-data composite
    assert st[("1", 2022, "spring")] == "no-data"  # empty catalogue entry
    assert st[("0", 2022, "spring")] == "failed"
    assert (
        "gpt exited 1"
        in df.set_index(["subtile", "year", "season"]).loc[("0", 2022, "spring"), "detail"]
    )
    assert st[("0", 2023, "summer")] == "pending"
    assert summary_counts(df) == {"done": 4, "no-data": 3, "failed": 1, "pending": 8}
    write_status_table(df, tmp_path / "s.csv", tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["counts"]["failed"] == 1 and len(doc["units"]) == 16
    assert len(pd.read_csv(tmp_path / "s.csv")) == 16
    out = save_png(status_figure(df), tmp_path / "status.png")
    img = _png_checks(out, min_w=300, min_h=200)
    # the four state colours are all present in the picture
    from matplotlib.colors import to_rgb

    from seasonal_c2rcc.plotting import STATE_COLOURS

    px = img[..., :3].reshape(-1, 3)
    for colour in STATE_COLOURS.values():
        assert (np.abs(px - np.array(to_rgb(colour))).max(axis=1) < 0.02).sum() > 50


def test_add_basemap__tiles_from_a_server_are_cached_on_disk_and_reused_offline(tmp_path):
    """A local XYZ tile server stands in for the internet: first draw fetches and caches, the
    second draw (server stopped) is served from the disk cache."""
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import matplotlib.pyplot as plt
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (20, 120, 200)).save(buf, format="PNG")
    tile = buf.getvalue()
    hits = []

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(tile)))
            self.end_headers()
            self.wfile.write(tile)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = BasemapConfig(
        source=f"http://127.0.0.1:{server.server_port}/{{z}}/{{x}}/{{y}}.png",
        cache_dir=str(tmp_path / "cache"),
        timeout=5,
    )

    def draw():
        fig, ax = plt.subplots()
        ax.set_xlim(300000, 310000)
        ax.set_ylim(5540000, 5550000)
        note = add_basemap(ax, 32630, cfg)
        n_images = len(ax.images)
        plt.close(fig)
        return note, n_images

    try:
        assert draw() == (None, 1)
        assert hits
    finally:
        server.shutdown()
        server.server_close()
    assert any((tmp_path / "cache").rglob("*"))
    n_hits = len(hits)
    assert draw() == (None, 1)  # offline now: tiles come from the disk cache
    assert len(hits) == n_hits
