"""SNAP's real reference product S2Ref_Product.zip, read natively and processed at its pin pixel.

The product is a multi-size BEAM-DIMAP subset (10/20/60 m bands, 5 km angle rasters, 3x3 ECMWF
tie-point grids). Resampled to the 10 m grid of B2 by nearest neighbour, its pin pixel (x 29, y 16)
is the input of SNAP's MSI operator tests, so the s3tbx rows (altitude 0 = the ``elevation``
fallback without DEM) must come out of the product's own bands, angles and tie-point grids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from c2rcc_native_testdata import PIN_ANGLES, PIN_ECMWF, PIN_TOA

from seasonal_c2rcc.c2rcc import NN_BANDS, SOURCE_BANDS, C2rccMsiParams, NetSet, run_c2rcc_msi
from seasonal_c2rcc.c2rcc.dimap import C2rccInputs, open_dimap

PIN_X, PIN_Y = 29, 16
#: pins.csv of the product: geoPos of pin_1
PIN_LON, PIN_LAT = -39.43249835331773, -4.089063548391289


@pytest.fixture(scope="module")
def inputs(snap_test_product: Path) -> C2rccInputs:
    return open_dimap(snap_test_product).c2rcc_inputs(reference_band="B2")


def test_product_structure(snap_test_product: Path) -> None:
    prod = open_dimap(snap_test_product)
    assert (prod.width, prod.height) == (56, 32)
    assert prod.bands["B2"].grid.width == 56 and prod.bands["B5"].grid.width == 28
    assert prod.bands["B1"].grid.width == 10 and prod.bands["sun_zenith"].grid.width == 1
    assert set(prod.tie_point_grids) == {"tco3", "tcwv", "msl"}
    # the product has SNAP's tco3/tcwv name swap (SIITBX-497); the description decides
    assert prod.ozone_grid_name() == "tcwv"
    raw_b8 = prod.read_band("B8")
    assert raw_b8.dtype == np.float32 and raw_b8.shape == (32, 56)


def test_pin_pixel_equals_snap_test_inputs(inputs: C2rccInputs) -> None:
    """The product's pin is MsiTestProduct's pixel: reflectances and sun angles bit-identical."""
    for band in SOURCE_BANDS:
        assert inputs.toa[band][PIN_Y, PIN_X] == np.float32(PIN_TOA[band]), band
    assert inputs.angles["sun_zenith"][PIN_Y, PIN_X] == np.float32(PIN_ANGLES["sun_zenith"])
    assert inputs.angles["sun_azimuth"][PIN_Y, PIN_X] == np.float32(PIN_ANGLES["sun_azimuth"])
    # the product stores more digits of the view angles than MsiTestProduct typed in
    assert (
        abs(inputs.angles["view_zenith_mean"][PIN_Y, PIN_X] - PIN_ANGLES["view_zenith_mean"]) < 1e-5
    )
    assert (
        abs(inputs.angles["view_azimuth_mean"][PIN_Y, PIN_X] - PIN_ANGLES["view_azimuth_mean"])
        < 1e-4
    )
    # bilinear tie-point interpolation gives MsiTestProduct's ECMWF values exactly (float32)
    assert inputs.ecmwf["tco3"][PIN_Y, PIN_X] == np.float32(PIN_ECMWF["tco3"])
    assert inputs.ecmwf["msl"][PIN_Y, PIN_X] == np.float32(PIN_ECMWF["msl"])
    assert inputs.lat is not None and inputs.lon is not None
    assert abs(inputs.lat[PIN_Y, PIN_X] - PIN_LAT) < 1e-9
    assert abs(inputs.lon[PIN_Y, PIN_X] - PIN_LON) < 1e-9


@pytest.mark.parametrize(
    ("ecmwf", "chl", "tsm", "apig", "bwit", "rhow"),
    [
        (False, 14.441857, 5.062996, 0.6976819, 4.0867243,
         [0.003311, 0.004983, 0.010308, 0.007630, 0.006501, 0.002323, 0.002366, 0.000986]),
        (True, 14.657781, 4.911448, 0.7077091, 4.0339804,
         [0.003032, 0.004516, 0.009282, 0.007060, 0.006061, 0.002194, 0.002237, 0.000937]),
    ],
    ids=["defaults", "ecmwf"],
)  # fmt: skip
def test_real_product_reproduces_snap_values_at_pin(
    inputs: C2rccInputs,
    std_nets: NetSet,
    ecmwf: bool,
    chl: float,
    tsm: float,
    apig: float,
    bwit: float,
    rhow: list[float],
) -> None:
    ds = run_c2rcc_msi(
        inputs.toa,
        inputs.angles,
        inputs.lat,
        inputs.lon,
        params=C2rccMsiParams(useEcmwfAuxData=ecmwf),
        nets=std_nets,
        ecmwf=inputs.ecmwf,
    )
    expected = {"conc_chl": chl, "conc_tsm": tsm, "iop_apig": apig, "iop_bwit": bwit}
    expected |= {f"rhow_{b}": v for b, v in zip(NN_BANDS, rhow, strict=True)}
    for name, value in expected.items():
        got = float(ds[name].values[PIN_Y, PIN_X])
        assert abs(float(np.float32(value)) - got) <= 1e-6, (name, got, value)
    assert ds["lat"].shape == (32, 56)

    # the whole subset: the default expression B8 > 0 && B8 < 0.1 decides validity pixel by pixel
    flags = ds["c2rcc_flags"].values
    valid = (flags >> 31).astype(bool)
    b8 = inputs.toa["B8"].astype(np.float64)
    np.testing.assert_array_equal(valid, (b8 > 0) & (b8 < 0.1))
    assert 0 < valid.sum() < valid.size  # the subset has land (bright B8) and water
    # invalid pixels hold 0 in every band but rtoa_* (copied input) and have no flag set
    assert (flags[~valid] == 0).all()
    for name, var in ds.data_vars.items():
        if name.startswith("rtoa_") or name == "c2rcc_flags":
            continue
        assert (var.values[~valid] == 0).all(), name
        assert np.isfinite(var.values[valid]).all(), name
    np.testing.assert_array_equal(ds["rtoa_B8"].values, inputs.toa["B8"])


def test_result_written_as_netcdf4_beam(
    inputs: C2rccInputs, std_nets: NetSet, tmp_path: Path
) -> None:
    """Through the project's NetCDF4-BEAM writer: flags stay uint32, the grid is the product's."""
    import netCDF4

    from seasonal_c2rcc.beam_netcdf import read_beam_grid
    from seasonal_c2rcc.c2rcc.output import beam_grid, write_netcdf

    ds = run_c2rcc_msi(inputs.toa, inputs.angles, inputs.lat, inputs.lon, nets=std_nets)
    grid = beam_grid(inputs)
    assert (grid.epsg, grid.ulx, grid.uly, grid.res_x) == (32724, 451700.0, 9548180.0, 10.0)
    path = write_netcdf(ds, tmp_path / "c2rcc.nc", grid)
    back = read_beam_grid(path)
    assert (back.width, back.height, back.ulx, back.uly) == (56, 32, 451700.0, 9548180.0)
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_mask(False)
        flags = nc["c2rcc_flags"][:]
        assert flags.dtype == np.uint32 and int(flags[PIN_Y, PIN_X]) == 0x80000000
        np.testing.assert_array_equal(flags, ds["c2rcc_flags"].values)
        np.testing.assert_array_equal(nc["conc_chl"][:], ds["conc_chl"].values)
        assert abs(float(nc["lat"][PIN_Y, PIN_X]) - PIN_LAT) < 1e-5
        assert "C2RCC-Nets" in nc["metadata"].getncattr("netSet")


def test_run_on_dimap_is_read_resample_c2rcc_write(
    snap_test_product: Path, nets_dir: Path, tmp_path: Path
) -> None:
    import netCDF4

    from seasonal_c2rcc.c2rcc import run_on_dimap

    params = C2rccMsiParams(useEcmwfAuxData=True, outputAsRrs=True)
    ds = run_on_dimap(snap_test_product, params, out=tmp_path / "o.nc", nets_dir=nets_dir)
    assert abs(float(ds["conc_chl"][PIN_Y, PIN_X]) - float(np.float32(14.657781))) <= 1e-6
    with netCDF4.Dataset(tmp_path / "o.nc") as nc:
        assert "rrs_B4" in nc.variables and "rhow_B4" not in nc.variables
        assert nc["metadata"].getncattr("source_product").endswith("S2Ref_Product.zip")
