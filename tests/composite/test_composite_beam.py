"""Composites of inputs written by the project's SNAP NetCDF4-BEAM writer (as the emulator and the
native C2RCC write them), checked against a numpy reference."""

from __future__ import annotations

import netCDF4
import numpy as np
import xarray as xr
from c2rcc_testdata import GRID, product_name

from seasonal_c2rcc.beam_netcdf import BeamGrid, read_beam_grid, write_beam_netcdf
from seasonal_c2rcc.composite import RRS_BANDS, build_composite
from seasonal_c2rcc.flags import FLAG_MASKS
from seasonal_c2rcc.masking import MaskConfig


def test_build_composite__from_beam_netcdf_products(tmp_path):
    rng = np.random.default_rng(7)
    bg = BeamGrid(GRID.epsg, GRID.x0, GRID.y0, GRID.res, GRID.res, GRID.width, GRID.height)
    shape = (GRID.height, GRID.width)
    n = 6
    chl = rng.lognormal(0.5, 0.7, size=(n, *shape)).astype(np.float32)
    flags = np.full((n, *shape), FLAG_MASKS["Valid_PE"], np.uint32)
    flags[rng.random(flags.shape) < 0.2] = 0
    flags[rng.random(flags.shape) < 0.1] |= np.uint32(FLAG_MASKS["Rtosa_OOR"])
    flags[rng.random(flags.shape) < 0.1] |= np.uint32(FLAG_MASKS["Bpart_at_max"])
    valid = (flags & np.uint32(FLAG_MASKS["Valid_PE"])) != 0
    chl = np.where(valid, chl, 0).astype(np.float32)  # SNAP: 0 where not processed
    paths = []
    for i in range(n):
        data = {
            "conc_chl": chl[i],
            "conc_tsm": 3 * chl[i],
            "kd489": 0.2 * chl[i],
            "c2rcc_flags": flags[i],
        }
        data.update({f"rrs_{b}": chl[i] * 1e-3 for b in RRS_BANDS})
        ds = xr.Dataset({k: (("y", "x"), v) for k, v in data.items()})
        name = product_name(f"202008{10 + 2 * i:02d}")
        paths.append(write_beam_netcdf(tmp_path / f"{name}.nc", ds, grid=bg, product_name=name))
    assert read_beam_grid(paths[0]).width == GRID.width
    out = tmp_path / "c.nc"
    build_composite(paths, out, grid=GRID, mask=MaskConfig(min_valid_obs=2))
    ok = valid & ((flags & np.uint32(MaskConfig().exclude_mask)) == 0)
    ref_stack = np.where(ok, chl, np.nan)
    n_valid = ok.sum(axis=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = np.nanpercentile(ref_stack.astype(np.float64), [10, 50, 90], axis=0)
    ref[:, n_valid < 2] = np.nan
    with netCDF4.Dataset(out) as ds:
        np.testing.assert_array_equal(ds["conc_chl_count"][:], n_valid)
        for i, stat in enumerate(("p10", "median", "p90")):
            got = ds[f"conc_chl_{stat}"][:].filled(np.nan)
            np.testing.assert_allclose(got, ref[i], rtol=2e-6, equal_nan=True)
            np.testing.assert_allclose(
                ds[f"conc_tsm_{stat}"][:].filled(np.nan), 3 * ref[i], rtol=2e-6, equal_nan=True
            )
