"""Read a BEAM-DIMAP Sentinel-2 L1C product (such as SNAP's ``S2Ref_Product.zip``) into arrays.

BEAM-DIMAP is a ``.dim`` XML file plus a ``.data/`` folder with one ENVI ``.hdr``/``.img`` pair per
band and per tie-point grid. This reader handles a plain ``.dim`` or a ``.zip`` holding both, reads
the ENVI rasters with numpy (any byte order; scaling from the ``.dim``), keeps each band on its own
grid (S2 products are multi-size), and offers what ``c2rcc.msi`` consumes: bands resampled by
nearest neighbour onto one reference grid (SNAP's ``Resample`` with ``upsampling=Nearest``), the
four angle rasters, and the ECMWF tie-point grids interpolated bilinearly as SNAP's ``TiePointGrid``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

import numpy as np
import numpy.typing as npt
from lxml import etree

from seasonal_c2rcc.c2rcc.msi import ANGLE_NAMES, SOURCE_BANDS
from seasonal_c2rcc.errors import ConfigError

#: ENVI ``data type`` codes -> numpy kinds (byte order applied separately).
_ENVI_TYPES: Final[dict[int, str]] = {
    1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8",
}  # fmt: skip


@dataclass(frozen=True)
class Grid:
    """A raster grid: size and SNAP's image-to-model transform (a, d, b, e, c, f order of Java)."""

    width: int
    height: int
    #: x = m00*i + m01*j + m02, y = m10*i + m11*j + m12 for image coordinates (i, j) of pixel corners
    m00: float
    m10: float
    m01: float
    m11: float
    m02: float
    m12: float

    @classmethod
    def from_transform(cls, width: int, height: int, text: str) -> Grid:
        """Parse ``IMAGE_TO_MODEL_TRANSFORM`` (Java ``AffineTransform`` matrix order)."""
        m = [float(v) for v in text.split(",")]
        if len(m) != 6:
            raise ConfigError(f"bad IMAGE_TO_MODEL_TRANSFORM {text!r}")
        return cls(width, height, *m)

    def centres(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Model (map) coordinates of the pixel centres, each of shape (height, width)."""
        i, j = np.meshgrid(np.arange(self.width) + 0.5, np.arange(self.height) + 0.5)
        return (self.m00 * i + self.m01 * j + self.m02, self.m10 * i + self.m11 * j + self.m12)

    def to_pixel(
        self, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Continuous image coordinates of map points (inverse transform)."""
        det = self.m00 * self.m11 - self.m01 * self.m10
        dx, dy = x - self.m02, y - self.m12
        return (self.m11 * dx - self.m01 * dy) / det, (-self.m10 * dx + self.m00 * dy) / det


@dataclass(frozen=True)
class BandInfo:
    """One band of the product as described by the ``.dim``."""

    name: str
    index: int
    grid: Grid
    data_type: str
    scaling_factor: float
    scaling_offset: float
    description: str
    file: str


@dataclass(frozen=True)
class TiePointGridInfo:
    """A tie-point grid: ``ncols x nrows`` nodes at ``offset + k * step`` scene pixels."""

    name: str
    description: str
    ncols: int
    nrows: int
    offset_x: float
    offset_y: float
    step_x: float
    step_y: float
    file: str


@dataclass
class C2rccInputs:
    """Everything :func:`~seasonal_c2rcc.c2rcc.run_c2rcc_msi` needs, on one grid."""

    toa: dict[str, npt.NDArray[np.float32]]
    angles: dict[str, npt.NDArray[np.float32]]
    ecmwf: dict[str, npt.NDArray[np.float32]]
    lat: npt.NDArray[np.float64] | None
    lon: npt.NDArray[np.float64] | None
    grid: Grid
    crs_wkt: str


@dataclass
class DimapProduct:
    """An opened BEAM-DIMAP product. Use :func:`open_dimap`."""

    path: Path
    name: str
    width: int
    height: int
    crs_wkt: str
    bands: dict[str, BandInfo]
    tie_point_grids: dict[str, TiePointGridInfo]
    _read: Callable[[str], bytes] = field(repr=False)

    # ---------------------------------------------------------------- raw access
    def _envi(self, hdr_path: str) -> npt.NDArray[np.generic]:
        header = _parse_envi_header(self._read(hdr_path).decode("latin-1"))
        try:
            kind = _ENVI_TYPES[int(header["data type"])]
            order = ">" if int(header.get("byte order", "0")) == 1 else "<"
            w, h = int(header["samples"]), int(header["lines"])
            offset = int(header.get("header offset", "0"))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"unsupported ENVI header {hdr_path}: {exc}") from exc
        img = str(PurePosixPath(hdr_path).with_suffix(".img"))
        raw = self._read(img)
        arr = np.frombuffer(raw, dtype=order + kind, count=w * h, offset=offset)
        return arr.reshape(h, w)

    def read_band(self, name: str) -> npt.NDArray[np.float32]:
        """Geophysical values of ``name`` on its own grid, as SNAP's float32 geophysical image.

        Scaled bands are ``raw * factor + offset`` computed in double and stored as float32.
        """
        if name not in self.bands:
            raise ConfigError(f"{self.path}: no band {name!r} (bands: {', '.join(self.bands)})")
        info = self.bands[name]
        raw = self._envi(info.file)
        if info.scaling_factor == 1.0 and info.scaling_offset == 0.0:
            return raw.astype(np.float32)
        return (raw.astype(np.float64) * info.scaling_factor + info.scaling_offset).astype(
            np.float32
        )

    def read_tie_point_grid(self, name: str) -> npt.NDArray[np.float32]:
        """The tie-point values of ``name`` (nrows, ncols)."""
        if name not in self.tie_point_grids:
            raise ConfigError(f"{self.path}: no tie-point grid {name!r}")
        return self._envi(self.tie_point_grids[name].file).astype(np.float32)

    # ---------------------------------------------------------------- on a common grid
    def resample_nearest(self, name: str, target: Grid) -> npt.NDArray[np.float32]:
        """Band ``name`` on ``target`` by nearest neighbour: the source pixel containing each centre.

        That is SNAP's ``Resample`` with ``upsampling=Nearest`` for coarser bands; for finer bands
        (``downsampling``) it is SNAP's ``First`` method only when the grids nest, so prefer a
        reference band of the finest resolution needed. Centres outside the source are clamped.
        """
        src = self.bands[name].grid
        data = self.read_band(name)
        if src == target:
            return data
        x, y = target.centres()
        fi, fj = src.to_pixel(x, y)
        i = np.clip(np.floor(fi).astype(np.intp), 0, src.width - 1)
        j = np.clip(np.floor(fj).astype(np.intp), 0, src.height - 1)
        return data[j, i]

    def tie_point_grid_on_scene(
        self, name: str, target: Grid | None = None
    ) -> npt.NDArray[np.float32]:
        """``TiePointGrid.getPixelDouble`` at every scene pixel centre, as float32.

        Bilinear between the nodes, extrapolated linearly beyond the outer nodes (SNAP crops the
        cell index, not the weights). ``target`` defaults to the scene grid.
        """
        tp = self.tie_point_grids[name]
        g = self.read_tie_point_grid(name).astype(np.float64)
        width = target.width if target else self.width
        height = target.height if target else self.height
        fi = (np.arange(width) + 0.5 - tp.offset_x) / tp.step_x
        fj = (np.arange(height) + 0.5 - tp.offset_y) / tp.step_y
        i = np.clip(np.floor(fi).astype(np.intp), 0, tp.ncols - 2)
        j = np.clip(np.floor(fj).astype(np.intp), 0, tp.nrows - 2)
        wi = (fi - i)[None, :]
        wj = (fj - j)[:, None]
        v00 = g[j[:, None], i[None, :]]
        v10 = g[j[:, None], i[None, :] + 1]
        v01 = g[j[:, None] + 1, i[None, :]]
        v11 = g[j[:, None] + 1, i[None, :] + 1]
        v = v00 + wi * (v10 - v00) + wj * (v01 - v00) + wi * wj * (v11 + v00 - v01 - v10)
        return v.astype(np.float32)

    def ozone_grid_name(self) -> str | None:
        """The tie-point grid holding total ozone, chosen by description (SNAP's SIITBX-497 fix).

        Some S2 readers swap the names ``tco3`` and ``tcwv`` but keep the right descriptions.
        """
        if not {"tco3", "tcwv", "msl"} <= set(self.tie_point_grids):
            return None
        if "ozone" in self.tie_point_grids["tco3"].description.lower():
            return "tco3"
        return "tcwv"

    def c2rcc_inputs(self, reference_band: str = "B2", with_latlon: bool = True) -> C2rccInputs:
        """Bands, angles and ECMWF grids on the grid of ``reference_band``, ready for C2RCC.

        Mirrors ``Resample(referenceBand=..., upsampling=Nearest)`` followed by ``c2rcc.msi``;
        ``ecmwf`` holds ``tco3`` (ozone, kg m-2, after the name-swap check) and ``msl`` (Pa) when
        the product has them.
        """
        if reference_band not in self.bands:
            raise ConfigError(f"{self.path}: reference band {reference_band!r} not found")
        target = self.bands[reference_band].grid
        missing = [b for b in (*SOURCE_BANDS, *ANGLE_NAMES) if b not in self.bands]
        if missing:
            raise ConfigError(f"{self.path}: C2RCC-MSI needs band(s) {', '.join(missing)}")
        toa = {b: self.resample_nearest(b, target) for b in SOURCE_BANDS}
        angles = {a: self.resample_nearest(a, target) for a in ANGLE_NAMES}
        ecmwf: dict[str, npt.NDArray[np.float32]] = {}
        oz = self.ozone_grid_name()
        if oz is not None:
            ecmwf["tco3"] = self.tie_point_grid_on_scene(oz, target)
            ecmwf["msl"] = self.tie_point_grid_on_scene("msl", target)
        lat = lon = None
        if with_latlon and self.crs_wkt:
            lat, lon = _latlon(self.crs_wkt, target)
        return C2rccInputs(toa, angles, ecmwf, lat, lon, target, self.crs_wkt)


