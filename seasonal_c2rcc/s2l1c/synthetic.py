"""Small synthetic Sentinel-2 L1C products with the real SAFE layout, for tests and the emulator.

A product covers a window of its MGRS tile (``extent``, UTM metres) instead of the whole
109.8 km tile, so it stays a few MB and encodes in seconds, but its folder and file names, both
metadata files and its 13 lossless JP2 bands are laid out as in a real product::

    <product_id>.SAFE/MTD_MSIL1C.xml
    <product_id>.SAFE/GRANULE/L1C_T30UUA_A020736_20190612T113321/MTD_TL.xml
    <product_id>.SAFE/GRANULE/L1C_.../IMG_DATA/T30UUA_20190612T113321_B01.jp2 ... _B8A.jp2 ... _B12.jp2
    <product_id>.SAFE/GRANULE/L1C_.../AUX_DATA/AUX_ECMWFT                      (with ecmwf=True)

API (the emulator's HDA downloads call these)::

    from seasonal_c2rcc.s2l1c.synthetic import make_product_id, write_synthetic_safe
    pid = make_product_id("30UUA", datetime(2019, 6, 12, 11, 33, 21), baseline="02.07")
    path = write_synthetic_safe(dest_dir, pid, extent=(xmin, ymin, xmax, ymax))  # -> <pid>.zip
    data = synthetic_safe_zip_bytes(pid, extent=...)                            # the zip as bytes

``write_synthetic_safe(dest, product_id, *, extent=None, dn=None, angles=None, ecmwf=False,
zip=True) -> Path`` writes ``dest/<product_id>.zip`` (or the ``dest/<product_id>.SAFE`` folder)
atomically. The tile, sensing time and processing baseline come from ``product_id``
(``S2A_MSIL1C_20190612T113321_N0207_R080_T30UUA_20190612T133744``: baseline 02.07 has no
radiometric offset; N0400 and later carry ``RADIO_ADD_OFFSET`` -1000 in ``MTD_MSIL1C.xml``).

- ``extent``: (xmin, ymin, xmax, ymax) in the tile's UTM CRS, on the 60 m grid counted from the
  tile's upper-left corner; default the 19.98 km square at the tile's upper-left corner. The
  declared geoposition (ULX/ULY) is the extent's upper-left corner; sizes are the extent's.
- ``dn``: raw DNs per band name (``B1`` ... ``B8A`` ... ``B12``) at the band's native resolution,
  shape (rows, cols) of the extent; bands left out get the default field: SNAP's C2RCC test pixel
  (``seasonal_c2rcc.c2rcc.reference.PIN_TOA``) with a smooth +-5 % variation, a land square in
  the south-east quarter (B8 high, so C2RCC's valid expression rejects it) and a 3 x 3 block of
  DN 0 (no-data) near the centre. :func:`dn_for_reflectance` converts reflectances to DNs.
- ``angles``: constant sun/view angles (keys ``sun_zenith``, ``sun_azimuth``, ``view_zenith``,
  ``view_azimuth``; the view ones one value or 13 by band id) instead of the default grids. The view grids always come as two
  overlapping detectors per band (the later one in file order wins in the overlap) and NaN
  nodes beyond each detector's swath and in the node column east of the image.
- ``ecmwf``: also write ``AUX_DATA/AUX_ECMWFT`` (GRIB1: total column ozone, water vapour and
  mean sea-level pressure on a 9 x 9 grid, ECMWF units kg m-2 and Pa).
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from seasonal_c2rcc.atomic import atomic_dir, atomic_path
from seasonal_c2rcc.c2rcc.reference import PIN_TOA
from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.mgrs import tile_grid
from seasonal_c2rcc.s2l1c.metadata import BAND_FILE_SUFFIX, BAND_NAMES, BAND_RESOLUTION

#: Default extent: 333 pixels of 60 m (19.98 km) square at the tile's upper-left corner.
DEFAULT_SIZE_M: Final = 19_980.0
ANGLE_STEP_M: Final = 5000.0
QUANTIFICATION: Final = 10000
#: Land reflectances of the default field (vegetation: high NIR, so B8 > 0.1 fails C2RCC's test).
LAND_TOA: Final[dict[str, float]] = {
    "B1": 0.12, "B2": 0.09, "B3": 0.08, "B4": 0.06, "B5": 0.12, "B6": 0.25, "B7": 0.29,
    "B8": 0.31, "B8A": 0.32, "B9": 0.12, "B10": 0.005, "B11": 0.18, "B12": 0.09,
}  # fmt: skip
_ID_RE = re.compile(
    r"^(S2[ABCD])_MSIL1C_(\d{8}T\d{6})_N(\d{4})_R(\d{3})_T(\d{2}[A-Z]{3})_(\d{8}T\d{6})$"
)


@dataclass(frozen=True)
class ProductId:
    """The fields of an L1C product id."""

    platform: str
    sensing: datetime
    baseline: str  # "02.07"
    relative_orbit: int
    tile: str
    generation: datetime

    @classmethod
    def parse(cls, product_id: str) -> ProductId:
        """Parse ``S2A_MSIL1C_20190612T113321_N0207_R080_T30UUA_20190612T133744``."""
        m = _ID_RE.match(product_id.removesuffix(".SAFE").removesuffix(".zip"))
        if not m:
            raise ConfigError(
                f"{product_id!r} is not an L1C product id like "
                "S2A_MSIL1C_20190612T113321_N0207_R080_T30UUA_20190612T133744"
            )
        fmt = "%Y%m%dT%H%M%S"
        return cls(
            platform=m.group(1),
            sensing=datetime.strptime(m.group(2), fmt).replace(tzinfo=UTC),
            baseline=f"{m.group(3)[:2]}.{m.group(3)[2:]}",
            relative_orbit=int(m.group(4)),
            tile=m.group(5),
            generation=datetime.strptime(m.group(6), fmt).replace(tzinfo=UTC),
        )

    @property
    def has_offset(self) -> bool:
        """Baseline 04.00 and later carry the -1000 DN radiometric offset."""
        return float(self.baseline) >= 4.0

    @property
    def offset(self) -> int:
        """The DN offset (``RADIO_ADD_OFFSET``) of this baseline: -1000 from 04.00 on, else 0."""
        return -1000 if self.has_offset else 0


def make_product_id(
    tile: str,
    sensing: datetime,
    *,
    baseline: str = "04.00",
    platform: str = "S2A",
    relative_orbit: int = 80,
) -> str:
    """An L1C product id for ``tile`` sensed at ``sensing`` (generated 2 h 3 min later)."""
    fmt = "%Y%m%dT%H%M%S"
    gen = sensing + timedelta(hours=2, minutes=3, seconds=23)
    nb = baseline.replace(".", "")
    tid = tile.upper().removeprefix("T")
    return (
        f"{platform}_MSIL1C_{sensing.strftime(fmt)}_N{nb}_R{relative_orbit:03d}_T{tid}_"
        f"{gen.strftime(fmt)}"
    )


def dn_for_reflectance(
    reflectance: npt.ArrayLike, baseline: str = "04.00"
) -> npt.NDArray[np.uint16]:
    """DNs that read back as ``reflectance``: ``round(rho * 10000) - offset`` (offset -1000 from
    baseline 04.00), clipped to 1..65534 so no value becomes no-data or saturated."""
    offset = -1000 if float(baseline) >= 4.0 else 0
    dn = np.rint(np.asarray(reflectance, dtype=np.float64) * QUANTIFICATION) - offset
    return np.clip(dn, 1, 65534).astype(np.uint16)


def _check_extent(tile: str, extent: tuple[float, float, float, float] | None) -> tuple[float, ...]:
    g = tile_grid(tile)
    if extent is None:
        return (g.ulx, g.uly - DEFAULT_SIZE_M, g.ulx + DEFAULT_SIZE_M, g.uly)
    xmin, ymin, xmax, ymax = (float(v) for v in extent)
    for name, off in (("xmin", xmin - g.ulx), ("xmax", xmax - g.ulx), ("ymin", g.uly - ymin),
                      ("ymax", g.uly - ymax)):  # fmt: skip
        if abs(off / 60 - round(off / 60)) > 1e-9:
            raise ConfigError(
                f"extent {extent}: {name} is not on the 60 m grid of tile {tile} (ULX {g.ulx:g}, "
                f"ULY {g.uly:g})"
            )
    gx0, gy0, gx1, gy1 = g.bounds
    if not (gx0 <= xmin < xmax <= gx1 and gy0 <= ymin < ymax <= gy1):
        raise ConfigError(f"extent {extent} is empty or outside tile {tile} {g.bounds}")
    return (xmin, ymin, xmax, ymax)


def _centres(extent: tuple[float, ...], res: int) -> tuple[np.ndarray, np.ndarray]:
    xmin, ymin, xmax, ymax = extent
    x = xmin + (np.arange(round((xmax - xmin) / res)) + 0.5) * res
    y = ymax - (np.arange(round((ymax - ymin) / res)) + 0.5) * res
    return x, y


@lru_cache(maxsize=3)
def _field_parts(
    extent: tuple[float, ...], res: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """The smooth variation, the land square and the no-data block on the ``res`` grid."""
    x, y = _centres(extent, res)
    xmin, ymin, xmax, ymax = extent
    u = (x - xmin) / (xmax - xmin)
    v = (ymax - y) / (ymax - ymin)
    variation = (
        1.0 + 0.05 * np.sin(2 * np.pi * v).astype(np.float32)[:, None]
        * np.cos(2 * np.pi * u).astype(np.float32)[None, :]
    )  # fmt: skip
    land = (v[:, None] > 0.75) & (u[None, :] > 0.75)
    # a 3 x 3 block of 60 m pixels of no-data near the centre (every band)
    cx, cy = xmin + 0.5 * (xmax - xmin), ymax - 0.5 * (ymax - ymin)
    cx, cy = cx - (cx - xmin) % 60, cy + (ymax - cy) % 60
    hole = ((x >= cx) & (x < cx + 180))[None, :] & ((y < cy) & (y > cy - 180))[:, None]
    return variation.astype(np.float32), land, hole


def default_dn(band: str, extent: tuple[float, ...], baseline: str) -> npt.NDArray[np.uint16]:
    """The default water-like field of ``band`` over ``extent`` (see the module docstring)."""
    variation, land, hole = _field_parts(tuple(extent), BAND_RESOLUTION[band])
    rho = np.where(land, np.float32(LAND_TOA[band]), np.float32(PIN_TOA[band]) * variation)
    dn = dn_for_reflectance(rho, baseline)
    dn[hole] = 0
    return dn


# ---------------------------------------------------------------------------------------- angles


def _node_coords(extent: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, int, int]:
    xmin, ymin, xmax, ymax = extent
    ncols = math.ceil((xmax - xmin) / ANGLE_STEP_M) + 1
    nrows = math.ceil((ymax - ymin) / ANGLE_STEP_M) + 1
    xs = xmin + np.arange(ncols) * ANGLE_STEP_M
    ys = ymax - np.arange(nrows) * ANGLE_STEP_M
    return xs, ys, ncols, nrows


def _angle_grids(
    extent: tuple[float, ...], tile: str, angles: Mapping[str, float] | None
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, np.ndarray, np.ndarray]]]:
    """Sun grids and per-band, per-detector viewing grids (band id, detector id, zen, azi)."""
    xs, ys, ncols, nrows = _node_coords(extent)
    g = tile_grid(tile)
    # smooth functions of the position in the tile, so windows of one tile agree
    fx = ((xs - g.ulx) / g.size)[None, :]
    fy = ((g.uly - ys) / g.size)[:, None]
    shape = (nrows, ncols)
    if angles:
        sz = np.full(shape, angles["sun_zenith"])
        sa = np.full(shape, angles["sun_azimuth"])
        # one value for all bands, or 13 values by band id
        vz = np.broadcast_to(np.asarray(angles["view_zenith"], float), (13,))[:, None, None]
        va = np.broadcast_to(np.asarray(angles["view_azimuth"], float), (13,))[:, None, None]
    else:  # (rows, cols) grids from the (1, cols) and (rows, 1) positions
        sz = 35.0 - 0.7 * fx + 1.1 * fy
        sa = 150.0 + 2.0 * fx - 0.5 * fy
        vz = (2.0 + 7.0 * np.abs(fx - 0.4) + 0.1 * fy)[None]
        # the view azimuth flips across nadir (x = 40 % of the tile), as in real products
        va = (np.where(fx < 0.4, 105.0, 285.0) + 0.3 * fy)[None]
    # two detectors per band: A west of (and including) the overlap, B east of it
    split = max(1, ncols // 2)
    a_cols = np.arange(ncols) <= split
    b_cols = np.arange(ncols) >= split - 1
    grids: list[tuple[int, int, np.ndarray, np.ndarray]] = []
    vary = 0.0 if angles else 1.0  # constant angles stay constant across bands and detectors
    for band_id in range(len(BAND_NAMES)):
        per_band = []
        for det, cols, bump in ((4, a_cols, 0.0), (5, b_cols, 0.25 * vary)):
            z = np.where(
                cols[None, :], vz[band_id % len(vz)] + bump + 0.01 * band_id * vary, np.nan
            )
            a = np.where(
                cols[None, :], va[band_id % len(va)] + 10 * bump + 0.02 * band_id * vary, np.nan
            )
            z, a = np.broadcast_to(z, shape).copy(), np.broadcast_to(a, shape).copy()
            z[:, -1] = np.nan  # the node column east of the image: no detector sees it
            a[:, -1] = np.nan
            per_band.append((band_id, det, z, a))
        grids += per_band
    return sz, sa, grids


# ----------------------------------------------------------------------------------------- XML


def _values_xml(values: np.ndarray, indent: str) -> str:
    rows = []
    for row in values:
        rows.append(
            indent
            + "<VALUES>"
            + " ".join("NaN" if not np.isfinite(v) else f"{float(v):.9g}" for v in row)
            + "</VALUES>"
        )
    return "\n".join(rows)


def _grid_xml(tag: str, values: np.ndarray, indent: str) -> str:
    inner = indent + "  "
    return (
        f'{indent}<{tag}>\n{inner}<COL_STEP unit="m">{ANGLE_STEP_M:.0f}</COL_STEP>\n'
        f'{inner}<ROW_STEP unit="m">{ANGLE_STEP_M:.0f}</ROW_STEP>\n{inner}<Values_List>\n'
        f"{_values_xml(values, inner + '  ')}\n{inner}</Values_List>\n{indent}</{tag}>"
    )


def _psd_namespace(baseline: str) -> str:
    psd = 15 if float(baseline) >= 5.11 else 14  # N0511 moved the product format to PSD 15
    return f"https://psd-{psd}.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd", psd


def _product_xml(pid: str, info: ProductId, image_files: list[str]) -> str:
    ns, _ = _psd_namespace(info.baseline)
    t = info.sensing.strftime("%Y-%m-%dT%H:%M:%S.024Z")
    files = "\n".join(f"              <IMAGE_FILE>{f}</IMAGE_FILE>" for f in image_files)
    offsets = ""
    if info.has_offset:
        offsets = (
            "      <Radiometric_Offset_List>\n"
            + "\n".join(
                f'        <RADIO_ADD_OFFSET band_id="{i}">{info.offset}</RADIO_ADD_OFFSET>'
                for i in range(len(BAND_NAMES))
            )
            + "\n      </Radiometric_Offset_List>\n"
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_User_Product xmlns:n1="{ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{t}</PRODUCT_START_TIME>
      <PRODUCT_STOP_TIME>{t}</PRODUCT_STOP_TIME>
      <PRODUCT_URI>{pid}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-1C</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI1C</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{info.baseline}</PROCESSING_BASELINE>
      <GENERATION_TIME>{info.generation.strftime("%Y-%m-%dT%H:%M:%S.000000Z")}</GENERATION_TIME>
      <Datatake datatakeIdentifier="GS2A_{info.sensing.strftime("%Y%m%dT%H%M%S")}_000000_N{info.baseline.replace(".", "")}">
        <SPACECRAFT_NAME>Sentinel-2{info.platform[-1]}</SPACECRAFT_NAME>
        <DATATAKE_TYPE>INS-NOBS</DATATAKE_TYPE>
        <DATATAKE_SENSING_START>{t}</DATATAKE_SENSING_START>
        <SENSING_ORBIT_NUMBER>{info.relative_orbit}</SENSING_ORBIT_NUMBER>
        <SENSING_ORBIT_DIRECTION>DESCENDING</SENSING_ORBIT_DIRECTION>
      </Datatake>
      <Product_Organisation>
        <Granule_List>
          <Granule granuleIdentifier="synthetic" imageFormat="JPEG2000">
{files}
          </Granule>
        </Granule_List>
      </Product_Organisation>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
      <Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535</SPECIAL_VALUE_INDEX></Special_Values>
      <QUANTIFICATION_VALUE unit="none">{QUANTIFICATION}</QUANTIFICATION_VALUE>
{offsets}    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-1C_User_Product>
"""


