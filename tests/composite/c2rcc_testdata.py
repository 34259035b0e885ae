"""Test fixture (not the emulator): tiny SNAP-shaped C2RCC NetCDF files with known values.

Files mimic SNAP's NetCDF4-BEAM C2RCC output clipped to a sub-tile grid: dims (y, x), 2-D lat/lon,
``rrs_*`` (or ``rhow_*``), ``conc_chl``, ``conc_tsm``, ``kd489``, ``kdmin``, ``iop_apig``,
``c2rcc_flags`` (uint32, Valid_PE = bit 31) and a ``crs`` variable; invalid pixels hold 0.
"""

from __future__ import annotations

from pathlib import Path

import netCDF4
import numpy as np
from pyproj import CRS, Transformer

from seasonal_c2rcc.composite import RRS_BANDS
from seasonal_c2rcc.flags import FLAG_MASKS
from seasonal_c2rcc.grid import RasterGrid

VALID = np.uint32(FLAG_MASKS["Valid_PE"])
CLOUD = np.uint32(FLAG_MASKS["Cloud_risk"])

#: A 30UUA-aligned grid: ULX 299960 + 2 km, 60 m pixels, 12 x 10.
GRID = RasterGrid(epsg=32630, x0=301960.0, y0=5600040.0 - 3000.0, res=60.0, width=12, height=10)


def product_name(
    day: str,
    *,
    platform: str = "S2B",
    orbit: int = 37,
    baseline: str = "0500",
    generation: str = "20230427T164710",
    time: str = "112119",
) -> str:
    """A product id like ``S2B_MSIL1C_20200623T112119_N0500_R037_T30UUA_20230427T164710``."""
    return f"{platform}_MSIL1C_{day}T{time}_N{baseline}_R{orbit:03d}_T30UUA_{generation}"


def write_product(
    path: Path,
    chl: np.ndarray,
    flags: np.ndarray,
    *,
    grid: RasterGrid = GRID,
    rhow: bool = False,
    tsm: np.ndarray | None = None,
) -> Path:
    """Write one product. ``chl`` gives conc_chl; other variables are fixed functions of it
    (tsm = 2·chl unless given, kd489 = 0.1·chl, rrs_Bk = chl·1e-3·(k+1)), and every variable is
    set to 0 where Valid_PE is not set, as SNAP does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = np.asarray(flags, np.uint32)
    valid = (flags & VALID) != 0
    chl = np.where(valid, chl, 0).astype(np.float32)
    tsm = np.where(valid, 2 * chl if tsm is None else tsm, 0).astype(np.float32)
    xx, yy = np.meshgrid(grid.x, grid.y)
    lon, lat = Transformer.from_crs(grid.epsg, 4326, always_xy=True).transform(xx, yy)
    with netCDF4.Dataset(path, "w") as ds:
        ds.createDimension("y", grid.height)
        ds.createDimension("x", grid.width)
        ds.Conventions = "CF-1.4"
        ds.product_type = "C2RCC_S2-MSI"
        ds.metadata_profile = "beam"
        crs = ds.createVariable("crs", "i4")
        crs.wkt = CRS.from_epsg(grid.epsg).to_wkt()
        crs.i2m = f"{grid.res},0.0,0.0,{-grid.res},{grid.x0},{grid.y0}"
        for name, data in (("lat", lat), ("lon", lon)):
            v = ds.createVariable(name, "f4", ("y", "x"))
            v[:] = data

        def band(name: str, data: np.ndarray, units: str) -> None:
            v = ds.createVariable(name, "f4", ("y", "x"))
            v[:] = np.where(valid, data, 0).astype(np.float32)
            v.units = units
            v.valid_pixel_expression = "c2rcc_flags.Valid_PE"

        band("conc_chl", chl, "mg m^-3")
        band("conc_tsm", tsm, "g m^-3")
        band("kd489", 0.1 * chl, "m^-1")
        band("kdmin", 0.05 * chl, "m^-1")
        band("iop_apig", chl / 21.0, "m^-1")
        for k, b in enumerate(RRS_BANDS):
            rrs = chl * 1e-3 * (k + 1)
            if rhow:
                band(f"rhow_{b}", rrs * np.pi, "dl")
            else:
                band(f"rrs_{b}", rrs, "sr^-1")
        f = ds.createVariable("c2rcc_flags", "u4", ("y", "x"))
        f[:] = flags
        f.flag_masks = np.array([1 << 3, 1 << 31], dtype=np.uint32)
        f.flag_meanings = "Cloud_risk Valid_PE"
    return path
