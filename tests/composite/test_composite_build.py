"""Seasonal composites against a numpy reference built from the same known inputs."""

from __future__ import annotations

import json

import netCDF4
import numpy as np
import pytest
import rasterio
from c2rcc_testdata import CLOUD, GRID, VALID, product_name, write_product

from seasonal_c2rcc.composite import (
    COMPOSITE_VARIABLES,
    Provenance,
    build_composite,
    c2rcc_graph_parameters,
    group_acquisitions,
    nan_percentile_stats,
    parse_product_id,
)
from seasonal_c2rcc.errors import ConfigError, OutputError
from seasonal_c2rcc.flags import FLAG_MASKS
from seasonal_c2rcc.masking import MaskConfig, valid_mask

SHAPE = (GRID.height, GRID.width)


def _read(path, name):
    with netCDF4.Dataset(path) as ds:
        return np.asarray(
            ds.variables[name][:].filled(np.nan)
            if np.ma.isMA(ds.variables[name][:])
            else ds.variables[name][:]
        )


def _reference(stack, min_obs):
    """numpy reference: nanpercentile + count, NaN where count < min_obs."""
    with (
        np.errstate(all="ignore"),
        pytest.warns(RuntimeWarning) if np.isnan(stack).all(axis=0).any() else _null(),
    ):
        p = np.nanpercentile(stack.astype(np.float64), [10, 50, 90], axis=0)
    n = np.count_nonzero(~np.isnan(stack), axis=0)
    p[:, n < min_obs] = np.nan
    return {"p10": p[0], "median": p[1], "p90": p[2], "count": n}


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_nan_percentile_stats__matches_numpy_with_all_nan_and_single_pixels():
    rng = np.random.default_rng(0)
    a = rng.lognormal(size=(9, 20, 30)).astype(np.float32)
    a[rng.random(a.shape) < 0.4] = np.nan
    a[:, 0, 0] = np.nan  # all invalid
    a[:, 0, 1] = np.nan
    a[4, 0, 1] = 7.0  # a single observation
    for min_count in (1, 3):
        got = nan_percentile_stats(a, min_count=min_count)
        ref = _reference(a, min_count)
        for k in ("median", "p10", "p90"):
            np.testing.assert_allclose(got[k], ref[k], rtol=2e-6, equal_nan=True)
        np.testing.assert_array_equal(got["count"], ref["count"])
    got = nan_percentile_stats(a, min_count=1)
    assert np.isnan(got["median"][0, 0]) and got["count"][0, 0] == 0
    assert got["median"][0, 1] == got["p10"][0, 1] == got["p90"][0, 1] == np.float32(7.0)
    empty = nan_percentile_stats(np.empty((0, 2, 3), np.float32))
    assert np.isnan(empty["median"]).all() and (empty["count"] == 0).all()


def _make_season(tmp_path, n=7, seed=1):
    """n products on distinct days with random chl, invalid, cloudy, at-max and zero pixels."""
    rng = np.random.default_rng(seed)
    chl = rng.lognormal(1.0, 0.8, size=(n, *SHAPE)).astype(np.float32)
    flags = np.full((n, *SHAPE), VALID, np.uint32)
    flags[rng.random(flags.shape) < 0.15] = 0  # not processed
    flags[rng.random(flags.shape) < 0.10] |= CLOUD
    flags[rng.random(flags.shape) < 0.05] |= np.uint32(FLAG_MASKS["Apig_at_max"])
    flags[rng.random(flags.shape) < 0.05] |= np.uint32(FLAG_MASKS["Apig_at_min"])  # allowed
    flags[:, 0, 0] = 0  # all invalid
    flags[:, 0, 1] = 0
    flags[2, 0, 1] = VALID  # single observation
    chl[3, 1, 1] = 0.0  # flagged valid but 0: still not a value
    flags[3, 1, 1] = VALID
    paths = []
    for i in range(n):
        name = product_name(f"202006{10 + i:02d}", orbit=37 if i % 2 else 80)
        paths.append(write_product(tmp_path / "in" / f"{name}.nc", chl[i], flags[i], rhow=(i == 4)))
    ok = ((flags & VALID) != 0) & ((flags & np.uint32(MaskConfig().exclude_mask)) == 0)
    ref_chl = np.where(ok & (chl != 0), chl, np.nan)
    return paths, ref_chl


