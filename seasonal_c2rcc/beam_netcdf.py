"""Write (and read back the grid of) SNAP-shaped NetCDF4-BEAM products.

SNAP's ``NetCDF4-BEAM`` writer produces one ``.nc`` file: CF-1.4 conventions plus BEAM metadata,
dims ``y, x`` (tie-point grids on ``tp_y, tp_x``), 2-D ``lat``/``lon``, one variable per band, the
flag band with ``flag_masks``/``flag_meanings``, one scalar ``<flag>_mask`` variable per mask
(``expression`` attribute) and a ``crs`` variable. Both the WEkEO emulator and the native C2RCC
port write their outputs through :func:`write_beam_netcdf` so that downstream code sees one layout.

The ``crs`` variable carries the UTM grid exactly:

* ``wkt`` / ``spatial_ref``: the CRS as WKT; ``epsg_code``: ``"EPSG:32630"``;
* ``i2m``: SNAP's image-to-model transform ``"sx,0.0,0.0,-sy,ulx,uly"`` (pixel corner based);
* ``GeoTransform``: the GDAL form ``"ulx sx 0 uly 0 -sy"`` (read by rioxarray via ``grid_mapping``);
* the CF grid-mapping attributes of the CRS (``grid_mapping_name`` ...).

:func:`read_beam_grid` recovers ``(epsg, ulx, uly, res_x, res_y, width, height)`` from a file.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .flags import C2RCC_FLAGS

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
FLAG_BAND = "c2rcc_flags"
_WAVELENGTHS = {
    "B1": 443.0, "B2": 490.0, "B3": 560.0, "B4": 665.0, "B5": 705.0, "B6": 740.0, "B7": 783.0,
    "B8": 842.0, "B8A": 865.0, "B9": 945.0, "B10": 1375.0, "B11": 1610.0, "B12": 2190.0,
}  # fmt: skip
# Colours of the flag masks (RGBA); SNAP picks its own, any stable value will do.
_MASK_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255),
                 (0, 255, 255), (128, 0, 0), (0, 128, 0), (0, 0, 128), (128, 128, 0)]  # fmt: skip


#: (name or prefix ending in "_", attributes) in the style of SNAP's C2RCC band descriptions.
BAND_INFO: tuple[tuple[str, dict[str, Any]], ...] = (
    ("rtoa_", {"long_name": "Top-of-atmosphere reflectance", "units": "dl"}),
    ("rrs_", {"long_name": "Atmospherically corrected angular dependent remote sensing "
              "reflectances", "units": "sr^-1"}),
    ("rhow_", {"long_name": "Atmospherically corrected angular dependent water leaving "
               "reflectances", "units": "dl"}),
    ("rhown_", {"long_name": "Normalized water leaving reflectance", "units": "dl"}),
    ("iop_apig", {"long_name": "Absorption coefficient of phytoplankton pigments at 443 nm",
                  "units": "m^-1"}),
    ("iop_adet", {"long_name": "Absorption coefficient of detritus at 443 nm", "units": "m^-1"}),
    ("iop_agelb", {"long_name": "Absorption coefficient of gelbstoff at 443 nm",
                   "units": "m^-1"}),
    ("iop_bpart", {"long_name": "Scattering coefficient of marine paticles at 443 nm",
                   "units": "m^-1"}),
    ("iop_bwit", {"long_name": "Scattering coefficient of white particles at 443 nm",
                  "units": "m^-1"}),
    ("iop_adg", {"long_name": "Detritus + gelbstoff absorption at 443 nm", "units": "m^-1"}),
    ("iop_atot", {"long_name": "phytoplankton + detritus + gelbstoff absorption at 443 nm",
                  "units": "m^-1"}),
    ("iop_btot", {"long_name": "total particle scattering at 443 nm", "units": "m^-1"}),
    ("kd489", {"long_name": "Irradiance attenuation coefficient at 489 nm", "units": "m^-1"}),
    ("kdmin", {"long_name": "Mean irradiance attenuation coefficient at the three bands with "
               "minimum kd", "units": "m^-1"}),
    ("kd_z90max", {"long_name": "Depth of the water column from which 90% of the water leaving "
                   "irradiance comes from", "units": "m"}),
    ("conc_tsm", {"long_name": "Total suspended matter dry weight concentration",
                  "units": "g m^-3"}),
    ("conc_chl", {"long_name": "Chlorophyll concentration", "units": "mg m^-3"}),
    ("unc_chl", {"long_name": "Uncertainty of the chlorophyll concentration",
                 "units": "mg m^-3"}),
    ("unc_tsm", {"long_name": "Uncertainty of the total suspended matter (TSM) dry weight "
                 "concentration", "units": "g m^-3"}),
    ("unc_kd_z90max", {"long_name": "Uncertainty of the depth of the water column", "units": "m"}),
    ("unc_", {"long_name": "Uncertainty", "units": "m^-1"}),
    ("oos_rtosa", {"long_name": "Gain in log of rtosa_aann", "units": "dl"}),
    ("oos_rhow", {"long_name": "Ratio of rhow input and iop_rw output", "units": "dl"}),
)  # fmt: skip


def snap_datetime(dt: datetime) -> str:
    """SNAP's ProductData.UTC text form, e.g. ``23-JUN-2020 11:21:19.024000``."""
    return f"{dt.day:02d}-{_MONTHS[dt.month - 1]}-{dt.year} {dt:%H:%M:%S}.{dt.microsecond:06d}"


