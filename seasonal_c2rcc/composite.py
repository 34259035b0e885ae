"""Seasonal composites and climatologies of per-product C2RCC files.

One function, :func:`build_composite`, serves both: a seasonal composite gets the per-product files
of one sub-tile, year and season; a climatology gets the per-product files of one sub-tile and
season over *all* years, so its median is over all years' valid observations (not a median of
yearly medians, which would weight a year with 2 scenes like a year with 30).

Steps (see ``docs/composites.md`` for the reasoning):

1. **Acquisitions.** Products are grouped by (platform, relative orbit, solar day): reprocessed
   baselines (N0204 and N0500 of one datatake), republished products and split datastrips are the
   *same* observation and are counted once. Within a group the members are ordered by preference
   (highest processing baseline, then latest generation time) and each pixel takes the first member
   that has a valid observation there, so complementary split datastrips are merged and a duplicate
   only fills gaps. All variables of a pixel come from the same member.
2. **Masking** with :mod:`seasonal_c2rcc.masking` (Valid_PE, exclude flags, cloud buffer, zeros).
3. **Statistics** per pixel over the acquisitions: median, P10, P90 (numpy's default "linear"
   percentile, Hyndman & Fan type 7, identical to ``numpy.nanpercentile``) and the count of valid
   observations. Pixels with fewer than ``min_valid_obs`` observations are NaN; the count is kept.
4. **Output**: CF-1.8 NetCDF on the sub-tile grid in the tile's UTM CRS, written block by block
   (memory is bounded by the block size, not by the number of scenes), atomically (``.part`` +
   rename) and verified by reopening; optionally a Cloud-Optimised GeoTIFF of the median chl.

An empty product list gives an explicit no-data composite (``composite_status = "no_data"``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, OutputError
from .grid import RasterGrid
from .masking import MaskConfig, usable_values, valid_mask

log = logging.getLogger(__name__)

__all__ = [
    "Acquisition",
    "COMPOSITE_VARIABLES",
    "CompositeResult",
    "PERCENTILES",
    "ProductId",
    "Provenance",
    "RRS_BANDS",
    "STATISTICS",
    "VARIABLE_META",
    "backend_name",
    "build_composite",
    "c2rcc_graph_parameters",
    "group_acquisitions",
    "nan_percentile_stats",
    "parse_product_id",
    "peak_memory_mb",
    "software_versions",
]


RRS_BANDS: tuple[str, ...] = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A")

#: Variables composited by default, in output order.
COMPOSITE_VARIABLES: tuple[str, ...] = ("conc_chl", "conc_tsm", "kd489") + tuple(
    f"rrs_{b}" for b in RRS_BANDS
)

#: Statistic name -> percentile (``count`` is separate).
PERCENTILES: dict[str, float] = {"median": 50.0, "p10": 10.0, "p90": 90.0}
STATISTICS: tuple[str, ...] = ("median", "p10", "p90", "count")

#: Central wavelengths (nm) of the MSI bands C2RCC outputs (S2A; S2B differs by < 2 nm).
_WAVELENGTH_NM = {
    "B1": 443,
    "B2": 490,
    "B3": 560,
    "B4": 665,
    "B5": 705,
    "B6": 740,
    "B7": 783,
    "B8A": 865,
}

#: CF metadata of the composited variables: (long name, units, CF standard name or None).
VARIABLE_META: dict[str, tuple[str, str, str | None]] = {
    "conc_chl": (
        "chlorophyll-a concentration (C2RCC)",
        "mg m-3",
        "mass_concentration_of_chlorophyll_a_in_sea_water",
    ),
    "conc_tsm": (
        "total suspended matter concentration (C2RCC)",
        "g m-3",
        "mass_concentration_of_suspended_matter_in_sea_water",
    ),
    "kd489": (
        "diffuse attenuation coefficient of downwelling irradiance at 489 nm (C2RCC)",
        "m-1",
        "volume_attenuation_coefficient_of_downwelling_radiative_flux_in_sea_water",
    ),
    **{
        f"rrs_{b}": (
            f"remote-sensing reflectance at {_WAVELENGTH_NM[b]} nm (MSI {b}, C2RCC)",
            "sr-1",
            "surface_ratio_of_upwelling_radiance_emerging_from_sea_water_to_downwelling_radiative_flux_in_air",
        )
        for b in RRS_BANDS
    },
}

_COUNT_FILL = np.uint16(65535)
#: Target size of one block of the per-variable observation stack (the sort needs about twice).
DEFAULT_BLOCK_BYTES = 64 * 2**20


# ----------------------------------------------------------------------------------------------
# Product ids and same-day grouping
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class ProductId:
    """The fields of a Sentinel-2 L1C product id that matter for compositing."""

    platform: str
    sensing: dt.datetime
    baseline: int
    relative_orbit: int
    tile: str
    generation: dt.datetime
    name: str = field(compare=False)

    def solar_day(self, lon: float) -> dt.date:
        """Local solar date at longitude ``lon`` (UTC + lon/15 h); one overpass never spans two."""
        return (self.sensing + dt.timedelta(hours=lon / 15.0)).date()


def parse_product_id(name: str | os.PathLike[str]) -> ProductId:
    """Parse ``S2B_MSIL1C_20200623T112119_N0500_R037_T30UUA_20230427T164710`` (a path, ``.nc`` or
    ``.SAFE`` suffix are accepted). Raises :class:`OutputError` for anything else."""
    stem = Path(name).name
    for suffix in (".nc", ".SAFE", ".zip"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    from .catalogue import PRODUCT_RE

    m = PRODUCT_RE.match(stem)
    if not m:
        raise OutputError(
            f"{name}: file name is not a Sentinel-2 L1C product id "
            "(S2x_MSIL1C_<sensing>_Nxxxx_Rxxx_Txxxxx_<generation>), so its acquisition cannot be "
            "identified for compositing"
        )
    fmt = "%Y%m%dT%H%M%S"
    return ProductId(
        platform=m["platform"],
        sensing=dt.datetime.strptime(m["sensing"], fmt),
        baseline=int(m["baseline"]),
        relative_orbit=int(m["orbit"]),
        tile=m["tile"],
        generation=dt.datetime.strptime(m["disc"], fmt),
        name=stem,
    )


@dataclass(frozen=True)
class Acquisition:
    """One observation: products of one platform, relative orbit and solar day.

    ``members`` are ordered by preference: highest processing baseline, then latest generation.
    """

    platform: str
    relative_orbit: int
    day: dt.date
    members: tuple[Path, ...]

    @property
    def label(self) -> str:
        """``S2B_R037_2020-06-23``."""
        return f"{self.platform}_R{self.relative_orbit:03d}_{self.day.isoformat()}"


def group_acquisitions(
    paths: Iterable[str | os.PathLike[str]], *, lon: float = 0.0
) -> list[Acquisition]:
    """Group per-product files into acquisitions (same platform, relative orbit and solar day).

    Returned sorted by day, platform and orbit; duplicate paths are ignored.
    """
    groups: dict[tuple[str, int, dt.date], list[tuple[ProductId, Path]]] = {}
    for p in dict.fromkeys(Path(x) for x in paths):
        pid = parse_product_id(p)
        key = (pid.platform, pid.relative_orbit, pid.solar_day(lon))
        groups.setdefault(key, []).append((pid, p))
    out = []
    for (platform, orbit, day), members in sorted(
        groups.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])
    ):
        members.sort(key=lambda m: (m[0].baseline, m[0].generation, m[0].name), reverse=True)
        out.append(Acquisition(platform, orbit, day, tuple(p for _, p in members)))
    return out


# ----------------------------------------------------------------------------------------------
# Statistics kernel (pure numpy)
# ----------------------------------------------------------------------------------------------


def nan_percentile_stats(
    stack: np.ndarray,
    percentiles: Mapping[str, float] = PERCENTILES,
    *,
    min_count: int = 1,
) -> dict[str, np.ndarray]:
    """Per-pixel percentiles and count of the non-NaN values along axis 0.

    Same definition as ``numpy.nanpercentile(stack, q, axis=0)`` ("linear", type 7), but one sort
    serves every percentile, which is several times faster than ``numpy.nanmedian`` alone for
    tens of observations. Pixels with fewer than ``min_count`` values get NaN; ``count`` (uint16)
    is returned unmasked. Results are float32.
    """
    a = np.asarray(stack, dtype=np.float32)
    if a.ndim < 1:
        raise ValueError("stack needs an observation axis")
    n = np.count_nonzero(~np.isnan(a), axis=0)
    out: dict[str, np.ndarray] = {}
    if a.shape[0] == 0:
        for name in percentiles:
            out[name] = np.full(a.shape[1:], np.nan, np.float32)
        out["count"] = n.astype(np.uint16)
        return out
    s = np.sort(a, axis=0)  # NaNs sort last, so the valid values are s[:n]
    last = np.maximum(n - 1, 0)
    enough = n >= max(min_count, 1)
    for name, q in percentiles.items():
        h = (q / 100.0) * last  # virtual index, float64
        lo = np.floor(h).astype(np.intp)
        hi = np.minimum(lo + 1, last)
        t = h - lo
        va = np.take_along_axis(s, lo[None], axis=0)[0].astype(np.float64)
        vb = np.take_along_axis(s, hi[None], axis=0)[0].astype(np.float64)
        # numpy's _lerp: a + (b-a)·t, or b - (b-a)·(1-t) for t >= 0.5 (monotonic, exact ends)
        d = vb - va
        v = np.where(t >= 0.5, vb - d * (1.0 - t), va + d * t)
        v = v.astype(np.float32)
        v[~enough] = np.nan
        out[name] = v
    out["count"] = np.minimum(n, int(_COUNT_FILL) - 1).astype(np.uint16)
    return out


# ----------------------------------------------------------------------------------------------
# Provenance
# ----------------------------------------------------------------------------------------------


def c2rcc_graph_parameters(graph_path: str | os.PathLike[str]) -> dict[str, str]:
    """Parameters of the ``c2rcc.msi`` node of a SNAP graph XML file, as strings.

    Raises :class:`ConfigError` if the file is not a graph or has no C2RCC node.
    """
    from .graph import c2rcc_parameters

    try:
        text = Path(graph_path).read_text()
    except OSError as exc:
        raise ConfigError(f"graph {graph_path}: cannot read ({exc})") from None
    params = c2rcc_parameters(text, where=f"graph {graph_path}")
    if params is None:
        raise ConfigError(f"graph {graph_path}: no c2rcc node (operator c2rcc.msi) found")
    return params


def software_versions() -> dict[str, str]:
    """Versions of the packages that shape a composite."""
    import platform

    out = {"python": platform.python_version()}
    for dist in ("seasonal-c2rcc", "numpy", "xarray", "netCDF4", "snakemake", "rasterio"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist == "seasonal-c2rcc":
                from . import __version__

                out[dist] = __version__
            else:
                out[dist] = "not installed"
    return out


@dataclass(frozen=True)
class Provenance:
    """What produced the inputs; written to the composite's attributes. Holds no credentials."""

    graph_path: str | None = None
    graph_sha256: str | None = None
    c2rcc_parameters: Mapping[str, str] = field(default_factory=dict)
    backend: str | None = None
    software: Mapping[str, str] = field(default_factory=software_versions)

    @classmethod
    def collect(cls, *, graph_path: str | os.PathLike[str] | None, backend: Any) -> Provenance:
        """Hash and parse the graph and name the backend.

        ``backend`` may be the config's backend entry: a name, or a mapping of which only the
        ``name``/``type``/``kind`` value is kept (a backend section may hold credentials).
        """
        sha = params = None
        if graph_path is not None:
            data = Path(graph_path).read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            params = c2rcc_graph_parameters(graph_path)
        return cls(
            graph_path=None if graph_path is None else _portable_path(graph_path),
            graph_sha256=sha,
            c2rcc_parameters=params or {},
            backend=backend_name(backend),
        )

    def to_attrs(self) -> dict[str, str]:
        """NetCDF global attributes."""
        return {
            "graph_path": self.graph_path or "",
            "graph_sha256": self.graph_sha256 or "",
            "c2rcc_parameters": json.dumps(dict(self.c2rcc_parameters), sort_keys=True),
            "backend": self.backend or "",
            "software_versions": json.dumps(dict(self.software), sort_keys=True),
        }