@pytest.mark.parametrize("block_bytes", [64 * 2**20, 7 * 12 * 4 * 3])  # one block / 3-row blocks
def test_build_composite__statistics_match_numpy_reference(tmp_path, block_bytes):
    paths, ref_chl = _make_season(tmp_path)
    out = tmp_path / "c.nc"
    res = build_composite(paths, out, grid=GRID, block_bytes=block_bytes)
    assert res.status == "ok" and res.n_acquisitions == 7 and res.n_products == 7
    ref = _reference(ref_chl, 3)
    for stat in ("median", "p10", "p90"):
        np.testing.assert_allclose(
            _read(out, f"conc_chl_{stat}"), ref[stat], rtol=2e-6, equal_nan=True
        )
        # derived variables: tsm = 2 chl, kd489 = 0.1 chl, rrs_Bk = chl 1e-3 (k+1) (one file has rhow)
        np.testing.assert_allclose(
            _read(out, f"conc_tsm_{stat}"), 2 * ref[stat], rtol=2e-6, equal_nan=True
        )
        np.testing.assert_allclose(
            _read(out, f"kd489_{stat}"), 0.1 * ref[stat], rtol=2e-6, equal_nan=True
        )
        np.testing.assert_allclose(
            _read(out, f"rrs_B8A_{stat}"), 8e-3 * ref[stat], rtol=2e-5, equal_nan=True
        )
    count = _read(out, "conc_chl_count")
    np.testing.assert_array_equal(count, ref["count"])
    assert count[0, 0] == 0 and count[0, 1] == 1 and np.isnan(_read(out, "conc_chl_median")[0, 1])
    assert np.isnan(_read(out, "conc_chl_median")[0, 0])
    assert res.valid_fraction["conc_chl"] == pytest.approx(np.mean(ref["count"] >= 3))


@pytest.mark.parametrize("cloud_buffer_px", [0, 2])
def test_build_composite__row_blocks_give_bit_identical_results_to_one_whole_array_block(
    tmp_path, cloud_buffer_px
):
    """The block size and the inputs held open bound memory only: 1-, 3- and 4-row blocks (with
    a same-day duplicate, an rhow input and a cloud-buffer halo), with inputs held open or opened
    for each read, give exactly the bytes of one whole-grid block."""
    paths, _ = _make_season(tmp_path, n=7, seed=7)
    # a same-day republication (newer generation) that fills gaps of its acquisition
    rng = np.random.default_rng(8)
    dup_flags = np.where(rng.random(SHAPE) < 0.5, VALID, 0).astype(np.uint32)
    dup = product_name("20200610", orbit=80, generation="20240101T000000")
    paths.append(write_product(tmp_path / "in" / f"{dup}.nc", rng.lognormal(size=SHAPE), dup_flags))
    mask = MaskConfig(cloud_buffer_px=cloud_buffer_px, min_valid_obs=2)
    whole = build_composite(paths, tmp_path / "whole.nc", grid=GRID, mask=mask)
    assert whole.n_acquisitions == 7 and whole.n_products == 8
    row = GRID.width * 4 * whole.n_acquisitions  # bytes of one row of one variable's stack
    # (1, 3 or 4 rows per block; all inputs held open, or 2 and the others opened for each read)
    for rows, max_open in ((1, 128), (3, 2), (4, 0)):
        out = tmp_path / f"rows{rows}.nc"
        build_composite(
            paths, out, grid=GRID, mask=mask, block_bytes=rows * row, max_open_inputs=max_open
        )
        for var in COMPOSITE_VARIABLES:
            for stat in ("median", "p10", "p90", "count"):
                a = _read(tmp_path / "whole.nc", f"{var}_{stat}")
                b = _read(out, f"{var}_{stat}")
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (rows, var, stat)
    assert np.isfinite(_read(tmp_path / "whole.nc", "conc_chl_median")).any()


def test_build_composite__single_observation_pixel_with_min_valid_obs_1(tmp_path):
    paths, ref_chl = _make_season(tmp_path)
    out = tmp_path / "c.nc"
    build_composite(
        paths, out, grid=GRID, mask=MaskConfig(min_valid_obs=1), variables=("conc_chl",)
    )
    med, p10, p90 = (_read(out, f"conc_chl_{s}") for s in ("median", "p10", "p90"))
    assert med[0, 1] == p10[0, 1] == p90[0, 1] == ref_chl[2, 0, 1]
    ref = _reference(ref_chl, 1)
    np.testing.assert_allclose(med, ref["median"], rtol=2e-6, equal_nan=True)


