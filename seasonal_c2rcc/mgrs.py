"""Sentinel-2 MGRS tile ids: validation, UTM CRS and the tile's UTM grid.

Pure geometry: no I/O. The S2 tile grid is 109 800 m square with its upper-left corner 40 m west and
40 m north of the MGRS 100 km square's north-west corner (``MTD_TL.xml`` of real products, e.g. T24MVA
ULX 399960 / ULY 9600040).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import ConfigError

TILE_ID_PATTERN = r"^(0[1-9]|[1-5][0-9]|60)[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V]$"
_TILE_RE = re.compile(TILE_ID_PATTERN)
_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COLUMN_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")  # indexed by zone % 3
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"
TILE_SIZE_M = 109_800.0
TILE_MARGIN_M = 40.0


def validate_tile_id(tile_id: str) -> str:
    """Return ``tile_id`` without a leading ``T``, upper-cased; raise ``ConfigError`` if invalid."""
    tid = str(tile_id).strip().upper()
    if tid.startswith("T") and len(tid) == 6:
        tid = tid[1:]
    if not _TILE_RE.match(tid):
        raise ConfigError(
            f"invalid MGRS tile id {tile_id!r}: expected zone 01-60, latitude band C-X (no I/O) and a "
            "100 km square, e.g. '30UUA'"
        )
    return tid


def utm_epsg(tile_id: str) -> int:
    """EPSG code of the tile's UTM zone: 326zz for bands N-X, 327zz for bands C-M."""
    tid = validate_tile_id(tile_id)
    zone = int(tid[:2])
    return (32600 if tid[2] >= "N" else 32700) + zone


@dataclass(frozen=True)
class TileGrid:
    """The S2 tile's UTM grid: upper-left corner and size in metres, in ``epsg``."""

    tile_id: str
    epsg: int
    ulx: float
    uly: float
    size: float = TILE_SIZE_M

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the tile's UTM CRS."""
        return (self.ulx, self.uly - self.size, self.ulx + self.size, self.uly)


def _band_min_northing(band: str, zone: int) -> float:
    """Northing of the southern edge of a latitude band at the zone's central meridian."""
    from pyproj import Transformer

    lat = -80 + 8 * _BANDS.index(band)
    south = band < "N"
    epsg = (32700 if south else 32600) + zone
    lon0 = -183 + 6 * zone
    tr = Transformer.from_crs(4326, epsg, always_xy=True)
    return float(tr.transform(lon0, lat)[1])


@lru_cache(maxsize=4096)
def tile_grid(tile_id: str) -> TileGrid:
    """Return the UTM grid of an S2 tile, derived from the MGRS 100 km square of ``tile_id``."""
    tid = validate_tile_id(tile_id)
    zone, band, col, row = int(tid[:2]), tid[2], tid[3], tid[4]
    columns = _COLUMN_SETS[zone % 3]
    if col not in columns:
        raise ConfigError(
            f"invalid MGRS tile id {tile_id!r}: column letter {col!r} does not occur in zone {zone} "
            f"(allowed: {columns})"
        )
    easting = (columns.index(col) + 1) * 100_000.0
    r = _ROW_LETTERS.index(row)
    if zone % 2 == 0:
        r = (r - 5) % 20
    northing = r * 100_000.0
    band_min = _band_min_northing(band, zone)
    # The row letters repeat every 2000 km; pick the cycle that falls in the latitude band.
    while northing + 100_000.0 <= band_min:
        northing += 2_000_000.0
    ulx = easting - TILE_MARGIN_M
    uly = northing + 100_000.0 + TILE_MARGIN_M
    return TileGrid(tile_id=tid, epsg=utm_epsg(tid), ulx=ulx, uly=uly)


def tile_footprint_lonlat(tile_id: str, densify: int = 10) -> list[tuple[float, float]]:
    """Closed ring of the tile's footprint in lon/lat (EPSG:4326), densified along each edge."""
    from pyproj import Transformer

    g = tile_grid(tile_id)
    xmin, ymin, xmax, ymax = g.bounds
    tr = Transformer.from_crs(g.epsg, 4326, always_xy=True)
    ring: list[tuple[float, float]] = []
    corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)]
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:], strict=True):
        for i in range(densify):
            t = i / densify
            ring.append(tuple(map(float, tr.transform(x0 + t * (x1 - x0), y0 + t * (y1 - y0)))))
    ring.append(ring[0])
    return ring
