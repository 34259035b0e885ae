"""Open a Sentinel-2 L1C SAFE product (``.zip`` read in place, or an unpacked ``.SAFE`` folder) and
read UTM windows of it as C2RCC-MSI inputs, the way SNAP's ``Read -> Resample`` presents them.

See ``docs/s2-reader.md`` for the SNAP-compatibility decisions.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from seasonal_c2rcc.c2rcc.dimap import C2rccInputs, Grid
from seasonal_c2rcc.errors import ConfigError, ProductError
from seasonal_c2rcc.s2l1c.angles import AngleGrids, build_angle_grids, place_on_grid
from seasonal_c2rcc.s2l1c.ecmwf import identify_fields, sample_tie_point_grid
from seasonal_c2rcc.s2l1c.metadata import (
    BAND_FILE_SUFFIX,
    BAND_NAMES,
    BAND_RESOLUTION,
    MetadataError,
    ProductMetadata,
    TileMetadata,
    parse_product_metadata,
    parse_tile_metadata,
)
from seasonal_c2rcc.s2l1c.resample import downsample_mean, upsample_nearest

Bounds = tuple[float, float, float, float]

#: Output resolutions the Resample node can target (the bands' native ones).
RESOLUTIONS: Final = (10, 20, 60)
#: Windows are widened to this grid so every band's pixels nest in the output pixels.
ALIGN_M: Final = 60
#: DN of no-data pixels (SNAP's valid expression ``Bx.raw > 0``).
NODATA_DN: Final = 0


class _Source:
    """Access to the files of a SAFE, zipped or not: names relative to the ``.SAFE`` root."""

    def __init__(self, path: Path) -> None:
        if path.name == "MTD_MSIL1C.xml":  # the product's main metadata file names its folder
            path = path.parent
        self.path = path
        self.is_zip = path.is_file()
        self._names: list[str] = []
        self._prefix = ""
        if self.is_zip:
            try:
                with zipfile.ZipFile(path) as zf:
                    names = zf.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise ProductError(
                    f"{path}: not a readable zip archive ({exc}); the download is truncated or "
                    "corrupt: delete it and download the product again",
                    product=path.name,
                    part="zip archive",
                ) from exc
            mtd = sorted(
                (n for n in names if PurePosixPath(n).name == "MTD_MSIL1C.xml"),
                key=lambda n: n.count("/"),
            )
            if not mtd:
                raise ProductError(
                    f"{path}: no MTD_MSIL1C.xml in the archive (not an L1C SAFE, or damaged): "
                    "download it again",
                    product=path.name,
                    part="MTD_MSIL1C.xml",
                )
            parent = str(PurePosixPath(mtd[0]).parent)
            self._prefix = "" if parent == "." else parent + "/"
            self._names = [n[len(self._prefix) :] for n in names if n.startswith(self._prefix)]
        elif path.is_dir():
            self._names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
        else:
            raise ConfigError(
                f"SAFE product {path} does not exist (expected a .zip or a .SAFE folder)"
            )

    def names(self) -> list[str]:
        return self._names

    def read_bytes(self, rel: str) -> bytes:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self._prefix + rel)
        return (self.path / rel).read_bytes()

    def gdal_path(self, rel: str) -> str:
        if self.is_zip:
            return f"/vsizip/{self.path.resolve()}/{self._prefix}{rel}"
        return str(self.path / rel)


@dataclass
class SafeProduct:
    """An opened L1C product. Use :func:`open_safe`; read with :meth:`read_window`."""

    path: Path
    metadata: ProductMetadata
    tile: TileMetadata
    #: band name -> path inside the SAFE of its JP2
    band_files: dict[str, str]
    #: path inside the SAFE of ``AUX_ECMWFT``, if present
    ecmwf_file: str | None
    _source: _Source = field(repr=False)
    _datasets: dict[str, Any] = field(default_factory=dict, repr=False)
    _ecmwf_nodes: dict[str, npt.NDArray[np.float32]] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ description
    @property
    def name(self) -> str:
        """The product id (``S2A_MSIL1C_..._T30UUA_...``)."""
        return self.metadata.product_id

    @property
    def epsg(self) -> int:
        """EPSG code of the tile's UTM CRS."""
        return self.tile.epsg

    @cached_property
    def crs_wkt(self) -> str:
        """WKT of the tile's UTM CRS."""
        from pyproj import CRS

        return CRS.from_epsg(self.epsg).to_wkt()

    @property
    def bounds(self) -> Bounds:
        """(xmin, ymin, xmax, ymax) of the product image in its UTM CRS."""
        t = self.tile
        return (t.ulx, t.uly - t.height_m, t.ulx + t.width_m, t.uly)

    @cached_property
    def angle_grids(self) -> AngleGrids:
        """The angle node grids as SNAP builds them (detector grids merged, view means)."""
        return build_angle_grids(self.tile)

    def reflectance_scale(self) -> tuple[float, float]:
        """SNAP's (scaling factor, scaling offset): reflectance = DN * factor + offset."""
        q = self.metadata.quantification_value
        return 1.0 / q, self.metadata.radiometric_offset / q

    # ------------------------------------------------------------------ reading
    def _error(self, part: str, detail: str) -> ProductError:
        return ProductError(
            f"product {self.name} ({self.path}): {part}: {detail}. The product file is damaged: "
            "delete it and download it again",
            product=self.name,
            part=part,
        )

    def _dataset(self, band: str) -> Any:
        import rasterio
        from rasterio.errors import RasterioError

        ds = self._datasets.get(band)
        if ds is None:
            rel = self.band_files[band]
            try:
                ds = rasterio.open(self._source.gdal_path(rel))
            except (RasterioError, OSError) as exc:
                raise self._error(f"band {band} ({rel})", f"cannot be opened ({exc})") from exc
            res = BAND_RESOLUTION[band]
            if (ds.width, ds.height) != self.tile.sizes[res]:
                ds.close()
                raise self._error(
                    f"band {band} ({rel})",
                    f"image is {ds.width}x{ds.height}, MTD_TL.xml says {self.tile.sizes[res]}",
                )
            self._datasets[band] = ds
        return ds

    def read_dn(self, band: str, bounds: Bounds) -> npt.NDArray[np.uint16]:
        """Raw DNs of ``band`` at its native resolution over ``bounds`` (aligned to that grid)."""
        import rasterio
        from rasterio.errors import RasterioError
        from rasterio.windows import Window

        if band not in self.band_files:
            raise ConfigError(f"no band {band!r}; bands: {', '.join(BAND_NAMES)}")
        res = BAND_RESOLUTION[band]
        col0, row0, ncols, nrows = self._pixel_window(bounds, res)
        ds = self._dataset(band)
        try:
            # one decoding thread: OpenJPEG's worker threads report a damaged codestream only on
            # stderr and hand back garbage; decoded in this thread the failure raises here
            with rasterio.Env(GDAL_NUM_THREADS=1):
                data = ds.read(1, window=Window(col0, row0, ncols, nrows))
        except (RasterioError, OSError) as exc:
            raise self._error(
                f"band {band} ({self.band_files[band]})", f"cannot be decoded ({exc})"
            ) from exc
        if data.shape != (nrows, ncols):
            raise self._error(f"band {band}", f"read {data.shape}, expected {(nrows, ncols)}")
        return data.astype(np.uint16, copy=False)

    def _pixel_window(self, bounds: Bounds, res: int) -> tuple[int, int, int, int]:
        xmin, ymin, xmax, ymax = bounds
        t = self.tile
        col0 = round((xmin - t.ulx) / res)
        row0 = round((t.uly - ymax) / res)
        ncols = round((xmax - xmin) / res)
        nrows = round((ymax - ymin) / res)
        return col0, row0, ncols, nrows

    def check_bounds(self, bounds: Bounds, resolution: float) -> int:
        """Validate a window: inside the product and on the ``resolution`` grid. Returns the
        resolution as an int; raises :class:`ConfigError` naming the problem otherwise."""
        if len(bounds) != 4:
            raise ConfigError(f"bounds must be (xmin, ymin, xmax, ymax), got {bounds!r}")
        res = int(round(float(resolution)))
        if res not in RESOLUTIONS or abs(res - float(resolution)) > 1e-9:
            raise ConfigError(
                f"resolution {resolution!r} m: the S2 reader resamples to 10, 20 or 60 m only"
            )
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        if not (xmin < xmax and ymin < ymax):
            raise ConfigError(
                f"empty or inverted window {bounds!r} (need xmin < xmax, ymin < ymax)"
            )
        t = self.tile
        for name, offset in (
            ("xmin", xmin - t.ulx), ("xmax", xmax - t.ulx),
            ("ymin", t.uly - ymin), ("ymax", t.uly - ymax),
        ):  # fmt: skip
            k = offset / res
            if abs(k - round(k)) > 1e-6:
                raise ConfigError(
                    f"window {bounds!r}: {name} is not on the {res} m pixel grid of {self.name} "
                    f"(origin ULX {t.ulx:g}, ULY {t.uly:g}); snap it to a multiple of {res} m "
                    "from the origin"
                )
        pxmin, pymin, pxmax, pymax = self.bounds
        if xmin < pxmin or ymin < pymin or xmax > pxmax or ymax > pymax:
            raise ConfigError(
                f"window {bounds!r} is not inside product {self.name}, which covers "
                f"({pxmin:g}, {pymin:g}, {pxmax:g}, {pymax:g}) in EPSG:{self.epsg}"
            )
        return res

    def read_window(self, bounds: Bounds, resolution: float, *, ecmwf: bool = False) -> C2rccInputs:
        """C2RCC-MSI inputs over ``bounds`` = (xmin, ymin, xmax, ymax) in the tile's UTM CRS.

        ``bounds`` must lie inside the product and on the ``resolution`` grid (10, 20 or 60 m).
        Returns TOA reflectances of the 13 bands (SNAP's names, B8A included) resampled as the
        graph's Resample node does (Nearest up, Mean down), DN 0 as NaN; the four angle rasters;
        lat/lon of the pixel centres; with ``ecmwf`` the ``tco3``/``tcwv``/``msl`` fields of
        ``AUX_ECMWFT`` (empty when the product has none, so C2RCC falls back to its constants as
        SNAP does); the output ``Grid`` and ``crs_wkt``. Only the JP2 blocks the window touches
        are decoded.
        """
        res = self.check_bounds(bounds, resolution)
        xmin, ymin, xmax, ymax = (float(v) for v in bounds)
        t = self.tile
        # widen to the 60 m grid so every band's pixels nest in the output pixels
        ex_xmin = t.ulx + np.floor((xmin - t.ulx) / ALIGN_M + 1e-9) * ALIGN_M
        ex_xmax = t.ulx + np.ceil((xmax - t.ulx) / ALIGN_M - 1e-9) * ALIGN_M
        ex_ymax = t.uly - np.floor((t.uly - ymax) / ALIGN_M + 1e-9) * ALIGN_M
        ex_ymin = t.uly - np.ceil((t.uly - ymin) / ALIGN_M - 1e-9) * ALIGN_M
        # (the product's extent is a multiple of 60 m: MTD_TL.xml's sizes are checked on opening)
        widened = (float(ex_xmin), float(ex_ymin), float(ex_xmax), float(ex_ymax))
        c0 = round((xmin - ex_xmin) / res)
        r0 = round((ex_ymax - ymax) / res)
        width = round((xmax - xmin) / res)
        height = round((ymax - ymin) / res)
        factor, offset = self.reflectance_scale()
        toa: dict[str, npt.NDArray[np.float32]] = {}
        for band in BAND_NAMES:
            native = BAND_RESOLUTION[band]
            dn = self.read_dn(band, widened)
            if native > res:
                dn = upsample_nearest(dn, native // res)
            elif native < res:
                dn = downsample_mean(dn, res // native, NODATA_DN)
            dn = dn[r0 : r0 + height, c0 : c0 + width]
            refl = (dn.astype(np.float64) * factor + offset).astype(np.float32)
            refl[dn == NODATA_DN] = np.nan
            toa[band] = refl
        x = xmin + (np.arange(width) + 0.5) * res
        y = ymax - (np.arange(height) + 0.5) * res
        g = self.angle_grids
        origin = (t.ulx, t.uly)
        angles = {
            name: place_on_grid(getattr(g, name), origin, t.angle_step, x, y)
            for name in ("sun_zenith", "sun_azimuth", "view_zenith_mean", "view_azimuth_mean")
        }
        aux = self.read_ecmwf(x, y) if ecmwf else {}
        lat, lon = self._latlon(x, y)
        grid = Grid(width, height, float(res), 0.0, 0.0, -float(res), xmin, ymax)
        return C2rccInputs(toa, angles, aux, lat, lon, grid, self.crs_wkt)

    def _latlon(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        from pyproj import CRS, Transformer

        tr = Transformer.from_crs(CRS.from_epsg(self.epsg), CRS.from_epsg(4326), always_xy=True)
        xx, yy = np.meshgrid(x, y)
        lon, lat = tr.transform(xx, yy)
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)

    def read_ecmwf_nodes(self) -> dict[str, npt.NDArray[np.float32]]:
        """The ``tco3``, ``tcwv`` and ``msl`` node grids of ``AUX_ECMWFT`` (empty if absent)."""
        if self._ecmwf_nodes is None:  # read once per opened product
            self._ecmwf_nodes = self._read_ecmwf_nodes()
        return self._ecmwf_nodes

    def _read_ecmwf_nodes(self) -> dict[str, npt.NDArray[np.float32]]:
        if self.ecmwf_file is None:
            return {}
        import rasterio
        from rasterio.errors import RasterioError

        part = f"AUX_ECMWFT ({self.ecmwf_file})"
        try:
            with rasterio.open(self._source.gdal_path(self.ecmwf_file)) as ds:
                found = identify_fields([ds.tags(i) for i in range(1, ds.count + 1)])
                missing = [n for n in ("tco3", "tcwv", "msl") if n not in found]
                if missing:
                    raise self._error(part, f"no {', '.join(missing)} field")
                return {n: ds.read(i).astype(np.float32) for n, i in found.items()}
        except (RasterioError, OSError) as exc:
            raise self._error(part, f"cannot be read ({exc})") from exc

    def read_ecmwf(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> dict[str, npt.NDArray[np.float32]]:
        """ECMWF fields at the pixel centres (x columns, y rows), as SNAP's tie-point grids."""
        nodes = self.read_ecmwf_nodes()
        origin = (self.tile.ulx, self.tile.uly)
        return {n: sample_tie_point_grid(v, origin, x, y) for n, v in nodes.items()}

    def close(self) -> None:
        """Close the open JP2 datasets (reopened on demand)."""
        for ds in self._datasets.values():
            ds.close()
        self._datasets.clear()

    def __enter__(self) -> SafeProduct:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _find_band_files(names: list[str], meta: ProductMetadata) -> dict[str, str]:
    present = set(names)
    files: dict[str, str] = {}
    for rel in meta.image_files:
        for band, suffix in BAND_FILE_SUFFIX.items():
            if rel.endswith("_" + suffix) and rel + ".jp2" in present:
                files[band] = rel + ".jp2"
    for band, suffix in BAND_FILE_SUFFIX.items():  # IMAGE_FILE list absent or stale
        if band not in files:
            hits = sorted(n for n in names if "/IMG_DATA/" in n and n.endswith(f"_{suffix}.jp2"))
            if hits:
                files[band] = hits[0]
    return files


def open_safe(path: str | os.PathLike[str]) -> SafeProduct:
    """Open an L1C product: a ``.zip`` (read in place through GDAL's ``/vsizip/``), a ``.SAFE``
    folder or its ``MTD_MSIL1C.xml``. Parses both metadata files and checks every band file is there.

    Raises :class:`ProductError` (product and part named, ``redownload_may_fix``) for a truncated
    zip, a missing or malformed metadata file or a missing band; :class:`ConfigError` when
    ``path`` does not exist.
    """
    p = Path(path)
    src = _Source(p)
    label = p.name
    names = src.names()

    def damaged(part: str, detail: str) -> ProductError:
        return ProductError(
            f"product {label}: {part}: {detail}. Delete {p} and download it again",
            product=label,
            part=part,
        )

    try:
        if "MTD_MSIL1C.xml" not in names:
            raise damaged("MTD_MSIL1C.xml", "missing")
        meta = parse_product_metadata(src.read_bytes("MTD_MSIL1C.xml"))
        label = meta.product_id or label
        granules = sorted(
            {n.split("/")[1] for n in names if n.startswith("GRANULE/") and n.count("/") >= 2}
        )
        if len(granules) > 1:
            raise ConfigError(
                f"product {label} holds {len(granules)} granules (the pre-2016-12 multi-tile "
                "format): the reader handles single-tile products only"
            )
        if not granules:
            raise damaged("GRANULE", "no granule folder")
        tl = f"GRANULE/{granules[0]}/MTD_TL.xml"
        if tl not in names:
            raise damaged(tl, "missing")
        tile = parse_tile_metadata(src.read_bytes(tl), where=tl)
    except MetadataError as exc:
        raise damaged(exc.part, str(exc)) from exc
    except (zipfile.BadZipFile, OSError, KeyError) as exc:
        raise damaged("metadata", f"cannot be read ({exc})") from exc
    files = _find_band_files(names, meta)
    missing = [b for b in BAND_NAMES if b not in files]
    if missing:
        raise damaged(
            "band " + ", ".join(missing),
            f"no JP2 file for band(s) {', '.join(missing)} under GRANULE/{granules[0]}/IMG_DATA",
        )
    ecmwf = f"GRANULE/{granules[0]}/AUX_DATA/AUX_ECMWFT"
    return SafeProduct(
        path=src.path,
        metadata=meta,
        tile=tile,
        band_files=files,
        ecmwf_file=ecmwf if ecmwf in names else None,
        _source=src,
    )