def test_build_composite__same_day_same_orbit_counted_once(tmp_path):
    ones = np.ones(SHAPE, np.float32)
    v = np.full(SHAPE, VALID, np.uint32)
    half = v.copy()
    half[:, 6:] = 0  # split datastrip: left half only
    other = v.copy()
    other[:, :6] = 0  # the complementary right half
    files = [
        # day 1: reprocessed baseline N0500 (preferred) and the old N0204 of the same datatake
        (product_name("20200601", baseline="0500"), 10 * ones, v),
        (product_name("20200601", baseline="0204", generation="20200601T130000"), 99 * ones, v),
        # day 2: split datastrip of one datatake, two products with complementary halves
        (product_name("20200602", generation="20200602T120000"), 20 * ones, half),
        (product_name("20200602", generation="20200602T130000"), 30 * ones, other),
        # day 2, other platform and orbit: a separate acquisition
        (product_name("20200602", platform="S2A", orbit=80), 40 * ones, v),
    ]
    paths = [write_product(tmp_path / f"{n}.nc", c, f) for n, c, f in files]
    groups = group_acquisitions(paths)
    assert [len(g.members) for g in groups] == [2, 1, 2]
    assert parse_product_id(groups[0].members[0]).baseline == 500
    out = tmp_path / "c.nc"
    res = build_composite(
        paths, out, grid=GRID, mask=MaskConfig(min_valid_obs=1), variables=("conc_chl",)
    )
    assert res.n_acquisitions == 3
    count = _read(out, "conc_chl_count")
    assert (count == 3).all()
    med = _read(out, "conc_chl_median")
    # left: median(10, 20, 40) = 20; right: median(10, 30, 40) = 30 (99 of N0204 never used)
    np.testing.assert_array_equal(med[:, :6], 20)
    np.testing.assert_array_equal(med[:, 6:], 30)
    with netCDF4.Dataset(out) as ds:
        acq = json.loads(ds.acquisitions)
    assert len(acq) == 3 and len(ds_attrs_products(out)) == 5


def ds_attrs_products(path):
    with netCDF4.Dataset(path) as ds:
        return ds.input_products.split()


def test_build_composite__empty_season_gives_explicit_no_data(tmp_path):
    out, cog = tmp_path / "nd.nc", tmp_path / "nd_chl.tif"
    res = build_composite(
        [], out, grid=GRID, cog_path=cog, attrs={"tile": "30UUA", "season": "DJF"}
    )
    assert res.status == "no_data" and res.n_products == 0
    with netCDF4.Dataset(out) as ds:
        assert ds.composite_status == "no_data" and ds.no_data_reason
        assert ds.input_products == "" and ds.n_acquisitions == 0
        for v in COMPOSITE_VARIABLES:
            assert ds.variables[f"{v}_median"].shape == SHAPE
    assert np.isnan(_read(out, "conc_chl_median")).all()
    assert (_read(out, "conc_chl_count") == 0).all()
    with rasterio.open(cog) as src:
        assert src.crs.to_epsg() == 32630 and np.isnan(src.read(1)).all()


def test_build_composite__cf_grid_mapping_cog_and_provenance(tmp_path):
    paths, ref_chl = _make_season(tmp_path, n=4)
    graph = tmp_path / "g.xml"
    graph.write_text(
        "<graph id='g'><node id='c2rcc'><operator>c2rcc.msi</operator><sources/>"
        "<parameters><netSet>C2RCC-Nets</netSet><TSMfac>1.06</TSMfac><outputAsRrs>true</outputAsRrs>"
        "</parameters></node><node id='w'><operator>Write</operator></node></graph>"
    )
    prov = Provenance.collect(
        graph_path=graph, backend={"name": "eocanvas", "password": "s3cret", "user": "bob"}
    )
    out, cog = tmp_path / "c.nc", tmp_path / "c_chl.tif"
    build_composite(
        paths,
        out,
        grid=GRID,
        provenance=prov,
        cog_path=cog,
        mask=MaskConfig(min_valid_obs=1),
        attrs={"tile": "30UUA", "subtile": "3", "year": 2020, "season": "JJA"},
    )
    raw = out.read_bytes()
    assert b"s3cret" not in raw and b"bob" not in raw
    assert str(tmp_path).encode() not in raw
    with netCDF4.Dataset(out) as ds:
        assert ds.Conventions == "CF-1.8" and ds.backend == "eocanvas"
        assert json.loads(ds.c2rcc_parameters) == {
            "netSet": "C2RCC-Nets",
            "TSMfac": "1.06",
            "outputAsRrs": "true",
        }
        assert len(ds.graph_sha256) == 64
        # the graph lies outside the working directory: its name only, no absolute local path
        assert ds.graph_path == "g.xml"
        sw = json.loads(ds.software_versions)
        assert {"numpy", "xarray", "netCDF4", "snakemake", "seasonal-c2rcc"} <= set(sw)
        v = ds.variables["conc_chl_median"]
        assert v.units == "mg m-3" and v.grid_mapping == "spatial_ref" and np.isnan(v._FillValue)
        assert v.standard_name == "mass_concentration_of_chlorophyll_a_in_sea_water"
        assert (
            ds.variables["x"].units == "m"
            and ds.variables["spatial_ref"].grid_mapping_name == "transverse_mercator"
        )
    # GDAL reads the georeferencing from the CF grid mapping
    with rasterio.open(f"netcdf:{out}:conc_chl_median") as src:
        assert src.crs.to_epsg() == 32630
        assert src.transform.almost_equals(GRID.transform)
    with rasterio.open(cog) as src:
        assert src.crs.to_epsg() == 32630 and src.transform.almost_equals(GRID.transform)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        np.testing.assert_allclose(src.read(1), _read(out, "conc_chl_median"), equal_nan=True)
    # xarray + rioxarray see the same CRS
    import rioxarray  # noqa: F401
    import xarray as xr

    with xr.open_dataset(out, decode_coords="all") as xds:
        assert xds["conc_chl_median"].rio.crs.to_epsg() == 32630


