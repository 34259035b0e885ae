"""The synthetic catalogue: determinism, revisit, duplicates, partials, cloud cover, search."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from shapely.geometry import Polygon, box

from seasonal_c2rcc.emulator import catalogue as cat
from seasonal_c2rcc.mgrs import tile_grid


def _d(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_deterministic_and_resolvable_by_id() -> None:
    a = cat.products_for_tile("30UUA", _d("2020-06-01"), _d("2020-08-31"))
    b = cat.products_for_tile("30UUA", _d("2020-06-01"), _d("2020-08-31"))
    assert a == b and len(a) > 20
    for p in a:
        assert cat.product_by_id(p.id) == p
        assert cat.PRODUCT_ID_RE.match(p.id)
    assert cat.product_by_id("S2A_MSIL1C_20200601T000000_N0500_R001_T30UUA_20230101T000000.SAFE") \
        is None


def test_revisit_and_constellation() -> None:
    ps = cat.products_for_tile("32TQM", _d("2016-01-01"), _d("2016-12-31"))
    assert {p.platform for p in ps} == {"S2A"}  # S2B only from 2017-03
    ps = cat.products_for_tile("32TQM", _d("2020-01-01"), _d("2020-12-31"))
    for platform in ("S2A", "S2B"):
        for orbit in {p.orbit for p in ps}:
            days = sorted({p.sensing.date() for p in ps
                           if p.platform == platform and p.orbit == orbit})
            assert all((b - a).days == 10 for a, b in zip(days, days[1:], strict=False))
    ps = cat.products_for_tile("32TQM", _d("2025-06-01"), _d("2025-07-01"))
    assert {p.platform for p in ps} == {"S2B", "S2C"}
    assert not cat.products_for_tile("32TQM", _d("2014-01-01"), _d("2015-07-01"))
    future = cat.products_for_tile("32TQM", datetime.now(UTC), datetime.now(UTC) + timedelta(30))
    assert not future


def test_duplicates_partials_and_cloud_cover() -> None:
    ps = cat.products_for_tile("30UUA", _d("2016-01-01"), _d("2023-12-31"))
    by_acq = Counter((p.platform, p.sensing, p.orbit) for p in ps)
    dups = [k for k, n in by_acq.items() if n == 2]
    assert 0.2 < len(dups) / len(by_acq) < 0.3  # pre-2022 (30 %) listed as N0500 + original
    for k in dups[:20]:
        pair = [p for p in ps if (p.platform, p.sensing, p.orbit) == k]
        assert {p.baseline for p in pair} >= {"N0500"} and len({p.baseline for p in pair}) == 2
        assert pair[0].cloud_cover == pair[1].cloud_cover
    assert all(p.baseline != "N0500" for p in ps if p.sensing >= cat.PB04_START)
    partial = [p for p in ps if p.partial]
    assert 0.08 < len({(p.sensing, p.orbit) for p in partial}) / len(by_acq) < 0.16
    assert {p.partial for p in partial} == {"west", "east"}
    g = tile_grid("30UUA")
    tile_poly = Polygon(cat._footprint("30UUA", g.bounds))
    for p in partial[:10]:
        fp = Polygon(p.footprint())
        assert 0.3 < fp.area / tile_poly.area < 0.8 and p.size < 800e6
    cc = [p.cloud_cover for p in ps]
    assert min(cc) < 1 and max(cc) > 99
    assert 0.3 < sum(c < 20 for c in cc) / len(cc) < 0.45
    sizes = [p.size for p in ps if not p.partial]
    assert 600e6 <= min(sizes) and max(sizes) <= 800e6


def test_season_has_a_handful_of_clear_scenes() -> None:
    for tile in ("30UUA", "29UQR", "32TQM", "24MVA"):
        ps = cat.products_for_tile(tile, _d("2021-06-01"), _d("2021-08-31"))
        clear = {p.sensing for p in ps if p.cloud_cover < 20 and not p.partial}
        assert len(clear) >= 3, tile


def test_feature_shape() -> None:
    (p,) = [p for p in cat.products_for_tile("30UUA", _d("2020-06-23"), _d("2020-06-24"))][:1] or [
        cat.products_for_tile("30UUA", _d("2020-06-01"), _d("2020-06-30"))[0]]
    f = p.feature()
    assert f["id"] == p.id and f["geometry"]["type"] == "Polygon"
    props = f["properties"]
    assert props["location"].endswith(p.id) and props["size"] == p.size
    assert props["startdate"].endswith("Z") and props["enddate"] > props["startdate"]
    md = props["metadata"]
    for key in ("cloudCover", "tileId", "productType", "processingLevel",
                "platformShortName", "platformSerialIdentifier", "relativeOrbitNumber",
                "processingBaseline"):
        assert key in md
    lon, lat = f["geometry"]["coordinates"][0][0]
    assert -180 <= lon <= 180 and -90 <= lat <= 90


def test_search_filters() -> None:
    base = {"dataset_id": cat.DATASET_ID, "startdate": "2020-06-01T00:00:00Z",
            "enddate": "2020-06-30T23:59:59Z"}
    by_tile = cat.search(cat.parse_query({**base, "tileId": "30UUA"}))
    assert by_tile and all(p.tile == "30UUA" for p in by_tile)
    assert not cat.search(cat.parse_query({**base, "tileId": "30UUA", "productType": "S2MSI2A"}))
    s2b = cat.search(cat.parse_query({**base, "tileId": "30UUA", "platform": "S2B"}))
    assert s2b and all(p.platform == "S2B" for p in s2b)
    # a small bbox inside 30UUA's western part: 30UUA and neighbours covering it, all intersecting
    g = tile_grid("30UUA")
    ring = cat._footprint("30UUA", (g.ulx + 5000, g.uly - 60000, g.ulx + 8000, g.uly - 57000))
    lons, lats = [c[0] for c in ring], [c[1] for c in ring]
    bb = [min(lons), min(lats), max(lons), max(lats)]
    found = cat.search(cat.parse_query({**base, "bbox": bb}))
    assert "30UUA" in {p.tile for p in found}
    assert all(Polygon(p.footprint()).intersects(box(*bb)) for p in found)
    assert not cat.search(cat.parse_query({**base, "tileId": "30UUA", "status": "OFFLINE"}))
    assert not cat.search(cat.parse_query({**base, "tileId": "30UUA", "instrument": "AUX"}))
    take = by_tile[3].mission_take_id
    assert [p.mission_take_id for p in cat.search(cat.parse_query(
        {**base, "tileId": "30UUA", "missionTakeId": take}))] == [take] * len(
        [p for p in by_tile if p.mission_take_id == take])
    one_day = cat.search(cat.parse_query({**base, "tileId": "30UUA",
                                          "startdate": by_tile[0].sensing.isoformat(),
                                          "enddate": by_tile[0].sensing.isoformat()}))
    assert by_tile[0] in one_day


@pytest.mark.parametrize("body", [
    {"tileId": "30UUA"},
    {"dataset_id": cat.DATASET_ID, "tileId": "30UUA", "cloudCover": 10},
    {"dataset_id": cat.DATASET_ID, "tileId": "30UUA", "startdate": {"gte": "2020-01-01"}},
    {"dataset_id": cat.DATASET_ID, "tileId": 30},
    {"dataset_id": cat.DATASET_ID, "tileId": "30UUA", "itemsPerPage": "many"},
    {"dataset_id": cat.DATASET_ID, "bbox": [0, 0, 20, 20]},
    {"dataset_id": cat.DATASET_ID},
])
def test_query_validation(body: dict) -> None:
    with pytest.raises(cat.QueryError) as err:
        cat.parse_query(body)
    assert err.value.status == 400


def test_bbox_finds_tiles_across_the_utm_zone_edge() -> None:
    # Cornwall: 30UUA's western margin and 29UQR (zone 29, reaching past 6 W) overlap here
    tiles = cat.tiles_for_bbox((-5.8, 50.0, -5.75, 50.05))
    assert {"29UQR", "30UUA"} <= set(tiles)
    # a square named with the wrong latitude band is not in the archive
    assert cat.tile_in_catalogue("30UUA") and not cat.tile_in_catalogue("30TUA")
    assert cat.products_for_tile("30TUA", _d("2020-06-01"), _d("2020-06-30")) == []