def _tile_xml(
    info: ProductId, extent: tuple[float, ...], angles: Mapping[str, float] | None
) -> str:
    xmin, ymin, xmax, ymax = extent
    g = tile_grid(info.tile)
    sizes = "\n".join(
        f'      <Size resolution="{r}"><NROWS>{round((ymax - ymin) / r)}</NROWS>'
        f"<NCOLS>{round((xmax - xmin) / r)}</NCOLS></Size>"
        for r in (10, 20, 60)
    )
    geopos = "\n".join(
        f'      <Geoposition resolution="{r}"><ULX>{xmin:.0f}</ULX><ULY>{ymax:.0f}</ULY>'
        f"<XDIM>{r}</XDIM><YDIM>-{r}</YDIM></Geoposition>"
        for r in (10, 20, 60)
    )
    sz, sa, view = _angle_grids(extent, info.tile, angles)
    view_xml = "\n".join(
        f'      <Viewing_Incidence_Angles_Grids bandId="{b}" detectorId="{d}">\n'
        f"{_grid_xml('Zenith', z, '        ')}\n{_grid_xml('Azimuth', a, '        ')}\n"
        "      </Viewing_Incidence_Angles_Grids>"
        for b, d, z, a in view
    )
    ns = _psd_namespace(info.baseline)[0].replace(
        "User_Product_Level-1C", "S2_PDI_Level-1C_Tile_Metadata"
    )
    stamp = info.generation.strftime("%Y%m%dT%H%M%S")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_Tile_ID xmlns:n1="{ns}">
  <n1:General_Info>
    <TILE_ID metadataLevel="Brief">{info.platform}_OPER_MSI_L1C_TL_SGS__{stamp}_A000000_T{info.tile}_N{info.baseline}</TILE_ID>
    <DATASTRIP_ID metadataLevel="Standard">{info.platform}_OPER_MSI_L1C_DS_SGS__{stamp}_N{info.baseline}</DATASTRIP_ID>
    <SENSING_TIME metadataLevel="Standard">{info.sensing.strftime("%Y-%m-%dT%H:%M:%S.465Z")}</SENSING_TIME>
  </n1:General_Info>
  <n1:Geometric_Info>
    <Tile_Geocoding metadataLevel="Brief">
      <HORIZONTAL_CS_NAME>WGS84 / UTM zone {info.tile[:2]}{"N" if g.epsg < 32700 else "S"}</HORIZONTAL_CS_NAME>
      <HORIZONTAL_CS_CODE>EPSG:{g.epsg}</HORIZONTAL_CS_CODE>
{sizes}
{geopos}
    </Tile_Geocoding>
    <Tile_Angles metadataLevel="Standard">
      <Sun_Angles_Grid>
{_grid_xml("Zenith", sz, "        ")}
{_grid_xml("Azimuth", sa, "        ")}
      </Sun_Angles_Grid>
      <Mean_Sun_Angle><ZENITH_ANGLE unit="deg">{float(np.mean(sz)):.6f}</ZENITH_ANGLE><AZIMUTH_ANGLE unit="deg">{float(np.mean(sa)):.6f}</AZIMUTH_ANGLE></Mean_Sun_Angle>
{view_xml}
    </Tile_Angles>
  </n1:Geometric_Info>
