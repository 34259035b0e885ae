"""Sub-tile grids: one loader for every grid-file form users have, and raster grids in the S2 tile grid.

Grid-file forms (all read by :func:`load_subtiles`):

(a) JSON ``{tile_id: [WKT, ...]}`` with polygons in projected metres (CRS given by ``crs``; the first
    user's file is in EPSG:32630 even for tiles of other zones, so it is never guessed from the tile);
(b) the same with lon/lat WKT (detected from the coordinate ranges, or ``crs="EPSG:4326"``);
(c) JSON ``{id: {"geoRegion": WKT, "tileId": ...}}``;
(d) any vector file geopandas reads (GeoJSON, GeoPackage, Shapefile) with tile and id columns.

Sub-tile ids: the list index for (a)/(b), the key for (c), the id column for (d). Every polygon is
converted to the tile's own UTM zone (from the tile id) and to lon/lat, exactly, with pyproj.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pyproj import CRS, Transformer
from shapely import wkt as shapely_wkt
from shapely.errors import ShapelyError
from shapely.geometry import Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import transform as shapely_transform

from .errors import ConfigError
from .mgrs import tile_grid, utm_epsg, validate_tile_id

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TILE_COLUMNS = ("tile", "tile_id", "tileId", "mgrs_tile", "TILE")
ID_COLUMNS = ("id", "subtile", "subtile_id", "ID", "name")


@dataclass(frozen=True)
class Subtile:
    """One sub-tile of an MGRS tile, in the tile's UTM CRS and in lon/lat."""

    tile: str
    id: str
    epsg: int
    geometry: Polygon = field(repr=False)
    geometry_lonlat: Polygon = field(repr=False)

    @property
    def key(self) -> str:
        """``<tile>/<id>``, unique across a grid."""
        return f"{self.tile}/{self.id}"

    def wkt_lonlat(self, precision: int = 8) -> str:
        """Lon/lat WKT of the sub-tile, as SNAP's ``Subset/geoRegion`` needs it."""
        return shapely_wkt.dumps(self.geometry_lonlat, rounding_precision=precision)