def parse_snap_datetime(text: str) -> datetime:
    """Inverse of :func:`snap_datetime` (naive datetime, UTC)."""
    day, mon, rest = text.split("-", 2)
    return datetime.strptime(
        f"{day}-{_MONTHS.index(mon.upper()) + 1:02d}-{rest}", "%d-%m-%Y %H:%M:%S.%f"
    )


def band_attributes(name: str) -> dict[str, Any]:
    """SNAP's unit / description for a C2RCC band name (empty dict for unknown names)."""
    for prefix, attrs in BAND_INFO:
        if name == prefix or (prefix.endswith("_") and name.startswith(prefix)):
            out = dict(attrs)
            if prefix.endswith("_"):
                band = name[len(prefix) :]
                out["long_name"] = f"{attrs['long_name']} at {band}"
                if band in _WAVELENGTHS:
                    out["radiation_wavelength"] = _WAVELENGTHS[band]
                    out["radiation_wavelength_unit"] = "nm"
            return out
    return {}


@dataclass(frozen=True)
class BeamGrid:
    """The UTM grid of a NetCDF4-BEAM product (upper-left corner, pixel sizes, shape)."""

    epsg: int
    ulx: float
    uly: float
    res_x: float
    res_y: float
    width: int
    height: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the pixel edges."""
        return (
            self.ulx,
            self.uly - self.height * self.res_y,
            self.ulx + self.width * self.res_x,
            self.uly,
        )

    def x_centres(self) -> np.ndarray:
        """Pixel-centre eastings, west to east."""
        return self.ulx + self.res_x * (np.arange(self.width) + 0.5)

    def y_centres(self) -> np.ndarray:
        """Pixel-centre northings, north to south."""
        return self.uly - self.res_y * (np.arange(self.height) + 0.5)


def _grid_from_dataset(
    ds: xr.Dataset, epsg: int | None, grid: BeamGrid | None
) -> BeamGrid:
    if grid is not None:
        return grid
    if epsg is None:
        epsg = ds.attrs.get("epsg")
    if epsg is None:
        raise ValueError("write_beam_netcdf needs epsg= (or ds.attrs['epsg']) or grid=")
    if "x" not in ds.coords or "y" not in ds.coords:
        raise ValueError("write_beam_netcdf needs 1-D x/y pixel-centre coordinates or grid=")
    xs = np.asarray(ds["x"].values, dtype=np.float64)
    ys = np.asarray(ds["y"].values, dtype=np.float64)
    if xs.size < 2 or ys.size < 2:
        raise ValueError("x/y need at least 2 values to infer the pixel size; pass grid=")
    rx = float(xs[1] - xs[0])
    ry = float(ys[0] - ys[1])
    if rx <= 0 or ry <= 0:
        raise ValueError("x must increase and y decrease (north-up grid)")
    return BeamGrid(int(epsg), float(xs[0] - rx / 2), float(ys[0] + ry / 2), rx, ry,
                    int(xs.size), int(ys.size))


def _hdf5_lock() -> Any:
    """The process-wide HDF5 lock, shared with xarray's netCDF4 backend.

    netCDF-C/HDF5 is not thread-safe and netCDF4-python releases the GIL: concurrent writes (the
    emulator writes results from several threads) crashed with a segfault. Taking xarray's own
    ``HDF5_LOCK`` also serialises us with xarray reads in other threads of the same process.
    """
    try:
        from xarray.backends.locks import HDF5_LOCK

        return HDF5_LOCK
    except ImportError:  # pragma: no cover - xarray moved it
        return _FALLBACK_LOCK


_FALLBACK_LOCK = threading.Lock()

#: BlockFn(r0, r1) -> {band name: array of shape (r1 - r0, width)} for grid rows r0..r1-1.
BlockFn = Callable[[int, int], Mapping[str, np.ndarray]]


def write_beam_netcdf(
    path: str | os.PathLike[str],
    ds: xr.Dataset,
    *,
    epsg: int | None = None,
    grid: BeamGrid | None = None,
    start_time: datetime | None = None,
    stop_time: datetime | None = None,
    product_name: str | None = None,
    product_type: str = "C2RCC_S2-MSI",
    metadata: Mapping[str, str] | None = None,
    tie_point_grids: Mapping[str, np.ndarray] | None = None,
    compress: bool = True,
) -> Path:
    """Write ``ds`` as a SNAP NetCDF4-BEAM product at ``path``, atomically (temp file + rename).

    ``ds`` holds 2-D ``(y, x)`` data variables named as SNAP bands (``rrs_B1``, ``conc_chl``,
    ``c2rcc_flags`` ...). The UTM grid comes from ``grid=`` or from 1-D ``x``/``y`` pixel-centre
    coordinates plus ``epsg=`` (or ``ds.attrs['epsg']``). ``lat``/``lon`` are computed from it.
    Variable attributes in ``ds`` override the SNAP defaults for that band. ``c2rcc_flags`` gets
    the flag coding of :data:`seasonal_c2rcc.flags.C2RCC_FLAGS` and one ``<flag>_mask`` variable
    per flag. ``tie_point_grids`` (2-D arrays) are written on ``tp_y, tp_x`` spanning the raster.
    ``metadata`` becomes attributes of the BEAM ``metadata`` variable. Global attributes of
    ``ds`` are copied. Thread-safe (see :func:`_hdf5_lock`). Returns the final path.
    """
    g = _grid_from_dataset(ds, epsg, grid)
    names = [str(n) for n in ds.data_vars if ds[n].dims == ("y", "x")]
    if not names:
        raise ValueError("the dataset has no (y, x) data variables to write")
    for n in names:
        if ds[n].shape != (g.height, g.width):
            raise ValueError(f"variable {n} has shape {ds[n].shape}, grid is {(g.height, g.width)}")

    # One read of a lazily opened dataset instead of one per block.
    loaded = ds[names].compute()

    def block(r0: int, r1: int) -> dict[str, np.ndarray]:
        return {n: np.asarray(loaded[n].values[r0:r1]) for n in names}

    return write_beam_netcdf_blocks(
        path, g, block,
        start_time=start_time, stop_time=stop_time, product_name=product_name,
        product_type=product_type, metadata=metadata, tie_point_grids=tie_point_grids,
        compress=compress,
        var_attrs={n: dict(ds[n].attrs) for n in names},
        global_attrs={str(k): v for k, v in ds.attrs.items() if k != "epsg"},
    )  # fmt: skip


def write_beam_netcdf_blocks(
    path: str | os.PathLike[str],
    grid: BeamGrid,
    block_fn: BlockFn,
    *,
    start_time: datetime | None = None,
    stop_time: datetime | None = None,
    product_name: str | None = None,
    product_type: str = "C2RCC_S2-MSI",
    metadata: Mapping[str, str] | None = None,
    tie_point_grids: Mapping[str, np.ndarray] | None = None,
    compress: bool = True,
    var_attrs: Mapping[str, Mapping[str, Any]] | None = None,
    global_attrs: Mapping[str, Any] | None = None,
    max_block_pixels: int = 262_144,
) -> Path:
    """Like :func:`write_beam_netcdf`, but bands come from ``block_fn(r0, r1)`` row block by row
    block, so memory stays bounded for large rasters.

    ``block_fn`` must return the same band names (in the file's order) and dtypes for every
    block; a band named ``c2rcc_flags`` is stored as uint32. Rows are requested in order, in
    blocks of about ``max_block_pixels`` pixels. Thread-safe: netCDF calls run under
    :func:`_hdf5_lock`, ``block_fn`` runs outside it. Atomic (temp file + rename).
    """
    return _write_blocks(
        Path(path), grid, block_fn, start_time, stop_time, product_name, product_type,
        metadata, tie_point_grids, compress, var_attrs or {}, global_attrs or {},
        max(1, max_block_pixels // max(grid.width, 1)),
    )  # fmt: skip


def _write_blocks(
    path: Path,
    g: BeamGrid,
    block_fn: BlockFn,
    start_time: datetime | None,
    stop_time: datetime | None,
    product_name: str | None,
    product_type: str,
    metadata: Mapping[str, str] | None,
    tie_point_grids: Mapping[str, np.ndarray] | None,
    compress: bool,
    var_attrs: Mapping[str, Mapping[str, Any]],
    global_attrs: Mapping[str, Any],
    rows: int,
) -> Path:
    import netCDF4
    from pyproj import CRS, Transformer

    # Every netCDF/HDF5 call runs under the process-wide lock, but block_fn runs outside it:
    # computing a block never stalls other threads' I/O, and a block_fn that reads NetCDF
    # through xarray (which takes the same lock) cannot deadlock.
    lock = _hdf5_lock()
    crs = CRS.from_epsg(g.epsg)
    xs, ys = g.x_centres(), g.y_centres()
    tr = Transformer.from_crs(crs, 4326, always_xy=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    nc: Any = None
    try:
        with lock:
            nc = netCDF4.Dataset(tmp, "w", format="NETCDF4")
            geo_vars = _write_header(nc, g, crs, path, start_time, stop_time, product_name,
                                     product_type, global_attrs, compress, rows)
        band_vars: dict[str, Any] = {}
        for r0 in range(0, g.height, rows):
            r1 = min(g.height, r0 + rows)
            xx, yy = np.meshgrid(xs, ys[r0:r1])
            lon, lat = tr.transform(xx, yy)
            block = {name: np.asarray(arr) for name, arr in block_fn(r0, r1).items()}
            for name, arr in block.items():
                if arr.shape != (r1 - r0, g.width):
                    raise ValueError(
                        f"band {name}: block shape {arr.shape}, expected {(r1 - r0, g.width)}"
                    )
            with lock:
                geo_vars["lat"][r0:r1, :] = np.asarray(lat, dtype=np.float32)
                geo_vars["lon"][r0:r1, :] = np.asarray(lon, dtype=np.float32)
                if not band_vars:
                    band_vars = _create_band_vars(nc, block, var_attrs, compress,
                                                  _chunks(g, rows))
                if list(block) != list(band_vars):
                    raise ValueError("block_fn returned different bands for different blocks")
                for name, arr in block.items():
                    var = band_vars[name]
                    var[r0:r1, :] = arr.astype(var.dtype, copy=False)
        with lock:
            _write_trailer(nc, g, FLAG_BAND in band_vars, tie_point_grids, metadata)
            nc.close()
            nc = None
        os.replace(tmp, path)
    finally:
        if nc is not None:
            with lock:
                nc.close()
        if tmp.exists():
            tmp.unlink()
    return path


def _write_header(
    nc: Any, g: BeamGrid, crs: Any, path: Path, start_time: datetime | None,
    stop_time: datetime | None, product_name: str | None, product_type: str,
    global_attrs: Mapping[str, Any], compress: bool, rows: int,
) -> dict[str, Any]:
    """Global attributes, dimensions, ``crs`` and the (empty) ``lat``/``lon`` variables."""
    nc.setncattr("Conventions", "CF-1.4")
    nc.setncattr("title", product_name or path.stem)
    nc.setncattr("product_type", product_type)
    nc.setncattr("metadata_profile", "beam")
    nc.setncattr("metadata_version", "0.5")
    nc.setncattr("auto_grouping", "rtoa:rrs:rhow:rhown:iop:kd:unc:conc:oos")
    if start_time is not None:
        nc.setncattr("start_date", snap_datetime(start_time))
    if stop_time is not None:
        nc.setncattr("stop_date", snap_datetime(stop_time))
    for key, value in global_attrs.items():
        nc.setncattr(key, value)
    nc.createDimension("y", g.height)
    nc.createDimension("x", g.width)

    v = nc.createVariable("crs", "i4")
    for key, value in crs.to_cf().items():
        if key != "crs_wkt":
            v.setncattr(key, value)
    wkt = crs.to_wkt()
    v.setncattr("wkt", wkt)
    v.setncattr("crs_wkt", wkt)
    v.setncattr("spatial_ref", wkt)
    v.setncattr("epsg_code", f"EPSG:{g.epsg}")
    sx, sy, ulx, uly = float(g.res_x), float(g.res_y), float(g.ulx), float(g.uly)
    v.setncattr("i2m", f"{sx!r},0.0,0.0,{-sy!r},{ulx!r},{uly!r}")
    v.setncattr("GeoTransform", f"{ulx!r} {sx!r} 0.0 {uly!r} 0.0 {-sy!r}")

    geo_vars = {}
    for name, std, units in (
        ("lat", "latitude", "degrees_north"),
        ("lon", "longitude", "degrees_east"),
    ):
        var = nc.createVariable(name, "f4", ("y", "x"), zlib=compress, complevel=1,
                                chunksizes=_chunks(g, rows))
        _small_cache(var)
        var.setncattr("long_name", std)
        var.setncattr("standard_name", std)
        var.setncattr("units", units)
        geo_vars[name] = var
    return geo_vars


def _write_trailer(
    nc: Any, g: BeamGrid, has_flags: bool, tie_point_grids: Mapping[str, np.ndarray] | None,
    metadata: Mapping[str, str] | None,
) -> None:
    """Mask variables, tie-point grids and the BEAM ``metadata`` variable."""
    if has_flags:
        for i, (flag, _bit, desc) in enumerate(C2RCC_FLAGS):
            m = nc.createVariable(f"{flag}_mask", "i1")
            m.setncattr("expression", f"{FLAG_BAND}.{flag}")
            m.setncattr("title", flag)
            m.setncattr("description", desc)
            m.setncattr("color", np.array((*_MASK_COLOURS[i % 10], 255), dtype=np.int32))
            m.setncattr("transparency", 0.5)
    if tie_point_grids:
        first = next(iter(tie_point_grids.values()))
        ty, tx = np.shape(first)
        nc.createDimension("tp_y", ty)
        nc.createDimension("tp_x", tx)
        for name, tp in tie_point_grids.items():
            tp = np.asarray(tp, dtype=np.float32)
            if tp.shape != (ty, tx):
                raise ValueError("all tie-point grids must have the same shape")
            var = nc.createVariable(name, "f4", ("tp_y", "tp_x"))
            var.setncattr("offset_x", 0.5)
            var.setncattr("offset_y", 0.5)
            var.setncattr("subsampling_x", float(max(g.width - 1, 1)) / max(tx - 1, 1))
            var.setncattr("subsampling_y", float(max(g.height - 1, 1)) / max(ty - 1, 1))
            var[:] = tp
    meta = nc.createVariable("metadata", "i4")
    for key, value in (metadata or {}).items():
        meta.setncattr(key, str(value))


def _chunks(g: BeamGrid, rows: int) -> tuple[int, int]:
    """HDF5 chunk shape: whole rows, as many as one written block (each block completes its
    chunks, so they can leave the chunk cache at once)."""
    return (max(1, min(g.height, rows)), g.width)


def _small_cache(var: Any) -> None:
    """Keep about two chunks per variable in HDF5's chunk cache.

    The default cache kept every written chunk of every band until the file was closed, so
    memory grew with the raster (about 0.2 GB for 1000 x 1000 px x 41 bands).
    """
    chunk = var.chunking()
    if isinstance(chunk, list):
        nbytes = int(np.prod(chunk)) * var.dtype.itemsize
        var.set_var_chunk_cache(size=2 * nbytes + 1024, nelems=7, preemption=1.0)


def _create_band_vars(
    nc: Any, block: Mapping[str, np.ndarray], var_attrs: Mapping[str, Mapping[str, Any]],
    compress: bool, chunks: tuple[int, int],
) -> dict[str, Any]:
    """Create the band variables (dtype from the first block) with SNAP's attributes."""
    if not block:
        raise ValueError("block_fn returned no bands")
    has_flags = FLAG_BAND in block
    out = {}
    for name, arr in block.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"band {name}: unsupported dtype {arr.dtype}")
        dtype = "u4" if name == FLAG_BAND else arr.dtype.str.lstrip("<>=|")
        var = nc.createVariable(name, dtype, ("y", "x"), zlib=compress, complevel=1,
                                fill_value=False, chunksizes=chunks)
        _small_cache(var)
        attrs = band_attributes(name)
        if name == FLAG_BAND:
            attrs.update(_flag_attributes())
        elif has_flags:
            attrs.setdefault("valid_pixel_expression", f"{FLAG_BAND}.Valid_PE")
        attrs.update(var_attrs.get(name, {}))
        attrs["grid_mapping"] = "crs"
        for key, value in attrs.items():
            var.setncattr(key, value)
        out[name] = var
    return out


