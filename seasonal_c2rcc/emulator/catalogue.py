"""Deterministic synthetic Sentinel-2 L1C catalogue and the HDA search rules.

Every product is a pure function of its tile, date, platform and relative orbit, so the same
query always returns the same products, in any process, with no stored catalogue. The rules
(revisit, cloud cover, duplicate baselines, partial footprints, sizes) are documented in
``docs/emulator.md``; :func:`products_for_tile` is the single place that applies them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from ..errors import ConfigError
from ..mgrs import TILE_ID_PATTERN, tile_grid, validate_tile_id

DATASET_ID = "EO:ESA:DAT:SENTINEL-2"
PRODUCT_TYPE = "S2MSI1C"
TERMS = ["Copernicus_Sentinel_License"]

#: first acquisition day of each platform, and the day S2C takes over S2A's slot
S2A_START = date(2015, 7, 4)
S2B_START = date(2017, 3, 17)
S2C_START = date(2025, 1, 22)
#: Collection-1 reprocessing (N0500) covers sensing before the PB 04.00 switch
PB04_START = datetime(2022, 1, 25, tzinfo=UTC)
REVISIT_DAYS = 10
#: fraction of pre-2022 acquisitions listed twice (original baseline + N0500)
DUPLICATE_RATE = 0.30
#: fraction of acquisitions whose footprint covers only the west or east part of the tile
PARTIAL_RATE = 0.12
MAX_BBOX_DEG = 10.0

# (first sensing day, baseline) of the operational L1C processing baselines
_BASELINES: tuple[tuple[datetime, str], ...] = (
    (datetime(2015, 1, 1, tzinfo=UTC), "N0204"),
    (datetime(2017, 6, 27, tzinfo=UTC), "N0205"),
    (datetime(2017, 10, 23, tzinfo=UTC), "N0206"),
    (datetime(2018, 11, 6, tzinfo=UTC), "N0207"),
    (datetime(2019, 7, 8, tzinfo=UTC), "N0208"),
    (datetime(2020, 1, 28, tzinfo=UTC), "N0209"),
    (datetime(2021, 3, 30, tzinfo=UTC), "N0300"),
    (datetime(2021, 6, 30, tzinfo=UTC), "N0301"),
    (PB04_START, "N0400"),
    (datetime(2022, 12, 6, tzinfo=UTC), "N0509"),
    (datetime(2023, 12, 13, tzinfo=UTC), "N0510"),
    (datetime(2024, 7, 23, tzinfo=UTC), "N0511"),
)

#: Queryables of EO:ESA:DAT:SENTINEL-2 (wekeo-api.md §1.4) and the type each value must have.
QUERYABLES: dict[str, str] = {
    "dataset_id": "string",
    "productType": "string",
    "processingLevel": "string",
    "tileId": "string",
    "startdate": "datetime",
    "enddate": "datetime",
    "bbox": "bbox",
    "platform": "string",
    "instrument": "string",
    "sensorMode": "string",
    "status": "string",
    "missionTakeId": "string",
    "productIdentifier": "string",
    "startIndex": "index",
    "itemsPerPage": "index",
}
_ENUMS: dict[str, tuple[str, ...]] = {
    "processingLevel": ("S2MSI1C", "S2MSI2A"),
    "platform": ("S2A", "S2B", "S2C"),
    "instrument": ("MSI", "AUX"),
    "status": ("ONLINE", "OFFLINE", "ALL"),
    "sensorMode": ("INS-NOBS", "INS-RAW", "INS-VIC"),
}
_TILE_SCHEMA_RE = re.compile(r"^(0[1-9]|[1-5][0-9]|60)[A-Z]{3}$")
PRODUCT_ID_RE = re.compile(
    r"^(?P<platform>S2[ABC])_MSIL1C_(?P<sensing>\d{8}T\d{6})_(?P<baseline>N\d{4})_"
    r"R(?P<orbit>\d{3})_T(?P<tile>\d{2}[A-Z]{3})_(?P<generation>\d{8}T\d{6})\.SAFE$"
)


class QueryError(Exception):
    """A search request the real service would refuse; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def unit(*parts: object) -> float:
    """Deterministic number in [0, 1) from the parts (catalogue dice, no seed on purpose)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Product:
    """One synthetic S2 L1C product."""

    id: str
    tile: str
    platform: str
    sensing: datetime
    baseline: str
    orbit: int
    generation: datetime
    cloud_cover: float
    size: int
    #: None for a full product, else "west" or "east": the side of the tile that has data
    partial: str | None
    #: UTM easting that bounds the data area of a partial product (pixel edge, multiple of 60 m)
    cut_x: float | None

    @property
    def stem(self) -> str:
        """Product id without ``.SAFE`` (the download file is ``<stem>.zip``)."""
        return self.id[: -len(".SAFE")]

    @property
    def location(self) -> str:
        """The ``properties.location`` the client passes back when ordering."""
        d = self.sensing
        return f"/eodata/Sentinel-2/MSI/L1C/{d:%Y/%m/%d}/{self.id}"

    @property
    def stop(self) -> datetime:
        """Sensing stop: a tile is imaged in about 5 s."""
        return self.sensing + timedelta(seconds=5, microseconds=24_000)

    def utm_data_bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the data area in the tile's UTM CRS."""
        xmin, ymin, xmax, ymax = tile_grid(self.tile).bounds
        if self.partial == "west":
            assert self.cut_x is not None
            xmax = self.cut_x
        elif self.partial == "east":
            assert self.cut_x is not None
            xmin = self.cut_x
        return xmin, ymin, xmax, ymax

    def footprint(self) -> list[tuple[float, float]]:
        """Closed lon/lat ring of the data area (densified UTM rectangle)."""
        return _footprint(self.tile, self.utm_data_bounds())

    def feature(self) -> dict[str, Any]:
        """The HDA search feature for this product (a fresh dict; built once per product)."""
        import copy

        return copy.deepcopy(_feature(self))

    def _build_feature(self) -> dict[str, Any]:
        ring = self.footprint()
        lons = [p[0] for p in ring]
        lats = [p[1] for p in ring]
        iso = "%Y-%m-%dT%H:%M:%S.%fZ"
        return {
            "type": "Feature",
            "id": self.id,
            "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in ring]]},
            "bbox": [min(lons), min(lats), max(lons), max(lats)],
            "properties": {
                "location": self.location,
                "size": self.size,
                "startdate": self.sensing.strftime(iso)[:-4] + "Z",
                "enddate": self.stop.strftime(iso)[:-4] + "Z",
                "title": self.id,
                "status": "ONLINE",
                "metadata": {
                    "cloudCover": self.cloud_cover,
                    "tileId": self.tile,
                    "productType": PRODUCT_TYPE,
                    "processingLevel": PRODUCT_TYPE,
                    "processingBaseline": f"{self.baseline[1:3]}.{self.baseline[3:]}",
                    "platformShortName": "SENTINEL-2",
                    "platformSerialIdentifier": self.platform,
                    "instrumentShortName": "MSI",
                    "relativeOrbitNumber": self.orbit,
                    "orbitDirection": "DESCENDING",
                    "timeliness": "Nominal",
                    "dataCoverage": round(self.coverage * 100, 2),
                    "missionTakeId": self.mission_take_id,
                    "sensorMode": "INS-NOBS",
                },
            },
        }

    @property
    def mission_take_id(self) -> str:
        """Datatake id (alphanumeric, as the queryable's pattern requires)."""
        return f"G{self.platform}{self.sensing:%Y%m%dT%H%M%S}R{self.orbit:03d}"

    @property
    def coverage(self) -> float:
        """Fraction of the tile covered by data."""
        g = tile_grid(self.tile)
        xmin, _, xmax, _ = self.utm_data_bounds()
        return (xmax - xmin) / g.size