def _portable_path(path: str | os.PathLike[str]) -> str:
    """``path`` as outputs may carry it: relative to the working directory, or only the file
    name for a file elsewhere (no absolute local path in any output; ``graph_sha256`` still
    identifies the file)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return p.name


def backend_name(backend: Any) -> str | None:
    """The backend's name only: from a string, or the name/type/kind entry of a mapping."""
    if backend is None:
        return None
    if isinstance(backend, str):
        return backend
    if isinstance(backend, Mapping):
        for key in ("name", "type", "kind", "backend"):
            if isinstance(backend.get(key), str):
                return str(backend[key])
        return "unknown"
    return type(backend).__name__


# ----------------------------------------------------------------------------------------------
# Reading per-product files
# ----------------------------------------------------------------------------------------------


#: Inputs held open for the whole build; the others are opened for each read. HDF5 keeps about
#: 0.65 MB per open file (its metadata cache's fixed hash table, 512 kB, plus metadata), whichever
#: library opens it, so a climatology of a few hundred scenes held open grew by a few hundred MB.
MAX_OPEN_INPUTS = 128
#: Resident memory of one open input file (MB), measured (see MAX_OPEN_INPUTS).
_OPEN_INPUT_MB = 0.7


@dataclass
class _Input:
    """One per-product file, read row block by row block with h5py (a NetCDF4 file is HDF5).

    ``ds`` is the open file for the first :data:`MAX_OPEN_INPUTS` inputs, ``None`` for the others,
    which are opened for each read (about 2 ms, against 0.65 MB held for the whole build). There
    is no chunk cache either way (see :func:`_open_h5`), so keeping a file open saves only the
    open. Values are those netCDF4 returns without masking: raw data, scaled where the variable
    has ``scale_factor``/``add_offset``.
    """

    path: Path
    names: frozenset[str]
    ds: Any = None  # h5py.File, or None: opened for each read

    def has(self, name: str) -> bool:
        return name in self.names

    def source(self, var: str) -> tuple[str, float] | None:
        """Variable to read for composite variable ``var`` and a factor (rhow -> Rrs = rhow/π)."""
        if self.has(var):
            return var, 1.0
        if var.startswith("rrs_"):
            rhow = "rhow_" + var[4:]
            if self.has(rhow):
                return rhow, 1.0 / math.pi
        return None

    def read(self, name: str, r0: int, r1: int) -> tuple[np.ndarray, float | None]:
        if self.ds is not None:
            return _read_rows(self.ds[name], r0, r1)
        with _open_h5(self.path) as ds:
            return _read_rows(ds[name], r0, r1)