</n1:Level-1C_Tile_ID>
"""


# ----------------------------------------------------------------------------------------- GRIB


def _ibm_float(value: float) -> bytes:
    """A 4-byte IBM System/360 float (GRIB1 reference values)."""
    if value == 0:
        return b"\x00\x00\x00\x00"
    sign = 0x80 if value < 0 else 0
    value = abs(value)
    exponent = 64
    while value >= 1.0:
        value /= 16.0
        exponent += 1
    while value < 1.0 / 16.0:
        value *= 16.0
        exponent -= 1
    mantissa = int(value * (1 << 24))
    if mantissa >= 1 << 24:  # rounding spill-over
        mantissa >>= 4
        exponent += 1
    return bytes([sign | exponent]) + mantissa.to_bytes(3, "big")


def _grib1_message(values: np.ndarray, param: int, lats: tuple[float, float], lons: tuple[float, float],
                   when: datetime) -> bytes:  # fmt: skip
    """One GRIB1 message: ECMWF centre 98, table 128, surface, regular lat/lon, 16-bit packing."""
    nj, ni = values.shape
    pds = bytearray(28)
    pds[0:3] = (28).to_bytes(3, "big")
    pds[3] = 128  # table version
    pds[4] = 98  # ECMWF
    pds[5] = 145  # generating process
    pds[6] = 255  # grid defined by the GDS
    pds[7] = 0b10000000  # GDS present, no BMS
    pds[8] = param
    pds[9] = 1  # surface
    pds[12] = when.year % 100 or 100
    pds[13], pds[14], pds[15], pds[16] = when.month, when.day, when.hour, 0
    pds[17] = 1  # hours
    pds[24] = (when.year - 1) // 100 + 1  # century
    gds = bytearray(32)
    gds[0:3] = (32).to_bytes(3, "big")
    gds[3], gds[4], gds[5] = 0, 255, 0  # NV, PV/PL, regular lat/lon
    gds[6:8] = ni.to_bytes(2, "big")
    gds[8:10] = nj.to_bytes(2, "big")

    def angle(v: float) -> bytes:
        milli = round(abs(v) * 1000)
        return (milli | (0x800000 if v < 0 else 0)).to_bytes(3, "big")

    gds[10:13], gds[13:16] = angle(lats[0]), angle(lons[0])
    gds[16] = 0b10000000  # increments given
    gds[17:20], gds[20:23] = angle(lats[1]), angle(lons[1])
    gds[23:25] = round(abs(lons[1] - lons[0]) / max(ni - 1, 1) * 1000).to_bytes(2, "big")
    gds[25:27] = round(abs(lats[1] - lats[0]) / max(nj - 1, 1) * 1000).to_bytes(2, "big")
    gds[27] = 0  # west->east, north->south, rows consecutive
    flat = values.astype(np.float64).ravel()
    ref = float(flat.min())
    span = float(flat.max()) - ref
    scale_e = 0
    if span > 0:
        scale_e = math.ceil(math.log2(span / 65535.0))
    ref_bytes = _ibm_float(ref)
    # decode the IBM reference exactly as a reader will, so packing is relative to it
    b0 = ref_bytes[0]
    ref_dec = (
        (-1 if b0 & 0x80 else 1)
        * int.from_bytes(ref_bytes[1:], "big")
        / (1 << 24)
        * 16.0 ** ((b0 & 0x7F) - 64)
    )
    packed = np.clip(np.rint((flat - ref_dec) / 2.0**scale_e), 0, 65535).astype(">u2").tobytes()
    bds_len = 11 + len(packed)
    pad = bds_len % 2
    bds = bytearray(11)
    bds[0:3] = (bds_len + pad).to_bytes(3, "big")
    bds[3] = 8 * pad  # grid point, simple packing, float; unused bits = the padding byte
    e = scale_e & 0x7FFF | (0x8000 if scale_e < 0 else 0)
    if scale_e < 0:
        e = 0x8000 | (-scale_e)
    bds[4:6] = e.to_bytes(2, "big")
    bds[6:10] = ref_bytes
    bds[10] = 16
    body = bytes(pds) + bytes(gds) + bytes(bds) + packed + b"\x00" * pad + b"7777"
    total = 8 + len(body)
    return b"GRIB" + total.to_bytes(3, "big") + b"\x01" + body


def _ecmwf_grib(extent: tuple[float, ...], epsg: int, when: datetime) -> bytes:
    from pyproj import Transformer

    xmin, ymin, xmax, ymax = extent
    tr = Transformer.from_crs(epsg, 4326, always_xy=True)
    lon0, lat0 = tr.transform(xmin, ymax)
    lon1, lat1 = tr.transform(xmax, ymin)
    n = 9
    jj, ii = np.mgrid[0:n, 0:n] / (n - 1)
    fields = {
        206: 0.0065 + 0.0004 * ii - 0.0002 * jj,  # total column ozone, kg m-2 (~300 DU)
        137: 15.0 + 3.0 * jj + 1.0 * ii,  # total column water vapour, kg m-2
        151: 101_300.0 + 150.0 * ii - 80.0 * jj,  # mean sea level pressure, Pa
    }
    return b"".join(
        _grib1_message(v, p, (lat0, lat1), (lon0, lon1), when) for p, v in fields.items()
    )


# ---------------------------------------------------------------------------------------- write


def _write_jp2(path: Path, dn: np.ndarray, res: int, extent: tuple[float, ...], epsg: int) -> None:
    import rasterio
    from rasterio.transform import Affine

    h, w = dn.shape
    with rasterio.open(
        path, "w", driver="JP2OpenJPEG", width=w, height=h, count=1, dtype="uint16",
        crs=f"EPSG:{epsg}", transform=Affine(res, 0.0, extent[0], 0.0, -res, extent[3]),
        QUALITY=100, REVERSIBLE="YES", BLOCKXSIZE=1024, BLOCKYSIZE=1024,
    ) as ds:  # fmt: skip
        ds.write(dn, 1)
    aux = path.with_name(path.name + ".aux.xml")
    aux.unlink(missing_ok=True)


def _build_safe(
    root: Path,
    product_id: str,
    extent: tuple[float, float, float, float] | None,
    dn: Mapping[str, npt.ArrayLike] | None,
    angles: Mapping[str, float] | None,
    ecmwf: bool,
) -> None:
    """Write the files of ``<product_id>.SAFE`` under the existing folder ``root``."""
    info = ProductId.parse(product_id)
    ext = _check_extent(info.tile, extent)
    g = tile_grid(info.tile)
    stamp = info.sensing.strftime("%Y%m%dT%H%M%S")
    granule = f"L1C_T{info.tile}_A000000_{stamp}"
    img_rel = f"GRANULE/{granule}/IMG_DATA"
    (root / img_rel).mkdir(parents=True)
    image_files = []
    for band in BAND_NAMES:
        res = BAND_RESOLUTION[band]
        shape = (round((ext[3] - ext[1]) / res), round((ext[2] - ext[0]) / res))
        if dn is not None and band in dn:
            data = np.asarray(dn[band])
            if data.shape != shape:
                raise ConfigError(f"dn[{band!r}] has shape {data.shape}, the extent needs {shape}")
            data = data.astype(np.uint16)
        else:
            data = default_dn(band, ext, info.baseline)
        rel = f"{img_rel}/T{info.tile}_{stamp}_{BAND_FILE_SUFFIX[band]}"
        _write_jp2(root / (rel + ".jp2"), data, res, ext, g.epsg)
        image_files.append(rel)
    (root / "MTD_MSIL1C.xml").write_text(_product_xml(product_id, info, image_files))
    (root / f"GRANULE/{granule}/MTD_TL.xml").write_text(_tile_xml(info, ext, angles))
    if ecmwf:
        (root / f"GRANULE/{granule}/AUX_DATA").mkdir(parents=True)
        (root / f"GRANULE/{granule}/AUX_DATA/AUX_ECMWFT").write_bytes(
            _ecmwf_grib(ext, g.epsg, info.sensing)
        )


def _zip_folder(folder: Path, name: str, out: io.BufferedIOBase | Path) -> None:
    with zipfile.ZipFile(out, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                arc = f"{name}/{p.relative_to(folder).as_posix()}"
                # JP2 is already compressed: store it, as GDAL then reads windows without inflating
                method = zipfile.ZIP_STORED if p.suffix == ".jp2" else zipfile.ZIP_DEFLATED
                zf.write(p, arc, compress_type=method)


def write_synthetic_safe(
    dest: str | os.PathLike[str],
    product_id: str,
    *,
    extent: tuple[float, float, float, float] | None = None,
    dn: Mapping[str, npt.ArrayLike] | None = None,
    angles: Mapping[str, float] | None = None,
    ecmwf: bool = False,
    zip: bool = True,  # noqa: A002 - the documented keyword
) -> Path:
    """Write ``dest/<product_id>.zip`` (``zip=True``) or ``dest/<product_id>.SAFE`` atomically and
    return its path. See the module docstring for the parameters."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pid = product_id.removesuffix(".SAFE").removesuffix(".zip")
    if zip:
        with tempfile.TemporaryDirectory(dir=dest, prefix=".synthetic-") as tmp:
            folder = Path(tmp) / f"{pid}.SAFE"
            folder.mkdir()
            _build_safe(folder, pid, extent, dn, angles, ecmwf)
            out = dest / f"{pid}.zip"
            with atomic_path(out) as part:
                _zip_folder(folder, f"{pid}.SAFE", part)
        return out
    out = dest / f"{pid}.SAFE"
    with atomic_dir(out) as folder:
        _build_safe(folder, pid, extent, dn, angles, ecmwf)
    return out


def synthetic_safe_zip_bytes(
    product_id: str,
    *,
    extent: tuple[float, float, float, float] | None = None,
    dn: Mapping[str, npt.ArrayLike] | None = None,
    angles: Mapping[str, float] | None = None,
    ecmwf: bool = False,
) -> bytes:
    """The zip of :func:`write_synthetic_safe` as bytes (for serving a download)."""
    with tempfile.TemporaryDirectory(prefix="synthetic-safe-") as tmp:
        path = write_synthetic_safe(
            tmp, product_id, extent=extent, dn=dn, angles=angles, ecmwf=ecmwf, zip=True
        )
        data = path.read_bytes()
    return data


__all__ = [
    "ProductId",
    "default_dn",
    "dn_for_reflectance",
    "make_product_id",
    "synthetic_safe_zip_bytes",
    "write_synthetic_safe",
]