@lru_cache(maxsize=8192)
def _feature(product: Product) -> dict[str, Any]:
    return product._build_feature()


@lru_cache(maxsize=8192)
def feature_json(product: Product) -> str:
    """The product's search feature as JSON text (cached)."""
    import json

    return json.dumps(_feature(product))


@lru_cache(maxsize=4096)
def _footprint_cached(
    tile: str, bounds: tuple[float, float, float, float]
) -> tuple[tuple[float, float], ...]:
    from pyproj import Transformer

    g = tile_grid(tile)
    tr = Transformer.from_crs(g.epsg, 4326, always_xy=True)
    xmin, ymin, xmax, ymax = bounds
    corners = [(xmin, ymax), (xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax)]
    ring: list[tuple[float, float]] = []
    steps = 8
    for (x0, y0), (x1, y1) in zip(corners[:-1], corners[1:], strict=True):
        for i in range(steps):
            t = i / steps
            lon, lat = tr.transform(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
            ring.append((round(float(lon), 6), round(float(lat), 6)))
    ring.append(ring[0])
    return tuple(ring)


def _footprint(tile: str, bounds: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    return list(_footprint_cached(tile, bounds))


def _baseline_for(sensing: datetime) -> str:
    current = _BASELINES[0][1]
    for start, baseline in _BASELINES:
        if sensing >= start:
            current = baseline
    return current


@lru_cache(maxsize=4096)
def _tile_orbits(tile: str) -> tuple[tuple[int, int, int], ...]:
    """(relative orbit, day offset within the 10-day cycle, seconds after 00:00 UTC) per orbit.

    Every tile is seen from one relative orbit; half of the tiles also from a second, adjacent
    orbit (swath overlap) three days later in the cycle.
    """
    g = tile_grid(tile)
    from pyproj import Transformer

    lon, _ = Transformer.from_crs(g.epsg, 4326, always_xy=True).transform(
        g.ulx + g.size / 2, g.uly - g.size / 2
    )
    # Local overpass around 11:00 solar time; shift by longitude to get UTC.
    base_s = int((11.0 - float(lon) / 15.0) * 3600) % 86400
    orbit1 = 1 + int(unit("orbit", tile) * 143)
    offset1 = int(unit("offset", tile) * REVISIT_DAYS)
    orbits = [(orbit1, offset1, base_s + int(unit("sec", tile) * 120))]
    if unit("second-orbit", tile) < 0.5:
        orbit2 = (orbit1 - 1 + 43) % 143 + 1
        orbits.append((orbit2, (offset1 + 3) % REVISIT_DAYS, base_s + 690))
    return tuple(orbits)


def _platform_on(day: date, slot: str) -> str | None:
    """Which platform flies the "A" or "B" slot on ``day`` (None before launch)."""
    if slot == "A":
        if day >= S2C_START:
            return "S2C"
        return "S2A" if day >= S2A_START else None
    return "S2B" if day >= S2B_START else None


def _acquisition_products(
    tile: str, day: date, platform: str, orbit: int, seconds: int
) -> list[Product]:
    key = (tile, day.isoformat(), platform, orbit)
    millis = int(unit("ms", *key) * 1000)
    sensing = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
        seconds=seconds, milliseconds=millis
    )
    cloud = round(100.0 * unit("cloud", *key) ** 1.6, 4)
    partial: str | None = None
    cut_x: float | None = None
    g = tile_grid(tile)
    if unit("partial", *key) < PARTIAL_RATE:
        partial = "west" if unit("side", *key) < 0.5 else "east"
        frac = 0.35 + 0.4 * unit("frac", *key)
        cut_x = g.ulx + round(frac * g.size / 60.0) * 60.0
    full_size = 600_000_000 + int(unit("size", *key) * 200_000_000)
    size = full_size
    if partial is not None:
        assert cut_x is not None
        cov = (cut_x - g.ulx) / g.size if partial == "west" else (g.ulx + g.size - cut_x) / g.size
        size = int(full_size * max(cov, 0.3))
    listings: list[tuple[str, datetime]] = []
    if sensing < PB04_START:
        # Collection-1 reprocessing: always listed as N0500, generated in 2023.
        gen = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(
            seconds=int(unit("gen500", *key) * 365 * 86400)
        )
        listings.append(("N0500", gen))
        if unit("duplicate", *key) < DUPLICATE_RATE:
            listings.append((_baseline_for(sensing), _operational_generation(sensing, key)))
    else:
        listings.append((_baseline_for(sensing), _operational_generation(sensing, key)))
    products = []
    for baseline, gen in listings:
        pid = (
            f"{platform}_MSIL1C_{sensing:%Y%m%dT%H%M%S}_{baseline}_R{orbit:03d}_T{tile}_"
            f"{gen:%Y%m%dT%H%M%S}.SAFE"
        )
        # The two baselines of one datatake differ slightly in size (different compression).
        # (kept within the 600-800 MB band of full products).
        shrink = 0.9 + 0.1 * unit("bs", *key)
        bsize = size if baseline == "N0500" else int(size - (full_size - 600_000_000) *
                                                     (1 - shrink) * size / full_size)
        products.append(
            Product(pid, tile, platform, sensing, baseline, orbit, gen, cloud, bsize, partial, cut_x)
        )
    return products


def _operational_generation(sensing: datetime, key: tuple[object, ...]) -> datetime:
    return (sensing + timedelta(hours=1, seconds=int(unit("gen", *key) * 7200))).replace(
        microsecond=0
    )


def products_for_tile(tile: str, start: datetime, end: datetime) -> list[Product]:
    """All products of ``tile`` sensed in [start, end] (and not after now), sorted by time/id."""
    tid = validate_tile_id(tile)
    tile_grid(tid)  # raises ConfigError for impossible 100 km squares
    if not tile_in_catalogue(tid):
        return []
    # Naive datetimes are taken as UTC.
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    end = min(end, datetime.now(UTC))
    if end < start:
        return []
    out: list[Product] = []
    for year in range(max(start.year, S2A_START.year), end.year + 1):
        out.extend(p for p in _year_products(tid, year) if start <= p.sensing <= end)
    return out


@lru_cache(maxsize=1024)
def _year_products(tile: str, year: int) -> tuple[Product, ...]:
    """Every product of ``tile`` sensed in ``year`` (cached: searches repeat a lot)."""
    first = max(date(year, 1, 1), S2A_START)
    last = date(year, 12, 31)
    products: list[Product] = []
    for orbit, offset, seconds in _tile_orbits(tile):
        for slot, slot_offset in (("A", 0), ("B", 5)):
            phase = (offset + slot_offset) % REVISIT_DAYS
            # first day >= first with (day - S2A_START) % 10 == phase
            delta = (first - S2A_START).days
            day = first + timedelta(days=(phase - delta) % REVISIT_DAYS)
            while day <= last:
                platform = _platform_on(day, slot)
                if platform is not None:
                    products.extend(_acquisition_products(tile, day, platform, orbit, seconds))
                day += timedelta(days=REVISIT_DAYS)
    products.sort(key=lambda p: (p.sensing, p.id))
    return tuple(products)


@lru_cache(maxsize=8192)
def product_by_id(product_id: str) -> Product | None:
    """The catalogue product with this exact id, or None if the catalogue has no such product."""
    m = PRODUCT_ID_RE.match(product_id)
    if not m:
        return None
    try:
        sensing_s = datetime.strptime(m["sensing"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        tile = validate_tile_id(m["tile"])
        tile_grid(tile)
    except (ValueError, ConfigError):
        return None
    for p in products_for_tile(tile, sensing_s, sensing_s + timedelta(seconds=1)):
        if p.id == product_id:
            return p
    return None


# --- bbox -> tiles ---------------------------------------------------------------------------

_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COLUMN_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"


@lru_cache(maxsize=8192)
def tile_in_catalogue(tile: str) -> bool:
    """True if ``tile`` names a square that really lies in its latitude band.

    ``mgrs.tile_grid`` accepts any band letter for a 100 km square (e.g. 30TUA gives 30UUA's
    grid); the archive only has tiles whose footprint overlaps the band named in the id.
    """
    try:
        tid = validate_tile_id(tile)
        g = tile_grid(tid)
    except ConfigError:
        return False
    lats = [lat for _lon, lat in _footprint(tid, g.bounds)]
    band_s = -80.0 + 8.0 * _BANDS.index(tid[2])
    band_n = 84.0 if tid[2] == "X" else band_s + 8.0
    return min(lats) < band_n and max(lats) > band_s


def _tile_id(zone: int, band_i: int, col_i: int, row_i: int) -> str | None:
    """A valid S2 tile id from zone, latitude-band index, column and row indices, or None."""
    if not (1 <= zone <= 60 and 0 <= band_i < len(_BANDS) and 0 <= col_i < 8):
        return None
    col = _COLUMN_SETS[zone % 3][col_i]
    r = row_i % 20
    if zone % 2 == 0:
        r = (r + 5) % 20
    tid = f"{zone:02d}{_BANDS[band_i]}{col}{_ROW_LETTERS[r]}"
    return tid if tile_in_catalogue(tid) else None


def tiles_for_bbox(bbox: tuple[float, float, float, float]) -> list[str]:
    """Tile ids whose footprint intersects the lon/lat ``bbox`` (W, S, E, N).

    Candidates come from a 0.05° sample of the box, expressed in the sample's UTM zone and both
    neighbouring zones (S2 tiles reach past zone edges), with the neighbouring latitude bands
    (100 km squares straddle band edges) and the 9.8 km tile overlap; each candidate is then
    kept only if its footprint really intersects the box.
    """
    import numpy as np
    from pyproj import Transformer
    from shapely.geometry import Polygon, box

    w, s, e, n = bbox
    lats = np.linspace(s, n, max(2, int((n - s) / 0.05) + 2))
    lons = np.linspace(w, e, max(2, int((e - w) / 0.05) + 2))
    glon, glat = (a.ravel() for a in np.meshgrid(lons, lats))
    zone_of = np.clip(((glon + 180.0) // 6.0).astype(int) + 1, 1, 60)
    band_of = np.clip(((glat + 80.0) // 8.0).astype(int), 0, len(_BANDS) - 1)
    combos: set[tuple[int, int, int, int]] = set()
    for zone in sorted({int(z) + d for z in np.unique(zone_of) for d in (-1, 0, 1)}):
        zone = (zone - 1) % 60 + 1
        for south in (False, True):
            part = (glat < 0) if south else (glat >= 0)
            if not part.any():
                continue
            epsg = (32700 if south else 32600) + zone
            xs, ys = Transformer.from_crs(4326, epsg, always_xy=True).transform(
                glon[part], glat[part])
            bands = band_of[part]
            # The 109.8 km tiles overlap their east/south neighbours by 9.8 km.
            for dx, dy in ((0, 0), (-9_800, 0), (0, 9_800), (-9_800, 9_800)):
                cols = ((np.asarray(xs) + dx) // 100_000).astype(int) - 1
                rows = ((np.asarray(ys) + dy) // 100_000).astype(int)
                for db in (-1, 0, 1):
                    keys = np.stack([cols, rows, bands + db], axis=1)
                    for c, r, b in np.unique(keys, axis=0):
                        combos.add((zone, int(b), int(c), int(r)))
    query = box(w, s, e, n)
    out = set()
    for zone, b, c, r in combos:
        tid = _tile_id(zone, b, c, r)
        if tid is None or tid in out:
            continue
        if Polygon(_footprint(tid, tile_grid(tid).bounds)).intersects(query):
            out.add(tid)
    return sorted(out)


# --- search ----------------------------------------------------------------------------------


@dataclass
class Query:
    """A validated search query."""

    tiles: list[str] | None
    start: datetime
    end: datetime
    bbox: tuple[float, float, float, float] | None
    product_type: str | None
    platform: str | None
    product_identifier: str | None
    start_index: int
    items_per_page: int
    status: str | None = None
    instrument: str | None = None
    sensor_mode: str | None = None
    mission_take_id: str | None = None


def _parse_datetime(key: str, value: str) -> datetime:
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise QueryError(
            f"'{value}' is not a valid date-time for '{key}' (expected e.g. 2020-06-23T00:00:00.000Z)"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _parse_index(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise QueryError(f"'{key}' must be an integer")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.isdigit():
        n = int(value)
    else:
        raise QueryError(f"'{key}' must be an integer, got {value!r}")
    if n < 0:
        raise QueryError(f"'{key}' must be >= 0")
    return n


def parse_query(body: Any) -> Query:
    """Validate a search body as the HDA broker does; raise :class:`QueryError` on refusal."""
    if not isinstance(body, dict):
        raise QueryError("The search request must be a JSON object")
    if "dataset_id" not in body:
        raise QueryError("'dataset_id' is a required property")
    unknown = sorted(k for k in body if k not in QUERYABLES)
    if unknown:
        raise QueryError(
            f"Unknown query parameter(s) for {DATASET_ID}: {', '.join(unknown)}. "
            f"Allowed: {', '.join(QUERYABLES)}"
        )
    for key, value in body.items():
        kind = QUERYABLES[key]
        if isinstance(value, dict):
            raise QueryError(
                f"'{key}': filter objects such as {{\"lte\": ...}} are not supported; "
                "give a plain value"
            )
        if kind in ("string", "datetime") and not isinstance(value, str):
            raise QueryError(f"'{key}' must be a string, got {type(value).__name__}")
    if body["dataset_id"] != DATASET_ID:
        raise QueryError(f"Dataset {body['dataset_id']!r} not found", status=404)
    for key, allowed in _ENUMS.items():
        if key in body and body[key] not in allowed:
            raise QueryError(f"'{key}' must be one of {', '.join(allowed)}, got {body[key]!r}")
    tiles: list[str] | None = None
    if "tileId" in body:
        if not _TILE_SCHEMA_RE.match(body["tileId"]):
            raise QueryError(
                f"'tileId' {body['tileId']!r} does not match '^(0[1-9]|[1-5][0-9]|60)[A-Z]{{3}}$'"
            )
        tiles = [body["tileId"]] if re.match(TILE_ID_PATTERN, body["tileId"]) else []
    bbox = None
    if "bbox" in body:
        b = body["bbox"]
        if (
            not isinstance(b, list)
            or len(b) != 4
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in b)
        ):
            raise QueryError("'bbox' must be an array of 4 numbers [W, S, E, N]")
        w, s, e, n = (float(v) for v in b)
        if not (-180 <= w <= 180 and -180 <= e <= 180 and -90 <= s <= 90 and -90 <= n <= 90):
            raise QueryError("'bbox' longitudes must be within ±180 and latitudes within ±90")
        if w > e or s > n:
            raise QueryError("'bbox' must be [W, S, E, N] with W <= E and S <= N")
        bbox = (w, s, e, n)
    start = _parse_datetime("startdate", body["startdate"]) if "startdate" in body else None
    end = _parse_datetime("enddate", body["enddate"]) if "enddate" in body else None
    start = start or datetime(2015, 6, 23, tzinfo=UTC)
    end = end or datetime.now(UTC)
    if tiles is None:
        if bbox is None:
            raise QueryError(
                "This emulator needs 'tileId' or 'bbox' to bound a Sentinel-2 search", status=400
            )
        if bbox[2] - bbox[0] > MAX_BBOX_DEG or bbox[3] - bbox[1] > MAX_BBOX_DEG:
            raise QueryError(f"'bbox' larger than {MAX_BBOX_DEG} degrees; narrow the search")
        tiles = tiles_for_bbox(bbox)
    product_type = body.get("productType") or body.get("processingLevel")
    if body.get("productType") and body.get("processingLevel"):
        if body["productType"] != body["processingLevel"]:
            product_type = "__none__"
    items = _parse_index("itemsPerPage", body.get("itemsPerPage", 100))
    if not 1 <= items <= 200:
        raise QueryError("'itemsPerPage' must be between 1 and 200")
    return Query(
        tiles=tiles,
        start=start,
        end=end,
        bbox=bbox,
        product_type=product_type,
        platform=body.get("platform"),
        product_identifier=body.get("productIdentifier"),
        status=body.get("status"),
        instrument=body.get("instrument"),
        sensor_mode=body.get("sensorMode"),
        mission_take_id=body.get("missionTakeId"),
        start_index=_parse_index("startIndex", body.get("startIndex", 0)),
        items_per_page=items,
    )


def search(q: Query) -> list[Product]:
    """All products matching a validated query, in catalogue order."""
    from shapely.geometry import Polygon, box

    if q.product_type not in (None, PRODUCT_TYPE):
        return []
    out: list[Product] = []
    for tile in q.tiles or []:
        out.extend(products_for_tile(tile, q.start, q.end))
    if q.platform:
        out = [p for p in out if p.platform == q.platform]
    # Every emulated product is an online MSI nominal observation with one datatake id.
    if q.status == "OFFLINE" or q.instrument not in (None, "MSI"):
        return []
    if q.sensor_mode not in (None, "INS-NOBS"):
        return []
    if q.mission_take_id:
        out = [p for p in out if p.mission_take_id == q.mission_take_id]
    if q.product_identifier:
        out = [p for p in out if q.product_identifier in p.id]
    if q.bbox is not None:
        qbox = box(*q.bbox)
        out = [p for p in out if Polygon(p.footprint()).intersects(qbox)]
    out.sort(key=lambda p: (p.sensing, p.id))
    return out


def queryable_schema() -> dict[str, Any]:
    """JSON schema of the dataset's queryables (GET dataaccess/queryable/{id})."""
    props: dict[str, Any] = {
        "dataset_id": {"type": "string", "const": DATASET_ID},
        "productType": {"type": "string", "enum": ["S2MSI1C", "S2MSI2A"]},
        "processingLevel": {"type": "string", "enum": list(_ENUMS["processingLevel"])},
        "tileId": {"type": "string", "pattern": _TILE_SCHEMA_RE.pattern},
        "startdate": {"type": "string", "format": "date-time"},
        "enddate": {"type": "string", "format": "date-time"},
        "bbox": {
            "type": "array",
            "minItems": 4,
            "maxItems": 4,
            "items": {"type": "number"},
        },
        "platform": {"type": "string", "enum": list(_ENUMS["platform"])},
        "instrument": {"type": "string", "enum": list(_ENUMS["instrument"])},
        "sensorMode": {"type": "string", "enum": list(_ENUMS["sensorMode"])},
        "status": {"type": "string", "enum": list(_ENUMS["status"])},
        "missionTakeId": {"type": "string", "pattern": "^[a-zA-Z0-9]+$"},
        "productIdentifier": {"type": "string", "pattern": "^[a-zA-Z0-9]+$"},
        "startIndex": {"type": "string", "pattern": "^[0-9]+$"},
        "itemsPerPage": {"type": "string", "pattern": "^[0-9]+$"},
    }
    return {
        "type": "object",
        "properties": props,
        "required": ["dataset_id"],
        "additionalProperties": False,
    }


def dataset_info() -> dict[str, Any]:
    """GET datasets/{id} reply."""
    return {
        "dataset_id": DATASET_ID,
        "title": "Sentinel-2 (emulated)",
        "abstract": "Synthetic Sentinel-2 MSI Level-1C products served by the local emulator.",
        "terms": list(TERMS),
    }