def _open_h5(path: Path) -> Any:
    """Open an input without a chunk cache: each block reads rows no earlier block read (apart
    from the cloud-buffer halo), so cached chunks are never used again. The default cache
    (netCDF-C: 64 MiB per variable and open file) kept every chunk read until the file closed, so
    memory grew by the size of every band of every scene once the per-product files became
    row-chunked (as contiguous files they had bypassed the cache). A chunk that straddles two
    blocks is read twice, which costs little."""
    import h5py

    return h5py.File(path, "r", rdcc_nbytes=0, rdcc_nslots=1)


def _read_rows(v: Any, r0: int, r1: int) -> tuple[np.ndarray, float | None]:
    fill = _attr(v, "_FillValue")
    data = np.asarray(v[r0:r1, :])
    scale, offset = _attr(v, "scale_factor"), _attr(v, "add_offset")
    if scale is not None:
        data = data * scale
    if offset is not None:
        data = data + offset
    return data, (None if fill is None else float(fill))


def _attr(v: Any, name: str) -> Any:
    """A scalar attribute of an h5py dataset (NetCDF stores them as 1-element arrays), or None."""
    if name not in v.attrs:
        return None
    value = np.asarray(v.attrs[name])
    return value.reshape(-1)[0] if value.size == 1 else value