@dataclass(frozen=True)
class RasterGrid:
    """A north-up raster grid: west/north edges ``x0``/``y0``, pixel size ``res``, in ``epsg``."""

    epsg: int
    x0: float
    y0: float
    res: float
    width: int
    height: int

    @property
    def transform(self) -> Any:
        """The rasterio ``Affine`` of the grid."""
        from affine import Affine

        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y0)

    @property
    def x(self) -> np.ndarray:
        """Pixel-centre x coordinates (west to east)."""
        return self.x0 + (np.arange(self.width) + 0.5) * self.res

    @property
    def y(self) -> np.ndarray:
        """Pixel-centre y coordinates (north to south)."""
        return self.y0 - (np.arange(self.height) + 0.5) * self.res

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax)."""
        return (self.x0, self.y0 - self.height * self.res, self.x0 + self.width * self.res, self.y0)


def region_raster_grid(
    tile: str, utm_bounds: tuple[float, float, float, float], res: float
) -> RasterGrid:
    """Grid covering ``utm_bounds`` snapped outward to the S2 tile's pixel grid at ``res``.

    The tile grid is anchored at the tile's ULX/ULY, so two grids of one tile at one resolution
    always align pixel for pixel. Edges within 1e-6 pixel of a grid line are taken as on it, so a
    square reprojected to lon/lat and back does not grow by a pixel.
    """
    if res <= 0:
        raise ConfigError(f"resolution must be positive, got {res}")
    tg = tile_grid(tile)
    xmin, ymin, xmax, ymax = utm_bounds
    eps = 1e-6
    c0 = math.floor((xmin - tg.ulx) / res + eps)
    c1 = math.ceil((xmax - tg.ulx) / res - eps)
    r0 = math.floor((tg.uly - ymax) / res + eps)
    r1 = math.ceil((tg.uly - ymin) / res - eps)
    if c1 <= c0 or r1 <= r0:
        raise ConfigError(f"empty region {utm_bounds} for tile {tile}")
    return RasterGrid(
        epsg=tg.epsg,
        x0=tg.ulx + c0 * res,
        y0=tg.uly - r0 * res,
        res=float(res),
        width=c1 - c0,
        height=r1 - r0,
    )


def subtile_raster_grid(subtile: Subtile, res: float) -> RasterGrid:
    """The sub-tile's bounding box snapped outward to its S2 tile's pixel grid at ``res``."""
    return region_raster_grid(subtile.tile, subtile.geometry.bounds, res)


def _transformer(src: int | str, dst: int | str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def _parse_wkt(text: str, where: str) -> Polygon:
    try:
        geom: BaseGeometry = shapely_wkt.loads(text)
    except (ShapelyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: not valid WKT ({exc}): {str(text)[:80]!r}") from None
    return _as_polygon(geom, where)


def _as_polygon(geom: BaseGeometry, where: str) -> Polygon:
    if geom.geom_type == "MultiPolygon" and len(geom.geoms) == 1:  # type: ignore[attr-defined]
        geom = geom.geoms[0]  # type: ignore[attr-defined]
    if geom.geom_type != "Polygon":
        raise ConfigError(f"{where}: expected a POLYGON, got {geom.geom_type}")
    if geom.is_empty or not geom.is_valid or geom.area <= 0:
        raise ConfigError(f"{where}: polygon is empty or invalid (self-intersecting?)")
    return geom  # type: ignore[return-value]


def _looks_lonlat(geom: Polygon) -> bool:
    xmin, ymin, xmax, ymax = geom.bounds
    return -180 <= xmin <= xmax <= 180 and -90 <= ymin <= ymax <= 90


def _make_subtile(tile: str, sid: str, geom: Polygon, src_crs: int | str, where: str) -> Subtile:
    tile = validate_tile_id(tile)
    if not _ID_RE.match(sid):
        raise ConfigError(
            f"{where}: sub-tile id {sid!r} must be letters, digits, '_', '-' or '.' (it becomes part "
            "of file names)"
        )
    epsg = utm_epsg(tile)
    src = CRS.from_user_input(src_crs)
    if src.is_geographic and not _looks_lonlat(geom):
        raise ConfigError(
            f"{where}: coordinates {geom.bounds} are not lon/lat but the grid CRS is {src_crs}; "
            "set `subtiles_crs` to the projected CRS of the file (e.g. EPSG:32630)"
        )
    if src.is_projected and _looks_lonlat(geom):
        raise ConfigError(
            f"{where}: coordinates {geom.bounds} look like lon/lat but the grid CRS is {src_crs}; "
            "set `subtiles_crs: EPSG:4326` for lon/lat grids"
        )
    to_utm = _transformer(src, epsg)
    to_ll = _transformer(src, 4326)
    utm = shapely_transform(to_utm.transform, geom)
    ll = shapely_transform(to_ll.transform, geom)
    tg = tile_grid(tile)
    tile_box = box(*tg.bounds)
    if not utm.intersects(tile_box):
        raise ConfigError(
            f"{where}: sub-tile {sid} does not intersect tile {tile} (tile bounds {tg.bounds} in "
            f"EPSG:{epsg}; sub-tile bounds {tuple(round(v) for v in utm.bounds)}). Is `subtiles_crs` "
            "right?"
        )
    return Subtile(tile=tile, id=sid, epsg=epsg, geometry=utm, geometry_lonlat=ll)


def _resolve_crs(crs: int | str | None, geoms: Iterable[Polygon], where: str) -> int | str:
    if crs is not None:
        try:
            CRS.from_user_input(crs)
        except Exception as exc:  # pyproj raises CRSError, a plain Exception subclass
            raise ConfigError(
                f"subtiles_crs {crs!r} is not a CRS pyproj understands: {exc}"
            ) from None
        return crs
    geoms = list(geoms)
    if geoms and all(_looks_lonlat(g) for g in geoms):
        return 4326
    raise ConfigError(
        f"{where}: polygons are in projected coordinates but no CRS was given; set `subtiles_crs` "
        "(the first user's 30UUA file is EPSG:32630)"
    )


def load_subtiles(path: str | Path, crs: int | str | None = None) -> list[Subtile]:
    """Load a sub-tile grid file in any supported form (see module docstring).

    ``crs`` is the CRS of the coordinates in the file (forms a, b, c); vector files carry their own.
    Raises :class:`ConfigError` naming the file and entry for every problem found.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"sub-tile grid file {p} does not exist")
    if p.suffix.lower() == ".json":
        text = p.read_text()
        try:
            data = json.loads(text, object_pairs_hook=_refuse_duplicate_keys(text, str(p)))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: not valid JSON ({exc})") from None
        subtiles = _load_json(data, crs, str(p))
    else:
        subtiles = _load_vector(p)
    if not subtiles:
        raise ConfigError(f"{p}: no sub-tiles found")
    seen: dict[str, int] = {}
    for i, s in enumerate(subtiles):
        if s.key in seen:
            raise ConfigError(
                f"{p}: sub-tile {s.key} is defined twice (entries {seen[s.key] + 1} and {i + 1}); "
                "give each sub-tile its own id"
            )
        seen[s.key] = i
    return subtiles


