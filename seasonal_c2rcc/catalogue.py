"""Catalogue search and scene selection for one tile, year and season.

Pure logic (query building, parsing, de-duplication, filtering, selection) is separate from the one
HDA call (:func:`search_season`), so the rules are testable without a server. The result is written
once to ``results/catalog/{tile}/{year}/{season}.json`` and then frozen: the workflow never searches
again unless asked (``--forcerun catalogue``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from .errors import CatalogueError
from .grid import Subtile
from .seasons import SeasonWindow

# S2x_MSIL1C_<sensing>_N<baseline>_R<orbit>_T<tile>_<discriminator>
PRODUCT_RE = re.compile(
    r"^(?P<platform>S2[A-D])_MSIL1C_(?P<sensing>\d{8}T\d{6})_N(?P<baseline>\d{4})_R(?P<orbit>\d{3})"
    r"_T(?P<tile>\d\d[A-Z]{3})_(?P<disc>\d{8}T\d{6})(\.SAFE)?$"
)
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Product:
    """One catalogue entry, parsed and checked."""

    key: str  # product id without .SAFE: safe in paths and wildcards
    id: str
    location: str
    size: int | None
    cloud_cover: float | None
    sensing_time: str  # ISO UTC
    platform: str
    relative_orbit: int
    baseline: str  # "N0500"
    discriminator: str
    tile: str
    footprint: str | None  # lon/lat WKT

    @property
    def group(self) -> tuple[str, str, int, str]:
        """Acquisition identity: the same datatake under different baselines shares it."""
        return (self.platform, self.sensing_time, self.relative_orbit, self.tile)


def build_query(
    dataset_id: str, processing_level: str, tile: str, window: SeasonWindow, year: int
) -> dict[str, Any]:
    """The flat HDA query dict for one tile and season (``Client.search(query)``)."""
    start, end = window.query_range(year)
    return {
        "dataset_id": dataset_id,
        "processingLevel": processing_level,
        "tileId": tile,
        "startdate": start,
        "enddate": end,
    }


def parse_feature(feature: dict[str, Any]) -> Product:
    """Parse one search result feature; malformed replies raise :class:`CatalogueError`."""
    if not isinstance(feature, dict) or "id" not in feature:
        raise CatalogueError(f"catalogue feature without id: {str(feature)[:200]}")
    pid = str(feature["id"])
    m = PRODUCT_RE.match(pid)
    if not m:
        raise CatalogueError(f"catalogue returned an id that is not an S2 L1C product: {pid!r}")
    props = feature.get("properties") or {}
    if "location" not in props:
        raise CatalogueError(f"catalogue feature {pid} has no properties.location")
    meta = props.get("metadata") or {}
    cloud = meta.get("cloudCover", props.get("cloudCover"))
    try:
        cloud_f = None if cloud in (None, "", "ND") else float(cloud)
    except (TypeError, ValueError):
        raise CatalogueError(
            f"catalogue feature {pid}: cloudCover {cloud!r} is not a number"
        ) from None
    size = props.get("size")
    footprint = None
    if feature.get("geometry"):
        try:
            footprint = shape(feature["geometry"]).wkt
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raise CatalogueError(f"catalogue feature {pid}: bad geometry ({exc})") from None
    sensing = datetime.strptime(m["sensing"], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return Product(
        key=pid.removesuffix(".SAFE"),
        id=pid,
        location=str(props["location"]),
        size=int(size) if isinstance(size, int | float) else None,
        cloud_cover=cloud_f,
        sensing_time=sensing.strftime("%Y-%m-%dT%H:%M:%SZ"),
        platform=m["platform"],
        relative_orbit=int(m["orbit"]),
        baseline="N" + m["baseline"],
        discriminator=m["disc"],
        tile=m["tile"],
        footprint=footprint,
    )


def deduplicate(products: list[Product]) -> tuple[list[Product], dict[str, str]]:
    """Collapse acquisitions listed under several baselines to the newest baseline.

    Ties (same baseline republished) keep the latest discriminator. Returns the kept products and
    ``{dropped key: reason}``.
    """
    best: dict[tuple[str, str, int, str], Product] = {}
    for p in products:
        cur = best.get(p.group)
        if cur is None or (p.baseline, p.discriminator) > (cur.baseline, cur.discriminator):
            best[p.group] = p
    kept = {p.key for p in best.values()}
    dropped = {
        p.key: f"duplicate acquisition; kept {best[p.group].key} ({best[p.group].baseline})"
        for p in products
        if p.key not in kept
    }
    return sorted(best.values(), key=lambda p: (p.sensing_time, p.key)), dropped


def coverage(product: Product, subtile: Subtile) -> float:
    """Fraction of the sub-tile (lon/lat) inside the product footprint (1.0 if unknown)."""
    if not product.footprint:
        return 1.0
    from shapely import wkt

    fp: BaseGeometry = wkt.loads(product.footprint)
    area = subtile.geometry_lonlat.area
    return float(fp.intersection(subtile.geometry_lonlat).area / area) if area else 0.0


def select(
    candidates: list[Product],
    n: int,
    how: str,
    window_dates: tuple[str, str] | None = None,
) -> list[Product]:
    """Choose at most ``n`` products, deterministically.

    ``least_cloudy``: lowest cloud cover first, ties by sensing time then id. ``spread``: the least
    cloudy of each of ``n`` equal parts of the season, topped up with the least cloudy of the rest.
    """

    def rank(p: Product) -> tuple[float, str, str]:
        return (p.cloud_cover if p.cloud_cover is not None else 101.0, p.sensing_time, p.key)

    ordered = sorted(candidates, key=rank)
    if how == "least_cloudy" or n <= 1 or not window_dates:
        chosen = ordered[:n]
    elif how == "spread":
        t0 = datetime.fromisoformat(window_dates[0]).timestamp()
        t1 = datetime.fromisoformat(window_dates[1]).timestamp() + 86400
        chosen = []
        for i in range(n):
            a, b = t0 + (t1 - t0) * i / n, t0 + (t1 - t0) * (i + 1) / n
            part = [p for p in ordered if a <= _ts(p) < b and p not in chosen]
            if part:
                chosen.append(part[0])
        chosen += [p for p in ordered if p not in chosen][: n - len(chosen)]
    else:
        raise CatalogueError(f"unknown selection {how!r}")
    return sorted(chosen, key=rank)


def _ts(p: Product) -> float:
    return datetime.strptime(p.sensing_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def build_selection(
    features: list[dict[str, Any]],
    *,
    tile: str,
    year: int,
    window: SeasonWindow,
    subtiles: list[Subtile],
    cloud_cover_max: float,
    images_per_season: int,
    selection: str,
    min_coverage: float,
    query: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Turn raw search features into the frozen per-season selection document."""
    first, last = window.dates(year)
    rejected: dict[str, str] = {}
    parsed: list[Product] = []
    for f in features:
        p = parse_feature(f)
        day = p.sensing_time[:10]
        if p.tile != tile:
            rejected[p.key] = f"tile {p.tile} is not {tile}"
        elif not first.isoformat() <= day <= last.isoformat():
            rejected[p.key] = f"sensed {day}, outside {window.name} {year} ({first}..{last})"
        else:
            parsed.append(p)
    unique, dropped = deduplicate(parsed)
    rejected.update(dropped)
    usable = []
    for p in unique:
        if p.cloud_cover is None:
            rejected[p.key] = "no cloud cover in the catalogue"
        elif p.cloud_cover > cloud_cover_max:
            rejected[p.key] = f"cloud cover {p.cloud_cover:.1f} > {cloud_cover_max:g}"
        else:
            usable.append(p)
    per_subtile: dict[str, list[str]] = {}
    used: dict[str, Product] = {}
    for st in subtiles:
        fits = [p for p in usable if coverage(p, st) >= min_coverage]
        chosen = select(fits, images_per_season, selection, (first.isoformat(), last.isoformat()))
        per_subtile[st.id] = [p.key for p in chosen]
        used.update({p.key: p for p in chosen})
    for p in usable:
        if p.key not in used:
            rejected.setdefault(
                p.key, "not among the best for any sub-tile (or footprint misses them)"
            )
    return {
        "schema": SCHEMA_VERSION,
        "tile": tile,
        "year": year,
        "season": window.name,
        "start": first.isoformat(),
        "end": last.isoformat(),
        "cloud_cover_max": cloud_cover_max,
        "images_per_season": images_per_season,
        "selection": selection,
        "min_subtile_coverage": min_coverage,
        "searched_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "query": query or {},
        "n_found": len(features),
        "products": {k: _product_dict(p) for k, p in sorted(used.items())},
        "subtiles": per_subtile,
        "rejected": dict(sorted(rejected.items())),
    }