def _open_inputs(
    stack: ExitStack, paths: Sequence[Path], grid: RasterGrid, max_open: int = MAX_OPEN_INPUTS
) -> dict[Path, _Input]:
    """Check every input (a C2RCC product on the sub-tile grid) and keep the first ``max_open``
    open for the build."""
    import h5py

    out: dict[Path, _Input] = {}
    for i, p in enumerate(paths):
        try:
            ds = _open_h5(p)
        except OSError as exc:
            raise OutputError(
                f"{p}: cannot open as NetCDF4/HDF5 ({exc}); delete it so it is re-made"
            ) from None
        try:
            names = frozenset(k for k, v in ds.items() if isinstance(v, h5py.Dataset))
            if "c2rcc_flags" not in names:
                raise OutputError(f"{p}: no c2rcc_flags variable; not a C2RCC product")
            shape = ds["c2rcc_flags"].shape
            if tuple(shape) != (grid.height, grid.width):
                raise OutputError(
                    f"{p}: c2rcc_flags is {shape[0]}x{shape[1]} (rows x cols) but the sub-tile "
                    f"grid is {grid.height}x{grid.width} at {grid.res} m; the product was not "
                    "clipped to the sub-tile grid (wrong resolution in the config?)"
                )
        except BaseException:
            ds.close()
            raise
        if i < max_open:
            out[p] = _Input(p, names, stack.enter_context(ds))
        else:
            ds.close()
            out[p] = _Input(p, names)
    return out