def _latlon(crs_wkt: str, grid: Grid) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    from pyproj import CRS, Transformer

    x, y = grid.centres()
    tr = Transformer.from_crs(CRS.from_wkt(crs_wkt), CRS.from_epsg(4326), always_xy=True)
    lon, lat = tr.transform(x, y)
    return np.asarray(lat), np.asarray(lon)


def _parse_envi_header(text: str) -> dict[str, str]:
    if not text.lstrip().startswith("ENVI"):
        raise ConfigError("not an ENVI header")
    out: dict[str, str] = {}
    key = None
    buf = ""
    for line in text.splitlines()[1:]:
        if key is not None:  # continuation of a {...} value
            buf += " " + line.strip()
            if "}" in line:
                out[key] = buf.strip().strip("{}").strip()
                key = None
            continue
        if "=" not in line:
            continue
        k, v = (s.strip() for s in line.split("=", 1))
        if v.startswith("{") and "}" not in v:
            key, buf = k.lower(), v
        else:
            out[k.lower()] = v.strip("{}").strip()
    return out


def open_dimap(path: str | os.PathLike[str]) -> DimapProduct:
    """Open a BEAM-DIMAP product from its ``.dim`` file or a ``.zip`` holding ``.dim`` + ``.data/``."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"BEAM-DIMAP product {p} does not exist")
    if p.suffix.lower() == ".zip":
        zf = zipfile.ZipFile(p)
        dims = [n for n in zf.namelist() if n.lower().endswith(".dim")]
        if len(dims) != 1:
            raise ConfigError(f"{p}: expected one .dim file in the zip, found {len(dims)}")
        base = PurePosixPath(dims[0]).parent

        def read(rel: str) -> bytes:
            try:
                return zf.read(str(base / rel) if str(base) != "." else rel)
            except KeyError as exc:
                raise ConfigError(f"{p}: missing {rel}") from exc

        with zf.open(dims[0]) as fh:
            header = _parse_dim(fh)
    elif p.suffix.lower() == ".dim":
        root = p.parent

        def read(rel: str) -> bytes:
            try:
                return (root / rel).read_bytes()
            except OSError as exc:
                raise ConfigError(f"{p}: cannot read {rel}: {exc}") from exc

        with p.open("rb") as fh:
            header = _parse_dim(fh)
    else:
        raise ConfigError(f"{p}: not a .dim or .zip BEAM-DIMAP product")
    name, width, height, crs, bands, tpgs = header
    return DimapProduct(p, name, width, height, crs, bands, tpgs, read)


_DimHeader = tuple[str, int, int, str, dict[str, BandInfo], dict[str, TiePointGridInfo]]


def _parse_dim(fh: object) -> _DimHeader:
    """Parse the parts of the ``.dim`` we need, stopping before the (large) metadata section."""
    name = ""
    width = height = 0
    crs = ""
    files: dict[int, str] = {}
    tpg_files: dict[int, str] = {}
    band_els: list[dict[str, str]] = []
    tpg_els: list[dict[str, str]] = []
    geopos: dict[int, str] = {}
    scene_transform = ""
    wanted = {
        "DATASET_NAME", "Raster_Dimensions", "Coordinate_Reference_System", "Geoposition",
        "Data_File", "Tie_Point_Grid_File", "Spectral_Band_Info", "Tie_Point_Grid_Info",
    }  # fmt: skip
    for _event, el in etree.iterparse(fh, events=("end",), huge_tree=True):
        tag = el.tag
        if tag == "Dataset_Sources":  # the S2 metadata tree (tens of MB) follows; not needed
            break
        if tag not in wanted:
            continue
        if tag == "DATASET_NAME":
            name = (el.text or "").strip()
        elif tag == "Raster_Dimensions":
            width, height = int(el.findtext("NCOLS")), int(el.findtext("NROWS"))
        elif tag == "Coordinate_Reference_System" and not crs:
            crs = " ".join((el.findtext("WKT") or "").split())
        elif tag == "Geoposition":
            idx = el.findtext("BAND_INDEX")
            tr = el.findtext("IMAGE_TO_MODEL_TRANSFORM") or ""
            if idx is None:
                scene_transform = scene_transform or tr
            else:
                geopos[int(idx)] = tr
        elif tag == "Data_File":
            files[int(el.findtext("BAND_INDEX"))] = el.find("DATA_FILE_PATH").get("href")
        elif tag == "Tie_Point_Grid_File":
            tpg_files[int(el.findtext("TIE_POINT_GRID_INDEX"))] = el.find(
                "TIE_POINT_GRID_FILE_PATH"
            ).get("href")
        elif tag == "Spectral_Band_Info":
            band_els.append({c.tag: (c.text or "").strip() for c in el if isinstance(c.tag, str)})
        elif tag == "Tie_Point_Grid_Info":
            tpg_els.append({c.tag: (c.text or "").strip() for c in el if isinstance(c.tag, str)})
        el.clear()
    bands: dict[str, BandInfo] = {}
    for b in band_els:
        idx = int(b["BAND_INDEX"])
        if idx not in files:  # virtual bands have an expression and no data file
            continue
        w = int(b.get("BAND_RASTER_WIDTH", width))
        h = int(b.get("BAND_RASTER_HEIGHT", height))
        tr = b.get("IMAGE_TO_MODEL_TRANSFORM") or geopos.get(idx) or scene_transform
        if not tr:
            raise ConfigError(f"band {b.get('BAND_NAME')} has no geo-position")
        bands[b["BAND_NAME"]] = BandInfo(
            name=b["BAND_NAME"],
            index=idx,
            grid=Grid.from_transform(w, h, tr),
            data_type=b.get("DATA_TYPE", ""),
            scaling_factor=float(b.get("SCALING_FACTOR", "1.0")),
            scaling_offset=float(b.get("SCALING_OFFSET", "0.0")),
            description=b.get("BAND_DESCRIPTION", ""),
            file=files[idx],
        )
    tpgs: dict[str, TiePointGridInfo] = {}
    for t in tpg_els:
        idx = int(t["TIE_POINT_GRID_INDEX"])
        if idx not in tpg_files:
            continue
        tpgs[t["TIE_POINT_GRID_NAME"]] = TiePointGridInfo(
            name=t["TIE_POINT_GRID_NAME"],
            description=t.get("TIE_POINT_DESCRIPTION", ""),
            ncols=int(t["NCOLS"]),
            nrows=int(t["NROWS"]),
            offset_x=float(t["OFFSET_X"]),
            offset_y=float(t["OFFSET_Y"]),
            step_x=float(t["STEP_X"]),
            step_y=float(t["STEP_Y"]),
            file=tpg_files[idx],
        )
    return name, width, height, crs, bands, tpgs
