"""Composite of emulator outputs (clouds, land, swath edges, two baselines of one datatake)
against a numpy reference read back independently with xarray."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import netCDF4
import numpy as np
import xarray as xr

from seasonal_c2rcc.beam_netcdf import BeamGrid, write_beam_netcdf
from seasonal_c2rcc.composite import build_composite, parse_product_id
from seasonal_c2rcc.emulator.catalogue import products_for_tile
from seasonal_c2rcc.emulator.products import C2rccParams, c2rcc_fields
from seasonal_c2rcc.grid import load_subtiles, subtile_raster_grid
from seasonal_c2rcc.masking import MaskConfig, valid_mask


def test_build_composite__emulator_products_with_duplicate_baselines(tmp_path, request):
    root = request.config.rootpath
    sub = load_subtiles(root / "config/subtiles/demo_30UUA.json", "EPSG:32630")[0]
    grid = subtile_raster_grid(sub, 60)
    bg = BeamGrid(grid.epsg, grid.x0, grid.y0, grid.res, grid.res, grid.width, grid.height)
    products = products_for_tile(
        "30UUA", datetime(2019, 6, 15, tzinfo=UTC), datetime(2019, 7, 10, tzinfo=UTC)
    )
    params = C2rccParams(
        output_as_rrs=True, output_rtoa=False, output_rhown=False, output_uncertainties=False
    )
    paths = []
    for p in products:
        fields = c2rcc_fields(p, grid.x, grid.y, params)
        ds = xr.Dataset({k: (("y", "x"), v) for k, v in fields.items()})
        name = p.id.removesuffix(".SAFE")
        paths.append(write_beam_netcdf(tmp_path / f"{name}.nc", ds, grid=bg, product_name=name))
    ids = [parse_product_id(x) for x in paths]
    keys = [(i.platform, i.relative_orbit, i.sensing.date()) for i in ids]
    assert len(set(keys)) < len(keys), "the period must hold a reprocessed duplicate"
    mask = MaskConfig(min_valid_obs=2)
    out = tmp_path / "c.nc"
    res = build_composite(paths, out, grid=grid, mask=mask)
    assert res.n_acquisitions == len(set(keys)) and res.n_products == len(paths)

    # reference: per acquisition the newest baseline (N0500 here: both share clouds and water)
    best: dict[tuple, tuple[int, object]] = {}
    for pid, path in zip(ids, paths, strict=True):
        k = (pid.platform, pid.relative_orbit, pid.sensing.date())
        if k not in best or pid.baseline > best[k][0]:
            best[k] = (pid.baseline, path)
    stacks: dict[str, list[np.ndarray]] = {"conc_chl": [], "rrs_B2": []}
    for _, path in best.values():
        with xr.open_dataset(path, mask_and_scale=False) as d:
            ok = valid_mask(d["c2rcc_flags"].values, mask)
            for v in stacks:
                vals = d[v].values.astype(np.float32)
                stacks[v].append(np.where(ok & (vals != 0), vals, np.nan))
    with netCDF4.Dataset(out) as nc:
        for v, layers in stacks.items():
            stack = np.stack(layers)
            n = np.count_nonzero(~np.isnan(stack), axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ref = np.nanpercentile(stack.astype(np.float64), [10, 50, 90], axis=0)
            ref[:, n < 2] = np.nan
            np.testing.assert_array_equal(nc[f"{v}_count"][:], n)
            for i, stat in enumerate(("p10", "median", "p90")):
                np.testing.assert_allclose(
                    nc[f"{v}_{stat}"][:].filled(np.nan), ref[i], rtol=2e-6, equal_nan=True
                )
        # the emulated land and clouds leave some pixels empty, the open sea has data
        med = nc["conc_chl_median"][:].filled(np.nan)
        assert 0.2 < np.isfinite(med).mean() <= 1.0