def _product_dict(p: Product) -> dict[str, Any]:
    d = asdict(p)
    d.pop("key")
    return d


def check_selection(doc: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate a selection document read back from disk (hand edits, truncation)."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA_VERSION:
        raise CatalogueError(f"{where}: not a catalogue selection (schema {SCHEMA_VERSION})")
    for key in ("tile", "year", "season", "products", "subtiles"):
        if key not in doc:
            raise CatalogueError(f"{where}: missing key {key!r}")
    for sid, keys in doc["subtiles"].items():
        for k in keys:
            if k not in doc["products"]:
                raise CatalogueError(f"{where}: sub-tile {sid} uses unknown product {k}")
    return doc


def search_season(
    campaign: Any, tile: str, year: int, season: str, *, client: Any | None = None
) -> dict[str, Any]:
    """Search HDA once for ``tile``/``year``/``season`` and build the selection document.

    ``campaign`` is a :class:`seasonal_c2rcc.config.Campaign`. A season with no usable scene gives
    a document with empty sub-tile lists: a normal outcome, not an error.
    """
    from . import wekeo

    cfg = campaign.config
    window = campaign.season(season)
    query = build_query(
        cfg["wekeo"]["dataset_id"], cfg["wekeo"]["processing_level"], tile, window, year
    )
    if client is None:
        client = wekeo.hda_client(
            wekeo.Endpoints.from_config(cfg["wekeo"]),
            wekeo.load_credentials(),
            timeout=cfg["wekeo"]["http_timeout"],
            retries=cfg["wekeo"]["http_retries"],
        )
    features = wekeo.search(client, query)
    return build_selection(
        features,
        tile=tile,
        year=year,
        window=window,
        subtiles=campaign.subtiles_of(tile),
        cloud_cover_max=float(cfg["cloud_cover_max"]),
        images_per_season=int(cfg["images_per_season"]),
        selection=cfg["selection"],
        min_coverage=float(cfg["min_subtile_coverage"]),
        query=query,
    )
