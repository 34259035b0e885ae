"""The SNAP-shaped NetCDF4-BEAM result files and the synthetic C2RCC values in them."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr
from pyproj import CRS

from seasonal_c2rcc.beam_netcdf import read_beam_grid, write_beam_netcdf
from seasonal_c2rcc.emulator import catalogue as cat
from seasonal_c2rcc.emulator.jobs import plan_job, validate_execution, write_output
from seasonal_c2rcc.emulator.products import land_mask
from seasonal_c2rcc.flags import C2RCC_FLAGS, FLAG_MASKS
from seasonal_c2rcc.mgrs import tile_grid

from .helpers import TILE, c2rcc_graph, lonlat_wkt, utm_box

DID = "0123456789abcdef01234567"
URL = f"http://127.0.0.1:1/hda-broker/api/v1/dataaccess/download/{DID}"


def summer(tile: str = TILE) -> list[cat.Product]:
    return cat.products_for_tile(tile, datetime(2020, 6, 1, tzinfo=UTC),
                                 datetime(2020, 8, 31, tzinfo=UTC))


def run(graph: str, product: cat.Product, tmp: Path) -> list[Path]:
    """Validate, plan and write a job's outputs without HTTP (as the server does)."""
    body = {"inputs": {"snap_graph": base64.b64encode(graph.encode()).decode(),
                       "eo_input": json.dumps([{"img1": URL}])}, "outputs": {}}
    sub = validate_execution("snap-function", body, {DID})
    plan = plan_job(sub, {"img1": product}, max_pixels=5_000_000)
    assert plan.failure is None, plan.failure
    paths = []
    for o in plan.outputs:
        write_output(o, tmp / o.name)
        paths.append(tmp / o.name)
    return paths


def test_netcdf_beam_layout(tmp_path: Path) -> None:
    p = next(p for p in summer() if not p.partial)
    (path,) = run(c2rcc_graph(lonlat_wkt(utm_box(12_000, 78_000, 6_000))), p, tmp_path)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\.nc",
                        path.name)
    with netCDF4.Dataset(path) as nc:
        assert nc.data_model == "NETCDF4"
        assert {"y", "x", "tp_y", "tp_x"} <= set(nc.dimensions)
        assert nc.getncattr("Conventions") == "CF-1.4"
        assert nc.getncattr("product_type") == "C2RCC_S2-MSI"
        assert nc.getncattr("metadata_profile") == "beam"
        for key in ("start_date", "stop_date"):
            assert re.fullmatch(r"\d{2}-[A-Z]{3}-\d{4} \d{2}:\d{2}:\d{2}\.\d{6}", nc.getncattr(key))
        assert nc.getncattr("start_date").startswith(p.sensing.strftime("%d-")
                                                     + p.sensing.strftime("%b").upper())
        v = nc.variables
        assert v["lat"].dimensions == ("y", "x") and v["lon"].dimensions == ("y", "x")
        for b in ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A"):
            assert f"rrs_{b}" in v and v[f"rrs_{b}"].units == "sr^-1"
        for name in ("conc_chl", "conc_tsm", "iop_apig", "iop_adet", "iop_agelb", "iop_bpart",
                     "iop_bwit", "kd489", "kdmin", "unc_chl", "unc_tsm", "unc_apig"):
            assert v[name].dimensions == ("y", "x")
        assert not any(n.startswith("rhow_") or n.startswith("rtoa_") for n in v)
        flags = v["c2rcc_flags"]
        assert flags.dtype == np.uint32
        assert list(flags.flag_masks) == [1 << bit for _n, bit, _d in C2RCC_FLAGS]
        assert flags.flag_meanings.split() == [n for n, _b, _d in C2RCC_FLAGS]
        assert flags.flag_masks[-1] == 2**31 and flags.flag_meanings.split()[-1] == "Valid_PE"
        for name, _bit, _d in C2RCC_FLAGS:
            assert v[f"{name}_mask"].expression == f"c2rcc_flags.{name}"
        crs = v["crs"]
        assert CRS.from_wkt(crs.wkt).to_epsg() == tile_grid(TILE).epsg
        assert v["conc_chl"].valid_pixel_expression == "c2rcc_flags.Valid_PE"
    g = read_beam_grid(path)
    assert (g.width, g.height, g.res_x) == (100, 100, 60.0)
    assert g.ulx == tile_grid(TILE).ulx + 12_000 and g.uly == tile_grid(TILE).uly - 78_000
    ds = xr.open_dataset(path)
    assert ds.sizes == {"y": 100, "x": 100, "tp_y": 3, "tp_x": 3}