def _flag_attributes() -> dict[str, Any]:
    return {
        "long_name": "C2RCC quality flags",
        "flag_masks": np.array([1 << bit for _n, bit, _d in C2RCC_FLAGS], dtype=np.uint32),
        "flag_meanings": " ".join(n for n, _b, _d in C2RCC_FLAGS),
        "flag_descriptions": "\t".join(d for _n, _b, d in C2RCC_FLAGS),
        "flag_coding_name": FLAG_BAND,
    }


def read_beam_grid(path: str | os.PathLike[str]) -> BeamGrid:
    """Recover the UTM grid of a file written by :func:`write_beam_netcdf` (or SNAP)."""
    import netCDF4
    from pyproj import CRS

    with _hdf5_lock(), netCDF4.Dataset(path) as nc:
        crs_var = nc.variables["crs"]
        sx, _a, _b, sy, ulx, uly = (float(v) for v in str(crs_var.getncattr("i2m")).split(","))
        crs = CRS.from_wkt(crs_var.getncattr("wkt"))
        epsg = crs.to_epsg()
        if epsg is None:
            raise ValueError(f"{path}: crs has no EPSG code")
        return BeamGrid(
            epsg, ulx, uly, sx, -sy, len(nc.dimensions["x"]), len(nc.dimensions["y"])
        )