def _refuse_duplicate_keys(text: str, where: str) -> Any:
    """A ``json.loads`` object hook that refuses a key given twice in one object.

    Python's JSON keeps the last value of a duplicated key, so ``{"30UUA": [...], "30UUA": [...]}``
    would silently drop the first tile's sub-tiles and the campaign would run without them.
    """

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        first: dict[str, int] = {}
        for i, (key, _) in enumerate(pairs):
            if key in first:
                pattern = re.compile(r'"' + re.escape(json.dumps(key)[1:-1]) + r'"\s*:')
                lines = [text.count("\n", 0, m.start()) + 1 for m in pattern.finditer(text)]
                both = (
                    f"lines {lines[0]} and {lines[1]}"
                    if len(lines) >= 2
                    else f"entries {first[key] + 1} and {i + 1} of one object"
                )
                raise ConfigError(
                    f"{where}: key {key!r} appears twice ({both}); JSON would keep only the last "
                    "and drop the other's sub-tiles: merge them or rename one"
                )
            first[key] = i
        return dict(pairs)

    return hook


def _load_json(data: Any, crs: int | str | None, where: str) -> list[Subtile]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: expected a JSON object of tiles or sub-tiles")
    values = list(data.values())
    if all(isinstance(v, list) for v in values):
        parsed = {
            str(tile): [_parse_wkt(w, f"{where}: {tile}[{i}]") for i, w in enumerate(wkts)]
            for tile, wkts in data.items()
        }
        src = _resolve_crs(crs, (g for gs in parsed.values() for g in gs), where)
        return [
            _make_subtile(tile, str(i), g, src, f"{where}: {tile}[{i}]")
            for tile, gs in parsed.items()
            for i, g in enumerate(gs)
        ]
    if all(isinstance(v, dict) for v in values):
        entries = []
        for key, v in data.items():
            w = f"{where}: {key}"
            if "geoRegion" not in v or not any(k in v for k in ("tileId", "tile")):
                raise ConfigError(f"{w}: needs keys 'geoRegion' and 'tileId'")
            entries.append(
                (str(v.get("tileId", v.get("tile"))), str(key), _parse_wkt(v["geoRegion"], w), w)
            )
        src = _resolve_crs(crs, (e[2] for e in entries), where)
        return [_make_subtile(t, k, g, src, w) for t, k, g, w in entries]
    raise ConfigError(
        f"{where}: unrecognised grid form; expected {{tile: [WKT, ...]}} or "
        '{id: {"geoRegion": WKT, "tileId": ...}}'
    )


def _load_vector(p: Path) -> list[Subtile]:
    import geopandas as gpd

    try:
        gdf = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise ConfigError(f"{p}: cannot read as a vector file ({exc})") from None
    if gdf.crs is None:
        raise ConfigError(f"{p}: the file has no CRS; save it with one")
    tcol = next((c for c in TILE_COLUMNS if c in gdf.columns), None)
    icol = next((c for c in ID_COLUMNS if c in gdf.columns), None)
    if tcol is None or icol is None:
        raise ConfigError(
            f"{p}: needs a tile column (one of {TILE_COLUMNS}) and an id column (one of "
            f"{ID_COLUMNS}); found {list(gdf.columns)}"
        )
    src = gdf.crs.to_wkt()
    first_row: dict[tuple[str, str], Any] = {}
    for i, (tile, sid) in enumerate(zip(gdf[tcol], gdf[icol], strict=True)):
        key = (str(tile), str(sid))
        if key in first_row:
            raise ConfigError(
                f"{p}: features {first_row[key] + 1} and {i + 1} (counting from 1) are both "
                f"sub-tile {key[1]!r} of tile {key[0]} (columns {tcol}/{icol}); give each sub-tile "
                "its own id"
            )
        first_row[key] = i
    return [
        _make_subtile(
            str(row[tcol]),
            str(row[icol]),
            _as_polygon(row.geometry, f"{p}: row {i}"),
            src,
            f"{p}: row {i}",
        )
        for i, row in gdf.iterrows()
    ]
