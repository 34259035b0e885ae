"""Sub-tile clip of job results: exact pixels, everything kept, misaligned grids refused."""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
import pytest
from pyproj import CRS, Transformer

from seasonal_c2rcc.clip import clip_to_grid, result_grid
from seasonal_c2rcc.errors import OutputError
from seasonal_c2rcc.grid import RasterGrid, load_subtiles, region_raster_grid, subtile_raster_grid
from seasonal_c2rcc.packing import plan_jobs

REPO = Path(__file__).resolve().parents[2]
GRID = REPO / "config" / "subtiles" / "30UUA_utm.json"
EPSG = 32630


def value(name: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Deterministic per absolute pixel centre, like a product's C2RCC output."""
    h = np.sin(x[None, :] / 713.0 + len(name)) * np.cos(y[:, None] / 977.0)
    return h


def write_beam(path: Path, g: RasterGrid, *, i2m: bool = True) -> None:
    """A NetCDF4-BEAM-shaped file on grid ``g`` (what SNAP's Write NetCDF4-BEAM produces)."""
    with netCDF4.Dataset(path, "w") as nc:
        nc.setncatts({"Conventions": "CF-1.4", "product_type": "C2RCC_S2-MSI",
                      "metadata_profile": "beam", "start_date": "23-JUN-2020 11:21:19.024000"})
        nc.createDimension("y", g.height)
        nc.createDimension("x", g.width)
        nc.createDimension("tp_y", 3)
        nc.createDimension("tp_x", 4)
        crs = nc.createVariable("crs", "i4")
        crs.setncattr("wkt", CRS.from_epsg(g.epsg).to_wkt())
        if i2m:
            crs.setncattr("i2m", f"{g.res},0.0,0.0,{-g.res},{g.x0},{g.y0}")
        else:
            crs.setncattr("GeoTransform", f"{g.x0} {g.res} 0 {g.y0} 0 {-g.res}")
        meta = nc.createVariable("metadata", "i1")
        meta.setncatts({"Processing_Graph:node.3:operator": "c2rcc.msi"})
        chl = nc.createVariable("conc_chl", "f4", ("y", "x"), zlib=True, complevel=5,
                                fill_value=np.float32(np.nan), chunksizes=(64, 64))
        chl.setncatts({"units": "mg m^-3", "valid_pixel_expression": "c2rcc_flags.Valid_PE"})
        chl[:] = (value("conc_chl", g.x, g.y) * 10).astype(np.float32)
        chl[0, 0] = np.nan
        flags = nc.createVariable("c2rcc_flags", "u4", ("y", "x"), zlib=True)
        flags.setncatts({"flag_masks": np.array([1, 8, 2**31], "u4"),
                         "flag_meanings": "Rtosa_OOS Cloud_risk Valid_PE"})
        flags[:] = (value("flags", g.x, g.y) > 0).astype("u4") * np.uint32(2**31) + 8
        to_ll = Transformer.from_crs(g.epsg, 4326, always_xy=True)
        xx, yy = np.meshgrid(g.x, g.y)
        lon, lat = to_ll.transform(xx, yy)
        nc.createVariable("lat", "f4", ("y", "x"))[:] = lat
        nc.createVariable("lon", "f4", ("y", "x"))[:] = lon
        nc.createVariable("tp_sun_zenith", "f4", ("tp_y", "tp_x"))[:] = np.arange(12.0).reshape(3, 4)


@pytest.fixture(scope="module")
def subtiles():
    return load_subtiles(GRID, "EPSG:32630")


def _read(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        return {k: np.asarray(v[...]) for k, v in nc.variables.items()}


def test_group_job_clipped_equals_subtile_job_clipped(tmp_path, subtiles):
    cat = {"tile": "30UUA", "products": {"P": {"size": 1}},
           "subtiles": {s.id: ["P"] for s in subtiles}}
    res = 20
    (group_job,) = plan_jobs(cat, subtiles, mode="per-product", resolution=res)
    single_jobs = {j.subtiles[0]: j for j in plan_jobs(cat, subtiles, mode="per-subtile",
                                                       resolution=res)}
    # What SNAP returns for each job: its box plus the one-pixel margin of the half-pixel geoRegion.
    def result_for(job) -> RasterGrid:
        g = region_raster_grid("30UUA", job.utm_bounds, res)
        return RasterGrid(g.epsg, g.x0 - res, g.y0 + res, res, g.width + 2, g.height + 2)

    big = tmp_path / "group.nc"
    write_beam(big, result_for(group_job))
    for s in subtiles[:4] + subtiles[-1:]:
        sg = subtile_raster_grid(s, res)
        small = tmp_path / f"single_{s.id}.nc"
        write_beam(small, result_for(single_jobs[s.id]))
        a = clip_to_grid(big, sg, tmp_path / "out" / f"from_group_{s.id}.nc")
        b = clip_to_grid(small, sg, tmp_path / "out" / f"from_single_{s.id}.nc")
        va, vb = _read(a), _read(b)
        assert va.keys() == vb.keys()
        for k in va:
            assert va[k].tobytes() == vb[k].tobytes(), k
        assert va["conc_chl"].shape == (500, 500)
        # and those values are the sub-tile's own pixels, not shifted ones
        expect = (value("conc_chl", sg.x, sg.y) * 10).astype(np.float32)
        assert np.array_equal(va["conc_chl"], expect)
        assert result_grid(a) == sg


def test_everything_is_kept_and_crs_moves_to_the_new_origin(tmp_path, subtiles):
    s = subtiles[0]
    sg = subtile_raster_grid(s, 20)
    src = RasterGrid(EPSG, sg.x0 - 200, sg.y0 + 100, 20, sg.width + 30, sg.height + 20)
    write_beam(tmp_path / "r.nc", src)
    out = clip_to_grid(tmp_path / "r.nc", sg, tmp_path / "s.nc", attrs={"clipped_from": "r.nc"})
    with netCDF4.Dataset(tmp_path / "r.nc") as a, netCDF4.Dataset(out) as b:
        assert {**a.__dict__, "clipped_from": "r.nc"} == b.__dict__
        assert b.variables["crs"].i2m == f"20.0,0.0,0.0,-20.0,{sg.x0!r},{sg.y0!r}"
        assert b.variables["crs"].wkt == a.variables["crs"].wkt
        for name, v in a.variables.items():
            w = b.variables[name]
            assert w.dtype == v.dtype and w.dimensions == v.dimensions
            for att in v.ncattrs():
                if name == "crs" and att == "i2m":
                    continue
                x, y = np.asarray(w.getncattr(att)), np.asarray(v.getncattr(att))
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (name, att)
        assert b.variables["conc_chl"].filters()["complevel"] == 5
        assert np.isnan(b.variables["conc_chl"]._FillValue)
        # the tie-point grid has its own dimensions and is copied whole
        assert b.variables["tp_sun_zenith"][:].tolist() == a.variables["tp_sun_zenith"][:].tolist()
        # 2-D lat/lon are cut with the data: the first pixel is the sub-tile's NW pixel centre
        lon, lat = Transformer.from_crs(EPSG, 4326, always_xy=True).transform(sg.x[0], sg.y[0])
        assert b.variables["lon"][0, 0] == pytest.approx(lon, abs=1e-5)
        assert b.variables["lat"][0, 0] == pytest.approx(lat, abs=1e-5)
        # the first pixel of the result was NaN; the sub-tile starts 10 columns / 5 rows in
        assert b.variables["conc_chl"][0, 0] == a.variables["conc_chl"][5, 10]


def test_geotransform_files_are_clipped_too(tmp_path, subtiles):
    sg = subtile_raster_grid(subtiles[1], 60)
    src = RasterGrid(EPSG, sg.x0 - 60, sg.y0 + 60, 60, sg.width + 2, sg.height + 2)
    write_beam(tmp_path / "r.nc", src, i2m=False)
    out = clip_to_grid(tmp_path / "r.nc", sg, tmp_path / "s.nc")
    assert result_grid(out) == sg


@pytest.mark.parametrize(
    ("shift", "match"),
    [((10.0, 0.0), "fraction of a pixel"), ((0.0, 0.0, 40), "pixel size"),
     ((400.0, 0.0), "does not cover")],
)
def test_misaligned_or_short_results_are_refused(tmp_path, subtiles, shift, match):
    sg = subtile_raster_grid(subtiles[0], 20)
    res = shift[2] if len(shift) == 3 else 20
    src = RasterGrid(EPSG, sg.x0 - 20 + shift[0], sg.y0 + 20, res, sg.width + 2, sg.height + 2)
    write_beam(tmp_path / "r.nc", src)
    with pytest.raises(OutputError, match=match):
        clip_to_grid(tmp_path / "r.nc", sg, tmp_path / "s.nc")
    assert not (tmp_path / "s.nc").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "r.nc"]  # no temp file left behind


def test_wrong_crs_and_garbage_are_refused(tmp_path, subtiles):
    sg = subtile_raster_grid(subtiles[0], 20)
    write_beam(tmp_path / "r.nc", RasterGrid(32629, sg.x0, sg.y0, 20, sg.width, sg.height))
    with pytest.raises(OutputError, match="EPSG:32629"):
        clip_to_grid(tmp_path / "r.nc", sg, tmp_path / "s.nc")
    (tmp_path / "bad.nc").write_bytes(b"<html>502 Bad Gateway</html>")
    with pytest.raises(OutputError, match="cannot be opened"):
        clip_to_grid(tmp_path / "bad.nc", sg, tmp_path / "s.nc")


def test_source_product_reads_the_read_nodes_input(tmp_path, subtiles):
    from seasonal_c2rcc.clip import source_product

    sg = subtile_raster_grid(subtiles[0], 60)
    write_beam(tmp_path / "r.nc", sg)
    assert source_product(tmp_path / "r.nc") is None  # no product named anywhere
    a = "S2B_MSIL1C_20200623T112119_N0500_R037_T30UUA_20230427T164710"
    b = "S2A_MSIL1C_20200618T112121_N0500_R037_T30UUA_20230502T101010"
    with netCDF4.Dataset(tmp_path / "r.nc", "a") as nc:
        nc.variables["metadata"].setncatts({
            "Processing_Graph:node.0:parameters:file": f"/work/inDir/eo_input/img2/{a}.zip",
            "history": f"compared with {b}",
        })  # fmt: skip
    assert source_product(tmp_path / "r.nc") == a  # the Read node wins over other mentions
    with netCDF4.Dataset(tmp_path / "r.nc", "a") as nc:
        nc.variables["metadata"].delncattr("Processing_Graph:node.0:parameters:file")
        nc.variables["metadata"].setncattr("source", a)
    assert source_product(tmp_path / "r.nc") is None  # two different products: ambiguous