def test_values_plausible_consistent_and_flagged(tmp_path: Path) -> None:
    ps = [p for p in summer() if not p.partial]
    cloudy = next(p for p in ps if 40 < p.cloud_cover < 80)
    # the north-east quarter of the tile at 60 m includes the land corner
    graph = c2rcc_graph(lonlat_wkt(utm_box(54_900, 0, 54_900))).replace("<CHLfac>21.0</CHLfac>",
                                                      "<CHLfac>19.0</CHLfac>")
    (path,) = run(graph, cloudy, tmp_path)
    ds = xr.open_dataset(path)
    flags = ds["c2rcc_flags"].values
    valid = (flags & FLAG_MASKS["Valid_PE"]) > 0
    assert 0.2 < valid.mean() < 0.8
    for name in ds.data_vars:
        if ds[name].dims == ("y", "x") and name not in ("lat", "lon"):
            assert (ds[name].values[~valid] == 0).all(), name
    assert (flags[~valid] == 0).all()
    chl = ds["conc_chl"].values[valid]
    assert chl.min() >= 0.1 and chl.max() <= 20.0 and 0.5 < np.median(chl) < 5
    apig = ds["iop_apig"].values[valid]
    np.testing.assert_allclose(chl, 19.0 * apig.astype(np.float64) ** 1.04, rtol=1e-5)
    btot = ds["iop_bpart"].values[valid].astype(np.float64) + ds["iop_bwit"].values[valid]
    np.testing.assert_allclose(ds["conc_tsm"].values[valid], 1.06 * btot**0.942, rtol=1e-5)
    assert (ds["rrs_B2"].values[valid] > 0).all() and (ds["rrs_B2"].values[valid] < 0.05).all()
    assert (ds["kd489"].values[valid] > 0).all()
    assert ((flags & FLAG_MASKS["Cloud_risk"]) > 0).mean() > 0.05
    # land (north-east corner) is invalid everywhere
    xs = read_beam_grid(path).x_centres()
    ys = read_beam_grid(path).y_centres()
    land = land_mask(TILE, *np.meshgrid(xs, ys))
    assert land.mean() > 0.05 and not valid[land].any()
    # spatially smooth: neighbouring valid pixels differ little in log(chl)
    lc = np.log(np.where(valid, ds["conc_chl"].values, np.nan))
    assert np.nanmedian(np.abs(np.diff(lc, axis=1))) < 0.05


def test_partial_product_is_invalid_outside_its_footprint(tmp_path: Path) -> None:
    products = cat.products_for_tile(TILE, datetime(2018, 1, 1, tzinfo=UTC),
                                     datetime(2020, 12, 31, tzinfo=UTC))
    p = next(p for p in products if p.partial == "west" and p.cloud_cover < 30)
    # a 6 km strip across the whole tile width, across the cut
    g = tile_grid(TILE)
    strip = (g.ulx, g.uly - 66_000, g.ulx + g.size, g.uly - 60_000)
    (path,) = run(c2rcc_graph(lonlat_wkt(strip)), p, tmp_path)
    ds = xr.open_dataset(path)
    xs = read_beam_grid(path).x_centres()
    valid = (ds["c2rcc_flags"].values & FLAG_MASKS["Valid_PE"]) > 0
    assert p.cut_x is not None
    assert (xs > p.cut_x).sum() > 100 and (xs < p.cut_x).sum() > 100
    assert not valid[:, xs > p.cut_x].any()
    assert valid[:, xs < p.cut_x].mean() > 0.3


@pytest.mark.parametrize(("resample", "res"), [
    ("<referenceBand>B5</referenceBand>", 20.0),
    ("<referenceBand>B2</referenceBand>", 10.0),
    ("<referenceBand>B1</referenceBand>", 60.0),
    ("<targetResolution>20</targetResolution>", 20.0),
])
def test_resolution_from_resample(tmp_path: Path, resample: str, res: float) -> None:
    p = summer()[0]
    (path,) = run(c2rcc_graph(lonlat_wkt(utm_box(12_000, 78_000, 2_400)), resample=resample),
                  p, tmp_path)
    g = read_beam_grid(path)
    assert g.res_x == g.res_y == res and g.width == 2400 / res


def test_rhow_when_not_rrs(tmp_path: Path) -> None:
    p = summer()[0]
    (path,) = run(c2rcc_graph(lonlat_wkt(utm_box(12_000, 78_000, 1_200)), rrs=False), p,
                  tmp_path)
    names = set(xr.open_dataset(path).data_vars)
    assert {f"rhow_B{b}" for b in (1, 2, 3, 4, 5, 6, 7)} | {"rhow_B8A"} <= names
    assert not any(n.startswith("rrs_") for n in names)


def test_write_beam_netcdf_is_atomic_and_round_trips(tmp_path: Path) -> None:
    g = tile_grid(TILE)
    xs = g.ulx + 10 + 20 * np.arange(5)
    ys = g.uly - 10 - 20 * np.arange(4)
    ds = xr.Dataset({"conc_chl": (("y", "x"), np.ones((4, 5), np.float32)),
                     "c2rcc_flags": (("y", "x"), np.full((4, 5), 2**31, np.uint32))},
                    coords={"x": xs, "y": ys})
    out = write_beam_netcdf(tmp_path / "a.nc", ds, epsg=g.epsg,
                            start_time=datetime(2020, 6, 23, 11, 21, 19, 24000))
    assert out.exists() and [p.name for p in tmp_path.iterdir()] == ["a.nc"]
    with netCDF4.Dataset(out) as nc:
        assert nc.start_date == "23-JUN-2020 11:21:19.024000"
    grid = read_beam_grid(out)
    assert (grid.ulx, grid.uly, grid.res_x, grid.width, grid.height) == (g.ulx, g.uly, 20.0, 5, 4)
    bad = ds.assign(bad=(("y", "x"), np.ones((4, 5))))
    bad["bad"] = bad["bad"].astype(object)
    with pytest.raises(Exception):  # noqa: B017 - any writer error, but no file left behind
        write_beam_netcdf(tmp_path / "b.nc", bad, epsg=g.epsg)
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]