def _row_chunk_cache(var: Any, width: int, chunks: tuple[int, int]) -> None:
    """Give an output variable a chunk cache of two rows of chunks (the row of chunks that a
    block boundary leaves half-written, plus the next), instead of netCDF-C's default 64 MiB,
    which would hold the whole variable until the file closes."""
    per_row = math.ceil(width / chunks[1])
    nbytes = 2 * per_row * chunks[0] * chunks[1] * var.dtype.itemsize
    var.set_var_chunk_cache(size=nbytes + 1024, nelems=max(7, 4 * per_row + 1), preemption=1.0)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompositeResult:
    """Summary of a written composite."""

    path: Path
    cog_path: Path | None
    status: str  # "ok" or "no_data"
    n_products: int
    n_acquisitions: int
    valid_fraction: dict[str, float]


def _cf_grid_mapping(epsg: int, grid: RasterGrid) -> dict[str, Any]:
    from pyproj import CRS

    crs = CRS.from_epsg(epsg)
    attrs: dict[str, Any] = dict(crs.to_cf())
    wkt = crs.to_wkt()
    attrs["crs_wkt"] = wkt
    attrs["spatial_ref"] = wkt  # GDAL and rioxarray read this one
    attrs["GeoTransform"] = f"{grid.x0!r} {grid.res!r} 0.0 {grid.y0!r} 0.0 {-grid.res!r}"
    attrs["epsg_code"] = f"EPSG:{epsg}"
    return attrs


def _centre_lon(grid: RasterGrid) -> float:
    """Longitude of the grid centre (for the solar day of an overpass)."""
    from pyproj import Transformer

    tr = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    x0, y0, x1, y1 = grid.bounds
    return float(tr.transform((x0 + x1) / 2, (y0 + y1) / 2)[0])


def _lonlat(grid: RasterGrid) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    tr = Transformer.from_crs(grid.epsg, 4326, always_xy=True)
    xx, yy = np.meshgrid(grid.x, grid.y)
    lon, lat = tr.transform(xx, yy)
    return np.asarray(lon, np.float32), np.asarray(lat, np.float32)


def _create_nc(
    path: Path, grid: RasterGrid, variables: Sequence[str], attrs: Mapping[str, Any]
) -> Any:
    import netCDF4

    ds = netCDF4.Dataset(path, "w", format="NETCDF4")
    ds.createDimension("y", grid.height)
    ds.createDimension("x", grid.width)
    chunks = (min(_OUT_CHUNK, grid.height), min(_OUT_CHUNK, grid.width))
    x = ds.createVariable("x", "f8", ("x",))
    x[:] = grid.x
    x.setncatts(
        {
            "standard_name": "projection_x_coordinate",
            "long_name": "x coordinate of projection (pixel centre)",
            "units": "m",
            "axis": "X",
        }
    )
    y = ds.createVariable("y", "f8", ("y",))
    y[:] = grid.y
    y.setncatts(
        {
            "standard_name": "projection_y_coordinate",
            "long_name": "y coordinate of projection (pixel centre)",
            "units": "m",
            "axis": "Y",
        }
    )
    gm = ds.createVariable("spatial_ref", "i4")
    gm.setncatts(_cf_grid_mapping(grid.epsg, grid))
    lon, lat = _lonlat(grid)
    for name, data, std, units in (
        ("lat", lat, "latitude", "degrees_north"),
        ("lon", lon, "longitude", "degrees_east"),
    ):
        v = ds.createVariable(name, "f4", ("y", "x"), zlib=True, complevel=4, chunksizes=chunks)
        v[:] = data
        v.setncatts({"standard_name": std, "long_name": std, "units": units})
    for var in variables:
        long_name, units, std = VARIABLE_META.get(var, (var, "1", None))
        for stat in ("median", "p10", "p90"):
            v = ds.createVariable(
                f"{var}_{stat}",
                "f4",
                ("y", "x"),
                zlib=True,
                complevel=4,
                chunksizes=chunks,
                fill_value=np.float32(np.nan),
            )
            _row_chunk_cache(v, grid.width, chunks)
            what = "median" if stat == "median" else f"{int(PERCENTILES[stat])}th percentile"
            a = {
                "long_name": f"{what} of {long_name}",
                "units": units,
                "grid_mapping": "spatial_ref",
                "coordinates": "lat lon",
                "percentile": PERCENTILES[stat],
                "percentile_method": "linear (numpy default, Hyndman-Fan type 7) over valid observations",
                "comment": f"NaN where fewer than {attrs['masking_min_valid_obs']} valid observations",
            }
            if std:
                a["standard_name"] = std
            if stat == "median":
                a["cell_methods"] = "time: median"
            v.setncatts(a)
        c = ds.createVariable(
            f"{var}_count",
            "u2",
            ("y", "x"),
            zlib=True,
            complevel=4,
            chunksizes=chunks,
            fill_value=_COUNT_FILL,
        )
        _row_chunk_cache(c, grid.width, chunks)
        c.setncatts(
            {
                "long_name": f"number of valid observations of {var} (acquisitions, same-day duplicates counted once)",
                "units": "1",
                "grid_mapping": "spatial_ref",
                "coordinates": "lat lon",
            }
        )
    ds.setncatts({k: v for k, v in attrs.items() if v is not None})
    return ds


