"""Cut one sub-tile out of a remote job's result, bit for bit, on the S2 tile's pixel grid.

A ``per-product`` or ``multi-input`` job covers a group of sub-tiles (plus a one-pixel margin, see
:mod:`seasonal_c2rcc.packing`); this module writes the file each sub-tile would have had from its
own job: exactly the sub-tile grid's pixels, every variable and attribute kept, values copied without
resampling. It refuses (``OutputError``) a result whose grid is not aligned with, or does not cover,
the sub-tile grid, rather than shifting or interpolating.

The result's grid is read, in this order, from:

1. the ``crs`` variable's ``i2m`` attribute (SNAP NetCDF4-BEAM: the image-to-model affine transform
   ``"scaleX,shearY,shearX,scaleY,translateX,translateY"``, translate = upper-left pixel corner) and
   its ``wkt`` attribute (or ``crs_wkt`` / ``spatial_ref``) for the CRS;
2. 1-D ``x`` / ``y`` pixel-centre coordinate variables (NetCDF-CF style);
3. a GDAL ``GeoTransform`` attribute on the grid-mapping variable.

Raster variables are those with both the ``y`` and ``x`` dimensions (bands, flags, 2-D ``lat``/``lon``,
``x``/``y``); they are sliced. Everything else (scalars such as ``crs`` and ``metadata``, tie-point
grids with their own dimensions) is copied unchanged, except the grid-mapping attributes, which are
rewritten for the new origin.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import atomic_path
from .errors import OutputError

if TYPE_CHECKING:
    from .grid import RasterGrid

XDIM, YDIM = "x", "y"
#: Offsets and sizes within this fraction of a pixel of an integer count as on the grid.
_ALIGN_TOL = 1e-6
_GRID_MAPPING_NAMES = ("crs", "spatial_ref")


def _netcdf4() -> Any:
    import netCDF4

    return netCDF4


def _crs_epsg(wkt: str, where: str) -> int:
    from pyproj import CRS

    try:
        epsg = CRS.from_user_input(wkt).to_epsg(min_confidence=70)
    except Exception as exc:  # pyproj's CRSError
        raise OutputError(f"{where}: cannot parse the CRS WKT ({exc})") from None
    if epsg is None:
        raise OutputError(f"{where}: the CRS has no EPSG code: {wkt[:120]!r}")
    return int(epsg)


def _grid_var(nc: Any) -> Any | None:
    for name in _GRID_MAPPING_NAMES:
        if name in nc.variables:
            return nc.variables[name]
    return None


def _wkt_of(var: Any) -> str | None:
    for attr in ("wkt", "crs_wkt", "spatial_ref"):
        if attr in var.ncattrs():
            return str(var.getncattr(attr))
    return None


def _grid_from_dataset(nc: Any, where: str) -> RasterGrid:
    from .grid import RasterGrid

    if XDIM not in nc.dimensions or YDIM not in nc.dimensions:
        raise OutputError(f"{where}: no '{YDIM}'/'{XDIM}' dimensions; not a gridded SNAP product")
    width, height = len(nc.dimensions[XDIM]), len(nc.dimensions[YDIM])
    gv = _grid_var(nc)
    wkt = _wkt_of(gv) if gv is not None else None
    if wkt is None:
        raise OutputError(f"{where}: no CRS (a 'crs' variable with a 'wkt' attribute) in the file")
    epsg = _crs_epsg(wkt, where)
    if gv is not None and "i2m" in gv.ncattrs():
        try:
            sx, shy, shx, sy, tx, ty = (float(v) for v in str(gv.getncattr("i2m")).split(","))
        except ValueError:
            raise OutputError(f"{where}: crs:i2m is not six numbers: {gv.getncattr('i2m')!r}") from None
        if shy != 0 or shx != 0 or sx <= 0 or not math.isclose(sy, -sx, rel_tol=1e-9):
            raise OutputError(
                f"{where}: crs:i2m {gv.getncattr('i2m')!r} is not a north-up square-pixel grid; "
                "refusing to clip a rotated or flipped product"
            )
        return RasterGrid(epsg, tx, ty, sx, width, height)
    if XDIM in nc.variables and YDIM in nc.variables:
        xs = np.asarray(nc.variables[XDIM][:], dtype=np.float64)
        ys = np.asarray(nc.variables[YDIM][:], dtype=np.float64)
        if xs.size < 2 or ys.size < 2:
            raise OutputError(f"{where}: x/y coordinates too short to derive a pixel size")
        res = float(xs[1] - xs[0])
        if res <= 0 or not np.allclose(np.diff(xs), res) or not np.allclose(np.diff(ys), -res):
            raise OutputError(f"{where}: x/y coordinates are not a regular north-up grid")
        return RasterGrid(epsg, xs[0] - res / 2, ys[0] + res / 2, res, width, height)
    if gv is not None and "GeoTransform" in gv.ncattrs():
        gt = [float(v) for v in str(gv.getncattr("GeoTransform")).split()]
        if len(gt) != 6 or gt[2] != 0 or gt[4] != 0 or not math.isclose(gt[5], -gt[1]):
            raise OutputError(f"{where}: GeoTransform {gt} is not a north-up square-pixel grid")
        return RasterGrid(epsg, gt[0], gt[3], gt[1], width, height)
    raise OutputError(f"{where}: no grid georeferencing (crs:i2m, x/y coordinates or GeoTransform)")


_PRODUCT_RE = re.compile(
    r"S2[A-D]_MSIL1C_\d{8}T\d{6}_N\d{4}_R\d{3}_T\d{2}[A-Z]{3}_\d{8}T\d{6}"
)


def source_product(path: str | Path) -> str | None:
    """The L1C product key a SNAP result was computed from, read from its own metadata.

    SNAP's NetCDF4-BEAM writer stores the processing graph as attributes of the ``metadata``
    variable (``Processing_Graph:node.0:...`` of the Read node names the input file); the emulator
    writes the same keys. Attributes of the Read node are preferred; ``None`` if no product id or
    more than one distinct id is found. Use it to match the results of a multi-input job to their
    products by content instead of by file name.
    """
    nc4 = _netcdf4()
    p = Path(path)
    try:
        with nc4.Dataset(p) as nc:
            attrs: list[tuple[str, str]] = []
            if "metadata" in nc.variables:
                v = nc.variables["metadata"]
                attrs += [(k, str(v.getncattr(k))) for k in v.ncattrs()]
            attrs += [(k, str(nc.getncattr(k))) for k in nc.ncattrs()]
    except OSError as exc:
        raise OutputError(f"{p}: cannot be opened as NetCDF ({exc})") from None
    read_node = [v for k, v in attrs if k.startswith("Processing_Graph:node.0:")]
    for group in (read_node, [v for _, v in attrs]):
        found = {m.group(0) for v in group for m in _PRODUCT_RE.finditer(v)}
        if len(found) == 1:
            return found.pop()
        if len(found) > 1:
            return None
    return None


def result_grid(path: str | Path) -> RasterGrid:
    """The raster grid (CRS, upper-left corner, pixel size, shape) of a SNAP-shaped NetCDF file."""
    nc4 = _netcdf4()
    p = Path(path)
    try:
        with nc4.Dataset(p) as nc:
            return _grid_from_dataset(nc, str(p))
    except OSError as exc:
        raise OutputError(f"{p}: cannot be opened as NetCDF ({exc})") from None


def window(src: RasterGrid, dst: RasterGrid, where: str = "result") -> tuple[int, int]:
    """(row, col) offset of ``dst`` inside ``src``; ``OutputError`` unless ``dst`` lies on ``src``'s
    pixel grid (same CRS and pixel size, integer offsets) and entirely inside it."""
    if src.epsg != dst.epsg:
        raise OutputError(f"{where}: result is in EPSG:{src.epsg}, the sub-tile in EPSG:{dst.epsg}")
    if not math.isclose(src.res, dst.res, rel_tol=1e-9):
        raise OutputError(
            f"{where}: result pixel size {src.res} m differs from the sub-tile's {dst.res} m; "
            "clipping never resamples (check the graph's Resample resolution)"
        )
    fc = (dst.x0 - src.x0) / src.res
    fr = (src.y0 - dst.y0) / src.res
    col, row = round(fc), round(fr)
    if abs(fc - col) > _ALIGN_TOL or abs(fr - row) > _ALIGN_TOL:
        raise OutputError(
            f"{where}: result grid (origin {src.x0}, {src.y0}) is offset from the sub-tile grid "
            f"(origin {dst.x0}, {dst.y0}) by a fraction of a pixel ({fc - col:+.4f}, {fr - row:+.4f} "
            "px); it is not on the S2 tile's pixel grid"
        )
    if col < 0 or row < 0 or col + dst.width > src.width or row + dst.height > src.height:
        raise OutputError(
            f"{where}: result covers columns 0..{src.width} / rows 0..{src.height}, the sub-tile "
            f"needs columns {col}..{col + dst.width} / rows {row}..{row + dst.height}: it does not "
            "cover the sub-tile (was the job's geoRegion too small?)"
        )
    return row, col


def _fmt(v: float) -> str:
    return repr(float(v))


def _grid_attrs(var: Any, grid: RasterGrid) -> dict[str, str]:
    """Grid-mapping attributes of ``var`` rewritten for ``grid``'s origin."""
    out: dict[str, str] = {}
    names = var.ncattrs()
    if "i2m" in names:
        old = [float(v) for v in str(var.getncattr("i2m")).split(",")]
        out["i2m"] = ",".join(_fmt(v) for v in [*old[:4], grid.x0, grid.y0])
    if "GeoTransform" in names:
        out["GeoTransform"] = " ".join(
            _fmt(v) for v in (grid.x0, grid.res, 0.0, grid.y0, 0.0, -grid.res)
        )
    return out


