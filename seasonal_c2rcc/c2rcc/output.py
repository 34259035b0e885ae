"""Write native C2RCC results as SNAP-shaped NetCDF4-BEAM files (via :mod:`seasonal_c2rcc.beam_netcdf`).

The pipeline reads SNAP's NetCDF4-BEAM outputs; writing the port's results through the same writer
keeps one layout downstream (flags as uint32 with SNAP's flag coding, ``valid_pixel_expression``,
``crs`` with the exact UTM grid).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import xarray as xr

from seasonal_c2rcc.beam_netcdf import BeamGrid, write_beam_netcdf
from seasonal_c2rcc.c2rcc.dimap import C2rccInputs
from seasonal_c2rcc.errors import ConfigError


def beam_grid(inputs: C2rccInputs) -> BeamGrid:
    """The north-up UTM grid of ``inputs`` (from a BEAM-DIMAP product) as a :class:`BeamGrid`."""
    from pyproj import CRS

    g = inputs.grid
    if g.m10 != 0.0 or g.m01 != 0.0 or g.m00 <= 0 or g.m11 >= 0:
        raise ConfigError("only north-up grids without rotation can be written as NetCDF4-BEAM")
    epsg = CRS.from_wkt(inputs.crs_wkt).to_epsg() if inputs.crs_wkt else None
    if epsg is None:
        raise ConfigError("the product's CRS has no EPSG code")
    return BeamGrid(int(epsg), g.m02, g.m12, g.m00, -g.m11, g.width, g.height)


def write_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    grid: BeamGrid,
    metadata: Mapping[str, str] | None = None,
    **writer_kwargs: Any,
) -> Path:
    """Write the result of :func:`~seasonal_c2rcc.c2rcc.run_c2rcc_msi` to ``path`` (NetCDF4-BEAM).

    ``grid`` places the raster (see :func:`beam_grid`); the parameters and used nets recorded in
    ``ds.attrs`` go into the BEAM ``metadata`` variable next to ``metadata``.
    """
    meta = {k: str(v) for k, v in ds.attrs.items() if k != "product_type"}
    meta.update(metadata or {})
    plain = ds.drop_vars([c for c in ("lat", "lon") if c in ds.coords])
    plain.attrs = {"product_type": ds.attrs.get("product_type", "C2RCC_S2-MSI")}
    return write_beam_netcdf(path, plain, grid=grid, metadata=meta, **writer_kwargs)


def run_on_dimap(
    product: str | os.PathLike[str],
    params: Any = None,
    out: str | os.PathLike[str] | None = None,
    reference_band: str = "B2",
    nets_dir: str | os.PathLike[str] | None = None,
    altitude: Any = None,
    **run_kwargs: Any,
) -> xr.Dataset:
    """Read a BEAM-DIMAP S2 L1C product, run C2RCC-MSI on the ``reference_band`` grid, optionally
    write NetCDF4-BEAM to ``out``; the local equivalent of ``Read → Resample → c2rcc.msi → Write``.
    """
    from seasonal_c2rcc.c2rcc.dimap import open_dimap
    from seasonal_c2rcc.c2rcc.msi import run_c2rcc_msi

    inputs = open_dimap(product).c2rcc_inputs(reference_band=reference_band)
    ds = run_c2rcc_msi(
        inputs.toa,
        inputs.angles,
        inputs.lat,
        inputs.lon,
        altitude=altitude,
        params=params,
        nets_dir=nets_dir,
        ecmwf=inputs.ecmwf,
        **run_kwargs,
    )
    if out is not None:
        write_netcdf(ds, out, beam_grid(inputs), metadata={"source_product": str(product)})
    return ds