def _write_cog(path: Path, data: np.ndarray, grid: RasterGrid, tags: Mapping[str, str]) -> None:
    import rasterio
    from rasterio.crs import CRS as RioCRS

    tmp = path.with_name(path.name + ".part")
    profile = {
        "driver": "COG",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "float32",
        "crs": RioCRS.from_epsg(grid.epsg),
        "transform": grid.transform,
        "nodata": float("nan"),
        "compress": "DEFLATE",
        "predictor": 3,  # floating-point predictor
        "blocksize": 256,
        "overview_resampling": "average",
    }
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data.astype(np.float32), 1)
            dst.update_tags(**tags)
            dst.set_band_description(1, "median conc_chl (mg m-3)")
            dst.update_tags(1, units="mg m-3")
        with rasterio.open(tmp) as chk:
            if chk.crs.to_epsg() != grid.epsg or chk.shape != (grid.height, grid.width):
                raise OutputError(f"{tmp}: COG re-read with wrong CRS or shape")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _verify_nc(path: Path, grid: RasterGrid, variables: Sequence[str]) -> None:
    import netCDF4
    from pyproj import CRS

    try:
        with netCDF4.Dataset(path, "r") as ds:
            missing = [
                f"{v}_{s}" for v in variables for s in STATISTICS if f"{v}_{s}" not in ds.variables
            ]
            if missing:
                raise OutputError(f"{path}: variables missing after write: {missing}")
            shape = (
                ds.variables[f"{variables[0]}_median"].shape
                if variables
                else (grid.height, grid.width)
            )
            if tuple(shape) != (grid.height, grid.width):
                raise OutputError(
                    f"{path}: re-read shape {shape}, expected {(grid.height, grid.width)}"
                )
            epsg = CRS.from_wkt(ds.variables["spatial_ref"].crs_wkt).to_epsg()
            if epsg != grid.epsg:
                raise OutputError(f"{path}: re-read CRS EPSG:{epsg}, expected EPSG:{grid.epsg}")
    except OSError as exc:
        raise OutputError(f"{path}: written file cannot be re-opened ({exc})") from None


# ----------------------------------------------------------------------------------------------
# The composite
# ----------------------------------------------------------------------------------------------


#: Output chunk shape (rows and columns) of the composite's variables.
_OUT_CHUNK = 256