def _copy_group(
    src: Any, dst: Any, row: int, col: int, grid: RasterGrid, extra: Mapping[str, Any] | None
) -> None:
    src.set_auto_maskandscale(False)
    dst.set_auto_maskandscale(False)
    src.set_auto_chartostring(False)
    dst.set_auto_chartostring(False)
    attrs = {k: src.getncattr(k) for k in src.ncattrs()}
    if extra:
        attrs.update(extra)
    dst.setncatts(attrs)
    for name, dim in src.dimensions.items():
        size = grid.width if name == XDIM else grid.height if name == YDIM else len(dim)
        dst.createDimension(name, None if dim.isunlimited() else size)
    for name, v in src.variables.items():
        dims = v.dimensions
        filters = v.filters() or {}
        chunking = v.chunking()
        kwargs: dict[str, Any] = {}
        if isinstance(chunking, list):
            sizes = [grid.width if d == XDIM else grid.height if d == YDIM else len(src.dimensions[d])
                     for d in dims]  # fmt: skip
            kwargs["chunksizes"] = [max(1, min(c, s)) for c, s in zip(chunking, sizes, strict=True)]
        elif chunking == "contiguous":
            kwargs["contiguous"] = True
        for key in ("zlib", "shuffle", "fletcher32"):
            if filters.get(key):
                kwargs[key] = True
        if filters.get("zlib"):
            kwargs["complevel"] = filters.get("complevel", 4)
        fill = v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None
        dv = dst.createVariable(
            name, v.datatype, dims, fill_value=fill, endian=v.endian(), **kwargs
        )
        dv.set_auto_maskandscale(False)
        vattrs = {k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"}
        if name in _GRID_MAPPING_NAMES:
            vattrs.update(_grid_attrs(v, grid))
        dv.setncatts(vattrs)
        if v.ndim == 0:
            dv.assignValue(v.getValue())
            continue
        idx = tuple(
            slice(col, col + grid.width) if d == XDIM
            else slice(row, row + grid.height) if d == YDIM
            else slice(None)
            for d in dims
        )  # fmt: skip
        dv[...] = v[idx]
    for gname, g in src.groups.items():
        _copy_group(g, dst.createGroup(gname), row, col, grid, None)


def _verify(src: Any, out: Any, row: int, col: int, grid: RasterGrid, where: str) -> None:
    """Reopened output vs source: same variables and types, the target grid, identical bytes."""
    src.set_auto_maskandscale(False)
    out.set_auto_maskandscale(False)
    src.set_auto_chartostring(False)
    out.set_auto_chartostring(False)
    if set(src.variables) != set(out.variables):
        raise OutputError(f"{where}: variables differ after writing")
    for name, v in src.variables.items():
        o = out.variables[name]
        if o.dtype != v.dtype or o.dimensions != v.dimensions:
            raise OutputError(f"{where}: variable {name} changed type or dimensions")
        if v.ndim == 0:
            continue
        idx = tuple(
            slice(col, col + grid.width) if d == XDIM
            else slice(row, row + grid.height) if d == YDIM
            else slice(None)
            for d in v.dimensions
        )  # fmt: skip
        a, b = np.asarray(v[idx]), np.asarray(o[...])
        if a.shape != b.shape or a.tobytes() != b.tobytes():
            raise OutputError(f"{where}: variable {name} was not copied bit for bit")
    for gname, g in src.groups.items():
        _verify(g, out.groups[gname], row, col, grid, where)


def clip_to_grid(
    src: str | Path,
    grid: RasterGrid,
    dest: str | Path,
    *,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write the part of ``src`` on ``grid`` (a sub-tile's :class:`RasterGrid`) to ``dest``.

    Values are copied bit for bit (no masking, scaling or resampling), every variable, dimension,
    attribute, fill value and compression setting is kept, 2-D ``lat``/``lon`` and ``x``/``y`` are cut
    with the data, and the ``crs`` variable's ``i2m`` (or ``GeoTransform``) gets the new origin.
    ``attrs`` adds global attributes (provenance). The file is written to a temporary name, reopened
    and compared with the source window, then renamed to ``dest``. Raises :class:`OutputError` if the
    result is not on the sub-tile's pixel grid or does not cover it.
    """
    nc4 = _netcdf4()
    src, dest = Path(src), Path(dest)
    try:
        s = nc4.Dataset(src)
    except OSError as exc:
        raise OutputError(f"{src}: cannot be opened as NetCDF ({exc})") from None
    with s:
        row, col = window(_grid_from_dataset(s, str(src)), grid, str(src))
        with atomic_path(dest) as tmp:
            with nc4.Dataset(tmp, "w", format=s.data_model) as d:
                _copy_group(s, d, row, col, grid, attrs)
            with nc4.Dataset(tmp) as o:
                got = _grid_from_dataset(o, str(tmp))
                if window(got, grid, str(tmp)) != (0, 0) or (got.width, got.height) != (
                    grid.width,
                    grid.height,
                ):
                    raise OutputError(f"{tmp}: written grid {got} is not the sub-tile grid {grid}")
                _verify(s, o, row, col, grid, str(dest))
    return dest
