"""What the emulator serves as data: stand-in L1C zips and synthetic C2RCC pixel values.

* :func:`safe_zip_path` is what an HDA order serves: a real, small Sentinel-2 L1C SAFE zip
  (:mod:`seasonal_c2rcc.s2l1c.synthetic`: real folder and file names, 13 JP2 bands, both metadata
  files with the baseline's offsets, angle grids) covering a window of the tile
  (:data:`DEFAULT_PRODUCT_EXTENT`), made on first use and kept under the emulator's state folder.
  The catalogue advertises a realistic ``size`` (600-800 MB) for billing; the served zip is under
  1 MB, and ``Content-Length`` always states the served byte count exactly.
* :func:`product_zip` builds the older metadata-only stand-in (``--product-payload stub``).
* :func:`c2rcc_fields` computes C2RCC outputs for a product on any set of UTM pixel centres. The
  values depend only on (product id, absolute UTM pixel centre), never on the requested region,
  so a big job and a small job give identical values on their shared pixels.
"""

from __future__ import annotations

import hashlib
import io
import math
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist

import numpy as np

from ..atomic import atomic_path
from ..flags import FLAG_MASKS
from ..mgrs import tile_grid
from .catalogue import Product, unit

RRS_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A")
RHOWN_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6")
RTOA_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12")
WAVELENGTHS = {
    "B1": 443.0, "B2": 490.0, "B3": 560.0, "B4": 665.0, "B5": 705.0, "B6": 740.0, "B7": 783.0,
    "B8": 842.0, "B8A": 865.0, "B9": 945.0, "B10": 1375.0, "B11": 1610.0, "B12": 2190.0,
}  # fmt: skip
# Pure-water absorption (m-1) and relative pigment absorption at the C2RCC bands.
_AW = np.array([0.0071, 0.015, 0.0619, 0.429, 0.704, 2.71, 2.62, 4.61])
_APH_SHAPE = np.array([1.0, 0.72, 0.25, 0.45, 0.12, 0.02, 0.01, 0.0])
_RTOA_PATH = np.array(
    [0.12, 0.10, 0.07, 0.05, 0.045, 0.04, 0.035, 0.032, 0.03, 0.01, 0.002, 0.015, 0.01]
)


@dataclass(frozen=True)
class C2rccParams:
    """The c2rcc.msi parameters that shape the emulated output."""

    output_as_rrs: bool = False
    chl_fac: float = 21.0
    chl_exp: float = 1.04
    tsm_fac: float = 1.06
    tsm_exp: float = 0.942
    output_rtoa: bool = True
    output_ac_reflectance: bool = True
    output_rhown: bool = True
    output_kd: bool = True
    output_uncertainties: bool = True
    output_oos: bool = False
    net_set: str = "C2RCC-Nets"
    valid_pixel_expression: str = "B8 > 0 && B8 < 0.1"


# --- served downloads -------------------------------------------------------------------------

#: What an HDA download serves: ``safe`` (a real SAFE zip, the default) or ``stub`` (the older
#: metadata-only stand-in, a few KB).
PRODUCT_PAYLOADS = ("safe", "stub")

#: Window of every served SAFE, as metres east and south of its tile's upper-left corner
#: (x0, y0, x1, y1) on the 60 m grid: config/subtiles/demo_30UUA.json (the demo and the workflow
#: tests: UTM 300000-320000 E, 5540000-5550000 N on 30UUA), plus one 60 m pixel east and south.
#: 20.1 x 10.1 km keeps a product near 0.6 MB.
DEFAULT_PRODUCT_EXTENT: tuple[float, float, float, float] = (0.0, 49_980.0, 20_100.0, 60_120.0)


def parse_extent(text: str) -> tuple[float, float, float, float]:
    """``"x0,y0,x1,y1"`` (metres from the tile's upper-left corner) -> a checked tuple."""
    try:
        x0, y0, x1, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(
            f"product extent {text!r}: expected x0,y0,x1,y1 in metres east and south of the "
            "tile's upper-left corner, e.g. 0,49980,20100,60120"
        ) from None
    return check_extent((x0, y0, x1, y1))