def peak_memory_mb(
    width: int,
    height: int,
    n_variables: int = len(COMPOSITE_VARIABLES),
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> int:
    """Upper bound of the peak resident memory (MB) of one :func:`build_composite` of a
    ``width`` x ``height`` sub-tile grid, whatever the number of scenes (the rules' ``mem_mb``).

    The observation stack is reduced in blocks of ``block_bytes`` (fewer rows as scenes are
    added) and at most :data:`MAX_OPEN_INPUTS` inputs are held open, so the scene count does not
    enter. Terms: interpreter and libraries; the open inputs; the block, its sorted copy and
    temporaries; full-grid arrays (median chl for the COG, lat/lon while the file is created);
    the output's chunk caches (two rows of chunks per statistic); a margin. Checked against
    the peak RSS measured by ``benchmarks/bench_composite.py`` (docs/composites.md).
    """
    mib = 2**20
    fixed = 150 + 64  # interpreter, numpy/netCDF4/h5py/pyproj/rasterio; margin
    inputs = MAX_OPEN_INPUTS * _OPEN_INPUT_MB
    blocks = 3 * block_bytes / mib
    grid = width * height * 48 / mib
    rows = min(height, 2 * _OUT_CHUNK)
    out_cache = n_variables * len(STATISTICS) * rows * width * 4 / mib
    return int(math.ceil(fixed + inputs + blocks + grid + out_cache))


def _block_rows(n_obs: int, width: int, block_bytes: int) -> int:
    return max(1, int(block_bytes // max(1, n_obs * width * 4)))


def build_composite(
    products: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    grid: RasterGrid,
    mask: MaskConfig = MaskConfig(),  # noqa: B008
    variables: Sequence[str] = COMPOSITE_VARIABLES,
    provenance: Provenance | None = None,
    cog_path: str | os.PathLike[str] | None = None,
    attrs: Mapping[str, Any] | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    max_open_inputs: int = MAX_OPEN_INPUTS,
) -> CompositeResult:
    """Composite per-product C2RCC files into one CF-1.8 NetCDF (and optionally a chl COG).

    Parameters
    ----------
    products
        Per-product C2RCC NetCDF files, all on ``grid``, named by their S2 product id. May be
        empty: the result is then an explicit no-data composite.
    out_path
        Output NetCDF; written to ``<out_path>.part`` and renamed once verified.
    grid
        The sub-tile raster grid (:func:`seasonal_c2rcc.grid.subtile_raster_grid`).
    mask
        Observation screening and ``min_valid_obs``.
    variables
        Composite variable names; ``rrs_*`` are read from ``rhow_*``/π when a product has no Rrs.
    provenance
        Graph, parameters, backend and software versions for the attributes.
    cog_path
        If given, the median ``conc_chl`` is also written as a Cloud-Optimised GeoTIFF.
    attrs
        Extra global attributes (tile, subtile, year, season, composite_kind, ...).
    block_bytes
        Size of one block of the per-variable observation stack; bounds peak memory.
    max_open_inputs
        Inputs held open for the whole build (the others are opened for each read); bounds the
        memory HDF5 holds per open file.

    Returns
    -------
    CompositeResult
    """
    out = Path(out_path)
    paths = [Path(p) for p in products]
    groups = group_acquisitions(paths, lon=_centre_lon(grid))
    variables = tuple(variables)
    if cog_path is not None and "conc_chl" not in variables:
        raise ConfigError(
            "a chl COG was requested but conc_chl is not among the composite variables"
        )
    prov = provenance or Provenance()
    sensing = sorted(parse_product_id(p).sensing for p in paths)
    status = "ok" if groups else "no_data"
    global_attrs: dict[str, Any] = {
        "Conventions": "CF-1.8",
        "title": f"C2RCC {dict(attrs or {}).get('composite_kind', 'seasonal')} composite",
        "source": "Sentinel-2 MSI L1C processed with ESA SNAP C2RCC-MSI; composited by seasonal-c2rcc",
        "history": f"{dt.datetime.now(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} seasonal_c2rcc.composite.build_composite",
        "composite_status": status,
        "no_data_reason": ""
        if groups
        else "no usable Sentinel-2 product for this sub-tile and season",
        "input_products": " ".join(
            parse_product_id(p).name for p in sorted(paths, key=lambda q: q.name)
        ),
        "n_input_products": len(paths),
        "n_acquisitions": len(groups),
        "acquisitions": json.dumps(
            {g.label: [parse_product_id(m).name for m in g.members] for g in groups}
        ),
        "same_day_grouping": "products of one platform, relative orbit and solar day are one acquisition; per pixel the first valid member is used, members ordered by processing baseline then generation time (newest first)",
        "time_coverage_start": sensing[0].strftime("%Y-%m-%dT%H:%M:%SZ") if sensing else "",
        "time_coverage_end": sensing[-1].strftime("%Y-%m-%dT%H:%M:%SZ") if sensing else "",
        **mask.to_attrs(),
        **prov.to_attrs(),
        **dict(attrs or {}),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    valid_counts = dict.fromkeys(variables, 0)
    chl_median: np.ndarray | None = (
        np.full((grid.height, grid.width), np.nan, np.float32) if cog_path is not None else None
    )
    try:
        with ExitStack() as stack:
            members = [m for g in groups for m in g.members]
            inputs = _open_inputs(stack, members, grid, max_open_inputs)
            for var in variables:
                if groups and not any(inputs[m].source(var) for g in groups for m in g.members):
                    log.warning(
                        "no input product has %s (or its rhow equivalent); it stays all NaN", var
                    )
            ds = _create_nc(tmp, grid, variables, global_attrs)
            stack.callback(lambda: ds.isopen() and ds.close())
            rows = _block_rows(max(1, len(groups)), grid.width, block_bytes)
            halo = mask.cloud_buffer_px
            for r0 in range(0, grid.height, rows):
                r1 = min(grid.height, r0 + rows)
                choice = _choose_members(groups, inputs, mask, r0, r1, halo, grid.height)
                for var in variables:
                    obs = _observation_stack(groups, inputs, choice, var, r0, r1, grid.width)
                    st = nan_percentile_stats(obs, min_count=mask.min_valid_obs)
                    for stat in STATISTICS:
                        ds.variables[f"{var}_{stat}"][r0:r1, :] = st[stat]
                    valid_counts[var] += int(np.count_nonzero(~np.isnan(st["median"])))
                    if var == "conc_chl" and chl_median is not None:
                        chl_median[r0:r1] = st["median"]
            if groups and not any(valid_counts.values()):
                # Scenes, but no pixel reached min_valid_obs: as good as no data for every user.
                status = "no_data"
                ds.setncattr("composite_status", status)
                ds.setncattr(
                    "no_data_reason",
                    f"no pixel has >= {mask.min_valid_obs} valid observations in {len(groups)} "
                    "acquisition(s)",
                )
            ds.close()
        _verify_nc(tmp, grid, variables)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    cog = None
    if cog_path is not None and chl_median is not None:
        cog = Path(cog_path)
        cog.parent.mkdir(parents=True, exist_ok=True)
        tags = {
            k: str(global_attrs[k])
            for k in (
                "composite_status",
                "n_input_products",
                "n_acquisitions",
                "masking_min_valid_obs",
            )
            if k in global_attrs
        }
        tags.update({k: str(v) for k, v in (attrs or {}).items()})
        _write_cog(cog, chl_median, grid, tags)
    n_px = grid.width * grid.height
    result = CompositeResult(
        path=out,
        cog_path=cog,
        status=status,
        n_products=len(paths),
        n_acquisitions=len(groups),
        valid_fraction={v: valid_counts[v] / n_px for v in variables},
    )
    log.info(
        "%s: %s, %d products in %d acquisitions, valid fraction %s",
        out,
        status,
        len(paths),
        len(groups),
        {k: round(v, 3) for k, v in result.valid_fraction.items()},
    )
    return result


def _choose_members(
    groups: Sequence[Acquisition],
    inputs: Mapping[Path, _Input],
    mask: MaskConfig,
    r0: int,
    r1: int,
    halo: int,
    height: int,
) -> list[np.ndarray]:
    """Per acquisition, the index of the member used at each pixel of rows r0:r1 (-1: none valid)."""
    h0, h1 = max(0, r0 - halo), min(height, r1 + halo)
    out = []
    for g in groups:
        choice = None
        for i, m in enumerate(g.members):
            flags, _ = inputs[m].read("c2rcc_flags", h0, h1)
            ok = valid_mask(flags, mask)[r0 - h0 : r0 - h0 + (r1 - r0)]
            if choice is None:
                choice = np.where(ok, np.int8(0), np.int8(-1))
            else:
                choice[(choice < 0) & ok] = i
        assert choice is not None  # an acquisition has at least one member
        out.append(choice)
    return out


def _observation_stack(
    groups: Sequence[Acquisition],
    inputs: Mapping[Path, _Input],
    choice: Sequence[np.ndarray],
    var: str,
    r0: int,
    r1: int,
    width: int,
) -> np.ndarray:
    """(acquisitions, rows, width) float32 stack of usable values of ``var`` (NaN elsewhere)."""
    obs = np.full((len(groups), r1 - r0, width), np.nan, np.float32)
    for gi, g in enumerate(groups):
        for i, m in enumerate(g.members):
            sel = choice[gi] == i
            if not sel.any():
                continue
            src = inputs[m].source(var)
            if src is None:
                continue
            name, factor = src
            data, fill = inputs[m].read(name, r0, r1)
            vals = usable_values(data, sel, fill_value=fill)
            if factor != 1.0:
                vals *= np.float32(factor)
            np.copyto(obs[gi], vals, where=sel)
    return obs