def test_build_composite__rejects_inputs_off_grid_and_leaves_no_partial_file(tmp_path):
    from seasonal_c2rcc.grid import RasterGrid

    small = RasterGrid(32630, GRID.x0, GRID.y0, 60.0, 5, 5)
    p = write_product(
        tmp_path / f"{product_name('20200601')}.nc",
        np.ones((5, 5)),
        np.full((5, 5), VALID),
        grid=small,
    )
    out = tmp_path / "c.nc"
    with pytest.raises(OutputError, match="sub-tile grid"):
        build_composite([p], out, grid=GRID)
    assert not out.exists() and not (tmp_path / "c.nc.part").exists()
    with pytest.raises(OutputError, match="product id"):
        build_composite([tmp_path / "foo.nc"], out, grid=GRID)


def test_c2rcc_graph_parameters__errors(tmp_path):
    g = tmp_path / "g.xml"
    g.write_text("<graph><node id='r'><operator>Read</operator></node></graph>")
    with pytest.raises(ConfigError, match="no c2rcc node"):
        c2rcc_graph_parameters(g)
    g.write_text("<graph")
    with pytest.raises(ConfigError, match="XML"):
        c2rcc_graph_parameters(g)


def test_solar_day__groups_by_local_day_not_utc_day():
    p = parse_product_id("S2A_MSIL1C_20200623T233000_N0500_R001_T60KXE_20200624T010000")
    assert str(p.solar_day(lon=0.0)) == "2020-06-23"
    assert str(p.solar_day(lon=175.0)) == "2020-06-24"  # 11:10 local time the next day


def test_climatology__median_over_all_years_observations_not_median_of_medians(tmp_path):
    ones = np.ones(SHAPE, np.float32)
    v = np.full(SHAPE, VALID, np.uint32)
    year1 = [("20190610", 1.0), ("20190620", 2.0), ("20190630", 3.0)]
    year2 = [("20200615", 10.0)]
    paths = [
        write_product(tmp_path / f"{product_name(d)}.nc", c * ones, v) for d, c in year1 + year2
    ]
    out = tmp_path / "clim.nc"
    build_composite(
        paths,
        out,
        grid=GRID,
        mask=MaskConfig(min_valid_obs=1),
        variables=("conc_chl",),
        attrs={"composite_kind": "climatology"},
    )
    med = _read(out, "conc_chl_median")
    np.testing.assert_array_equal(med, 2.5)  # median(1, 2, 3, 10); the median of medians would be 6
    np.testing.assert_array_equal(_read(out, "conc_chl_count"), 4)


def test_build_composite__cloud_buffer_is_exact_across_block_edges(tmp_path):
    paths, _ = _make_season(tmp_path, n=5, seed=4)
    mask = MaskConfig(cloud_buffer_px=2, min_valid_obs=1)
    ref_layers = []
    for p in paths:
        with netCDF4.Dataset(p) as ds:
            ds.set_auto_mask(False)
            ok = valid_mask(ds["c2rcc_flags"][:], mask)  # whole-image reference
            chl = np.asarray(ds["conc_chl"][:])
        ref_layers.append(np.where(ok & (chl != 0), chl, np.nan))
    ref = _reference(np.stack(ref_layers), 1)
    out = tmp_path / "c.nc"
    build_composite(
        paths, out, grid=GRID, mask=mask, variables=("conc_chl",), block_bytes=5 * 12 * 4 * 2
    )  # 2-row blocks
    np.testing.assert_array_equal(_read(out, "conc_chl_count"), ref["count"])
    np.testing.assert_allclose(
        _read(out, "conc_chl_median"), ref["median"], rtol=2e-6, equal_nan=True
    )