def check_extent(offsets: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Offsets inside the 109.8 km tile, non-empty, on the 60 m grid; else ``ValueError``."""
    x0, y0, x1, y1 = (float(v) for v in offsets)
    if not (0 <= x0 < x1 <= 109_800 and 0 <= y0 < y1 <= 109_800):
        raise ValueError(f"product extent {offsets}: empty or outside the tile (0..109800 m)")
    if any(abs(v / 60 - round(v / 60)) > 1e-9 for v in (x0, y0, x1, y1)):
        raise ValueError(f"product extent {offsets}: every value must be a multiple of 60 m")
    return (x0, y0, x1, y1)


def product_extent(tile: str, offsets: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The UTM (xmin, ymin, xmax, ymax) of ``offsets`` on ``tile``."""
    g = tile_grid(tile)
    x0, y0, x1, y1 = offsets
    return (g.ulx + x0, g.uly - y1, g.ulx + x1, g.uly - y0)


def _partial_dn(product: Product, extent: tuple[float, ...]) -> dict[str, np.ndarray] | None:
    """Default DNs with DN 0 (no-data) outside a partial product's data area; None if full."""
    if product.partial is None:
        return None
    from ..s2l1c.metadata import BAND_NAMES, BAND_RESOLUTION
    from ..s2l1c.synthetic import ProductId, default_dn

    baseline = ProductId.parse(product.stem).baseline
    xmin, _, xmax, _ = product.utm_data_bounds()
    out = {}
    for band in BAND_NAMES:
        dn = default_dn(band, extent, baseline).copy()
        res = BAND_RESOLUTION[band]
        x = extent[0] + (np.arange(dn.shape[1]) + 0.5) * res
        dn[:, (x < xmin) | (x >= xmax)] = 0
        out[band] = dn
    return out


_SAFE_LOCKS: dict[str, threading.Lock] = {}
_SAFE_LOCKS_GUARD = threading.Lock()
#: Zips made in this process, by (product, window): an emulator started again (a test's fresh
#: state folder) copies them instead of encoding 13 JP2s again.
_MADE: OrderedDict[tuple[str, tuple[float, ...]], bytes] = OrderedDict()
_MADE_MAX = 64


def safe_zip_path(
    product: Product,
    cache_dir: Path,
    offsets: tuple[float, float, float, float] = DEFAULT_PRODUCT_EXTENT,
) -> Path:
    """The SAFE zip served for ``product``: made once (per window) under ``cache_dir``, then
    re-used; concurrent requests for one product wait for a single build."""
    from ..s2l1c.synthetic import write_synthetic_safe

    tag = hashlib.sha256(repr(tuple(float(v) for v in offsets)).encode()).hexdigest()[:12]
    folder = Path(cache_dir) / tag
    path = folder / f"{product.stem}.zip"
    if path.exists():
        return path
    with _SAFE_LOCKS_GUARD:
        lock = _SAFE_LOCKS.setdefault(str(path), threading.Lock())
    memo = (product.id, tuple(float(v) for v in offsets))
    with lock:
        if not path.exists():
            with _SAFE_LOCKS_GUARD:
                made = _MADE.get(memo)
            if made is not None:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(made)
                return path
            extent = product_extent(product.tile, offsets)
            write_synthetic_safe(
                folder, product.stem, extent=extent, dn=_partial_dn(product, extent)
            )
            with _SAFE_LOCKS_GUARD:
                _MADE[memo] = path.read_bytes()
                while len(_MADE) > _MADE_MAX:
                    _MADE.popitem(last=False)
    return path


# --- stand-in download ----------------------------------------------------------------------

_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


@lru_cache(maxsize=256)
def product_zip(product: Product) -> bytes:
    """Deterministic stand-in zip for ``product`` (SAFE skeleton with the real metadata keys)."""
    g = tile_grid(product.tile)
    safe = product.id
    mtd = f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd">
  <n1:General_Info><Product_Info>
    <PRODUCT_START_TIME>{product.sensing:%Y-%m-%dT%H:%M:%S.%f}</PRODUCT_START_TIME>
    <PRODUCT_URI>{safe}</PRODUCT_URI>
    <PROCESSING_LEVEL>Level-1C</PROCESSING_LEVEL>
    <PRODUCT_TYPE>S2MSI1C</PRODUCT_TYPE>
    <PROCESSING_BASELINE>{product.baseline[1:3]}.{product.baseline[3:]}</PROCESSING_BASELINE>
    <GENERATION_TIME>{product.generation:%Y-%m-%dT%H:%M:%S}.000000Z</GENERATION_TIME>
    <Datatake><SPACECRAFT_NAME>Sentinel-{product.platform[2]}</SPACECRAFT_NAME>
      <SENSING_ORBIT_NUMBER>{product.orbit}</SENSING_ORBIT_NUMBER></Datatake>
  </Product_Info></n1:General_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>{product.cloud_cover}</Cloud_Coverage_Assessment>
  </n1:Quality_Indicators_Info>
</n1:Level-1C_User_Product>
"""
    tl = f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-1C_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-1C_Tile_Metadata.xsd">
  <n1:Geometric_Info><Tile_Geocoding>
    <HORIZONTAL_CS_CODE>EPSG:{g.epsg}</HORIZONTAL_CS_CODE>
    <Geoposition resolution="10"><ULX>{g.ulx:.0f}</ULX><ULY>{g.uly:.0f}</ULY>
      <XDIM>10</XDIM><YDIM>-10</YDIM></Geoposition>
  </Tile_Geocoding></n1:Geometric_Info>
</n1:Level-1C_Tile_ID>
"""
    readme = (
        "Stand-in payload served by the seasonal-c2rcc WEkEO emulator. The real product is a\n"
        f"{product.size}-byte L1C zip; this archive only carries its metadata.\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        granule = f"L1C_T{product.tile}_A000000_{product.sensing:%Y%m%dT%H%M%S}"
        for name, text in (
            (f"{safe}/MTD_MSIL1C.xml", mtd),
            (f"{safe}/GRANULE/{granule}/MTD_TL.xml", tl),
            (f"{safe}/EMULATOR_README.txt", readme),
        ):
            zf.writestr(zipfile.ZipInfo(name, date_time=_ZIP_DATE), text)
    return buf.getvalue()


# --- synthetic C2RCC values ------------------------------------------------------------------


def _waves(key: str, n: int, lmin: float, lmax: float) -> list[tuple[float, float, float]]:
    """(kx, ky, phase) of ``n`` plane waves with wavelengths in [lmin, lmax] metres."""
    out = []
    for i in range(n):
        lam = lmin * (lmax / lmin) ** unit("lam", key, i)
        ang = 2 * math.pi * unit("ang", key, i)
        k = 2 * math.pi / lam
        out.append((k * math.cos(ang), k * math.sin(ang), 2 * math.pi * unit("phi", key, i)))
    return out


def smooth_field(key: str, xs: np.ndarray, ys: np.ndarray, lmin: float, lmax: float) -> np.ndarray:
    """Smooth, roughly standard-normal field on absolute UTM pixel centres.

    ``xs`` (1-D, columns) and ``ys`` (1-D, rows) give a (len(ys), len(xs)) grid. Each plane wave
    cos(kx*x + ky*y + phase) is split into outer products of 1-D terms, which is exact and keeps
    the cost linear in the number of pixels.
    """
    n = 8
    acc = np.zeros((ys.size, xs.size), dtype=np.float64)
    for kx, ky, ph in _waves(key, n, lmin, lmax):
        # Reduce the large UTM phases modulo 2*pi in float64 before the trig functions.
        ax = np.mod(kx * xs + ph, 2 * np.pi)
        by = np.mod(ky * ys, 2 * np.pi)
        acc += np.outer(np.cos(by), np.cos(ax)) - np.outer(np.sin(by), np.sin(ax))
    return acc * math.sqrt(2.0 / n)


def acquisition_key(product: Product) -> str:
    """Key shared by every baseline of one acquisition (platform, sensing time, orbit, tile)."""
    return f"{product.platform}|{product.sensing:%Y%m%dT%H%M%S}|{product.orbit}|{product.tile}"


def land_mask(tile: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True on the emulated land: a wavy coast cutting off the tile's north-east corner."""
    g = tile_grid(tile)
    u = (x - g.ulx) / g.size
    v = (g.uly - y) / g.size
    coast = u - v + 0.06 * np.sin(2 * np.pi * (3 * v + 0.2)) + 0.04 * np.sin(2 * np.pi * 5 * u)
    return coast > 0.55


def c2rcc_fields(
    product: Product, xs: np.ndarray, ys: np.ndarray, params: C2rccParams
) -> dict[str, np.ndarray]:
    """C2RCC output bands (SNAP names, float32, c2rcc_flags uint32) on the pixel-centre grid.

    ``xs`` (1-D, west to east) and ``ys`` (1-D, north to south) are absolute UTM pixel-centre
    coordinates in the product tile's CRS.
    """
    xs = np.asarray(xs, np.float64)
    ys = np.asarray(ys, np.float64)
    x, y = np.meshgrid(xs, ys)
    tile = product.tile
    # Both baselines of one acquisition share its clouds and water; only radiometry differs.
    pid = acquisition_key(product)
    radiometry = 1.0 + (0.0 if product.baseline == "N0500" else 0.015)
    # Cloud: the catalogue's cloudCover is the fraction of the tile above the threshold.
    cc = min(max(product.cloud_cover, 0.5), 99.5) / 100.0
    t_cloud = NormalDist().inv_cdf(1.0 - cc)
    z_cloud = smooth_field(f"cloud|{pid}", xs, ys, 4_000.0, 30_000.0)
    cloud_core = z_cloud > t_cloud + 0.5
    cloud_risk = z_cloud > t_cloud - 0.15
    xmin, ymin, xmax, ymax = product.utm_data_bounds()
    nodata = (x < xmin) | (x >= xmax) | (y <= ymin) | (y > ymax)
    invalid = nodata | land_mask(tile, x, y) | cloud_core
    valid = ~invalid

    # Mix a tile-level pattern (stable between dates) with a per-product one.
    def mixed(name: str, lmin: float, lmax: float) -> np.ndarray:
        a = smooth_field(f"{name}|{tile}", xs, ys, lmin, lmax)
        b = smooth_field(f"{name}|{pid}", xs, ys, lmin, lmax)
        return 0.8 * a + 0.6 * b

    chl_raw = np.exp(math.log(1.2) + 0.85 * mixed("chl", 3_000.0, 40_000.0))
    chl = np.clip(chl_raw, 0.1, 20.0)
    tsm_raw = np.exp(math.log(2.5) + 0.8 * mixed("tsm", 3_000.0, 40_000.0))
    tsm = np.clip(tsm_raw, 0.05, 80.0)
    agelb = np.exp(math.log(0.08) + 0.5 * mixed("cdom", 5_000.0, 50_000.0))
    apig = (chl / params.chl_fac) ** (1.0 / params.chl_exp)
    btot = (tsm / params.tsm_fac) ** (1.0 / params.tsm_exp)
    bpart = 0.72 * btot
    bwit = btot - bpart
    adet = 0.004 + 0.012 * tsm**0.7
    kd489 = 0.0166 + 0.0773 * chl**0.6716 + 0.012 * tsm
    kdmin = 0.86 * kd489

    # Reflectance from a simple bb/(a+bb) model; cloud margins are brightened.
    nb = len(RRS_BANDS)
    lam = np.array([WAVELENGTHS[b] for b in RRS_BANDS])
    bbp = (0.015 * btot)[..., None] * (443.0 / lam)
    bbw = 0.0012 * (443.0 / lam) ** 4.3
    a = (
        _AW
        + apig[..., None] * _APH_SHAPE
        + (adet + agelb)[..., None] * np.exp(-0.015 * (lam - 443.0))
    )
    rrs = 0.089 * (bbp + bbw) / (a + bbp + bbw) * 0.52
    haze = np.where(cloud_risk, 0.004 * (1.0 + np.clip(z_cloud - t_cloud, 0, 1)), 0.0)
    rrs = (rrs + haze[..., None] * 0.2) * radiometry
    rhow = rrs * math.pi

    out: dict[str, np.ndarray] = {}
    if params.output_rtoa:
        tr = 0.75
        for i, band in enumerate(RTOA_BANDS):
            j = min(i, nb - 1) if band not in ("B8", "B9", "B10", "B11", "B12") else nb - 1
            out[f"rtoa_{band}"] = _RTOA_PATH[i] + tr * rhow[..., j] + 0.3 * haze
    if params.output_ac_reflectance:
        prefix = "rrs" if params.output_as_rrs else "rhow"
        vals = rrs if params.output_as_rrs else rhow
        for i, band in enumerate(RRS_BANDS):
            out[f"{prefix}_{band}"] = vals[..., i]
    if params.output_rhown:
        for i, band in enumerate(RHOWN_BANDS):
            out[f"rhown_{band}"] = rhow[..., i] * 1.02
    out["iop_apig"] = apig
    out["iop_adet"] = adet
    out["iop_agelb"] = agelb
    out["iop_bpart"] = bpart
    out["iop_bwit"] = bwit
    out["iop_adg"] = adet + agelb
    out["iop_atot"] = apig + adet + agelb
    out["iop_btot"] = bpart + bwit
    if params.output_kd:
        out["kd489"] = kd489
        out["kdmin"] = kdmin
        out["kd_z90max"] = 1.0 / kdmin
    out["conc_tsm"] = params.tsm_fac * (bpart + bwit) ** params.tsm_exp
    out["conc_chl"] = params.chl_fac * apig**params.chl_exp
    if params.output_oos:
        out["oos_rtosa"] = np.abs(0.01 * smooth_field(f"oos|{pid}", xs, ys, 2_000.0, 20_000.0))
        out["oos_rhow"] = np.abs(0.03 * smooth_field(f"oosw|{pid}", xs, ys, 2_000.0, 20_000.0))
    if params.output_uncertainties:
        unc_apig = 0.12 * apig + 0.002
        unc_adet = 0.2 * adet
        unc_agelb = 0.15 * agelb
        unc_bpart = 0.1 * bpart
        unc_bwit = 0.15 * bwit
        unc_btot = np.hypot(unc_bpart, unc_bwit)
        out["unc_apig"] = unc_apig
        out["unc_adet"] = unc_adet
        out["unc_agelb"] = unc_agelb
        out["unc_bpart"] = unc_bpart
        out["unc_bwit"] = unc_bwit
        out["unc_adg"] = np.hypot(unc_adet, unc_agelb)
        out["unc_atot"] = np.sqrt(unc_apig**2 + unc_adet**2 + unc_agelb**2)
        out["unc_btot"] = unc_btot
        out["unc_tsm"] = params.tsm_fac * unc_btot
        out["unc_chl"] = params.chl_fac * unc_apig**params.chl_exp
        if params.output_kd:
            out["unc_kd489"] = 0.1 * kd489
            out["unc_kdmin"] = 0.1 * kdmin
            out["unc_kd_z90max"] = 0.1 / kdmin

    flags = np.full(x.shape, FLAG_MASKS["Valid_PE"], dtype=np.uint32)
    flags[cloud_risk] |= FLAG_MASKS["Cloud_risk"]
    flags[cloud_risk & (z_cloud > t_cloud + 0.3)] |= FLAG_MASKS["Rtosa_OOR"]
    flags[chl_raw >= 20.0] |= FLAG_MASKS["Apig_at_max"]
    flags[chl_raw <= 0.1] |= FLAG_MASKS["Apig_at_min"]
    flags[tsm_raw >= 80.0] |= FLAG_MASKS["Iop_OOR"] | FLAG_MASKS["Bpart_at_max"]
    flags[tsm_raw <= 0.05] |= FLAG_MASKS["Bpart_at_min"]
    z_rhow = smooth_field(f"rhowoor|{pid}", xs, ys, 1_500.0, 12_000.0)
    flags[z_rhow > 2.3] |= FLAG_MASKS["Rhow_OOR"]
    if params.output_kd:
        flags[kd489 > 2.5] |= FLAG_MASKS["Kd489_OOR"] | FLAG_MASKS["Kd489_at_max"]
        flags[kd489 > 2.5] |= FLAG_MASKS["Kdmin_at_max"]  # SNAP bug: tests kd489 (c2rcc §1.6)
    if params.output_oos:
        flags[out["oos_rtosa"] > 0.05] |= FLAG_MASKS["Rtosa_OOS"]
        flags[out["oos_rhow"] > 0.1] |= FLAG_MASKS["Rhow_OOS"]

    result: dict[str, np.ndarray] = {}
    for name, arr in out.items():
        a32 = np.asarray(arr, dtype=np.float32)
        a32 = np.where(valid, a32, np.float32(0.0)).astype(np.float32)
        result[name] = a32
    result["c2rcc_flags"] = np.where(valid, flags, np.uint32(0)).astype(np.uint32)
    return result