def test_blockwise_writer_matches_in_memory_writer(tmp_path: Path) -> None:
    from seasonal_c2rcc.beam_netcdf import BeamGrid, write_beam_netcdf_blocks
    from seasonal_c2rcc.emulator.products import C2rccParams, c2rcc_fields

    p = summer()[1]
    g = tile_grid(TILE)
    grid = BeamGrid(g.epsg, g.ulx + 12_000, g.uly - 78_000, 60.0, 60.0, 70, 50)
    xs, ys = grid.x_centres(), grid.y_centres()
    params = C2rccParams(output_as_rrs=True)
    calls = []

    def block(r0: int, r1: int) -> dict[str, np.ndarray]:
        calls.append((r0, r1))
        return c2rcc_fields(p, xs, ys[r0:r1], params)

    a = write_beam_netcdf_blocks(tmp_path / "a.nc", grid, block, max_block_pixels=700)
    assert len(calls) == 5 and calls[0] == (0, 10)
    full = c2rcc_fields(p, xs, ys, params)
    b = write_beam_netcdf(tmp_path / "b.nc", xr.Dataset(
        {k: (("y", "x"), v) for k, v in full.items()}), grid=grid)
    da, db = xr.open_dataset(a), xr.open_dataset(b)
    assert list(da.data_vars) == list(db.data_vars)
    for name in full:
        np.testing.assert_array_equal(da[name].values, db[name].values)
    np.testing.assert_array_equal(da["lat"].values, db["lat"].values)


def test_concurrent_writes_do_not_crash(tmp_path: Path) -> None:
    # Writes only: concurrent xarray opens in threads are not safe in netCDF-C/HDF5 whatever we
    # do (they crashed this test with a bus error), and neither the emulator nor the pipeline
    # reads NetCDF from several threads of one process.
    import threading

    ps = [p for p in summer() if not p.partial][:4]
    graph = c2rcc_graph(lonlat_wkt(utm_box(12_000, 78_000, 6_000)))
    errors: list[BaseException] = []
    out: list[Path] = []

    def work(p: cat.Product, d: Path) -> None:
        try:
            d.mkdir()
            out.extend(run(graph, p, d))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p, tmp_path / str(i)))
               for i, p in enumerate(ps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(out) == 4
    for path in out:
        with xr.open_dataset(path) as ds:
            assert ds.sizes["x"] == 100 and float(ds["conc_chl"].max()) > 0


def test_pixel_region_subset_snaps_outward(tmp_path: Path) -> None:
    # No geoRegion: Subset/region in 10 m pixels of the (multi-size) L1C, before Resample
    graph = c2rcc_graph("X").replace("<geoRegion>X</geoRegion><region>0,0,0,0</region>",
                                      "<region>100,200,600,300</region>")
    (path,) = run(graph, summer()[0], tmp_path)
    g = read_beam_grid(path)
    t = tile_grid(TILE)
    want = (t.ulx + 1000, t.uly - 5000, t.ulx + 7000, t.uly - 2000)
    xmin, ymin, xmax, ymax = g.bounds
    assert xmin <= want[0] < xmin + 60 and xmax - 60 < want[2] <= xmax
    assert ymin <= want[1] < ymin + 60 and ymax - 60 < want[3] <= ymax
    assert (xmin - t.ulx) % 60 == 0 and (t.uly - ymax) % 60 == 0


def test_block_function_may_read_netcdf_through_xarray(tmp_path: Path) -> None:
    import threading

    from seasonal_c2rcc.beam_netcdf import BeamGrid, write_beam_netcdf_blocks

    g = tile_grid(TILE)
    grid = BeamGrid(g.epsg, g.ulx, g.uly, 60.0, 60.0, 8, 6)
    src = write_beam_netcdf(tmp_path / "src.nc", xr.Dataset(
        {"conc_chl": (("y", "x"), np.arange(48, dtype=np.float32).reshape(6, 8))}), grid=grid)

    def block(r0: int, r1: int) -> dict[str, np.ndarray]:
        # xarray takes the HDF5 lock while reading; the writer must not hold it here
        with xr.open_dataset(src) as ds:
            return {"conc_chl": ds["conc_chl"].values[r0:r1] * 2}

    t = threading.Thread(target=write_beam_netcdf_blocks,
                         args=(tmp_path / "dst.nc", grid, block), kwargs={"max_block_pixels": 16})
    t.start()
    t.join(timeout=60)
    assert not t.is_alive(), "writer deadlocked"
    np.testing.assert_array_equal(xr.open_dataset(tmp_path / "dst.nc")["conc_chl"].values,
                                  2 * np.arange(48).reshape(6, 8))
