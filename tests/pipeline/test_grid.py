"""Grid files in every form users have, reprojected exactly."""

import json

import geopandas as gpd
import pytest
from pyproj import Transformer
from shapely.geometry import box

from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.grid import load_subtiles, region_raster_grid, subtile_raster_grid
from seasonal_c2rcc.mgrs import tile_grid, utm_epsg, validate_tile_id

SQUARE = (
    "POLYGON ((300000 5540000, 310000 5540000, 310000 5550000, 300000 5550000, 300000 5540000))"
)


def test_user_grid_file_has_the_eleven_subtiles_in_order(repo_root):
    subs = load_subtiles(repo_root / "config/subtiles/30UUA_utm.json", "EPSG:32630")
    assert [s.id for s in subs] == [str(i) for i in range(11)]
    assert subs[0].geometry.bounds == (300000, 5540000, 310000, 5550000)
    assert subs[9].geometry.bounds == (320000, 5570000, 330000, 5580000)
    assert subs[10].geometry.bounds == (330000, 5530000, 340000, 5540000)
    assert {s.epsg for s in subs} == {32630}


def test_lonlat_corners_match_pyproj_exactly(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"30UUA": [SQUARE]}))
    (s,) = load_subtiles(path, "EPSG:32630")
    tr = Transformer.from_crs(32630, 4326, always_xy=True)
    corners = list(box(300000, 5540000, 310000, 5550000).exterior.coords)[:-1]
    expected = [tr.transform(x, y) for x, y in corners]
    got = sorted(set(s.geometry_lonlat.exterior.coords))
    for (ex, ey), (gx, gy) in zip(sorted(expected), got, strict=True):
        assert gx == pytest.approx(ex, abs=1e-12) and gy == pytest.approx(ey, abs=1e-12)
    # the doc's worked example (c2rcc-msi.md 1.9)
    assert min(x for x, _ in got) == pytest.approx(-5.79485, abs=1e-5)
    assert "POLYGON ((-5.78964" in s.wkt_lonlat()


def test_utm_file_for_another_zone_is_reprojected_to_the_tiles_zone(tmp_path):
    # The first user's file is in EPSG:32630 even for zone-29 tiles.
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"29UQR": [SQUARE]}))
    (s,) = load_subtiles(path, "EPSG:32630")
    assert s.epsg == 32629
    x0, y0, x1, y1 = s.geometry.bounds
    assert 700000 < x0 < x1 < 760000 and 5_530_000 < y0 < 5_560_000


def test_lonlat_json_form_detected_without_crs(tmp_path):
    path = tmp_path / "g.json"
    ll = "POLYGON ((-5.7896 49.9788, -5.6503 49.9820, -5.6553 50.0719, -5.7949 50.0686, -5.7896 49.9788))"
    path.write_text(json.dumps({"30UUA": [ll, ll]}))
    subs = load_subtiles(path)
    assert [s.id for s in subs] == ["0", "1"]
    assert subs[0].geometry.bounds[0] == pytest.approx(300000, abs=50)


def test_keyed_geoRegion_form(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"mounts_bay": {"geoRegion": SQUARE, "tileId": "30UUA"}}))
    (s,) = load_subtiles(path, "EPSG:32630")
    assert (s.tile, s.id) == ("30UUA", "mounts_bay")


@pytest.mark.parametrize(
    "suffix,driver", [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".shp", None)]
)
def test_vector_files(tmp_path, suffix, driver):
    gdf = gpd.GeoDataFrame(
        {"tile": ["30UUA", "30UUA"], "id": ["a", "b"]},
        geometry=[box(300000, 5540000, 310000, 5550000), box(310000, 5540000, 320000, 5550000)],
        crs="EPSG:32630",
    )
    path = tmp_path / f"grid{suffix}"
    gdf.to_file(path, **({"driver": driver} if driver else {}))
    subs = load_subtiles(path)
    assert [s.id for s in subs] == ["a", "b"]
    assert subs[1].geometry.bounds == pytest.approx((310000, 5540000, 320000, 5550000))


@pytest.mark.parametrize(
    "content,crs,message",
    [
        ({"30UUA": [SQUARE]}, None, "no CRS was given"),
        ({"30UUA": [SQUARE]}, "EPSG:4326", "not lon/lat"),
        ({"30XXX": [SQUARE]}, "EPSG:32630", "invalid MGRS tile id"),
        ({"30UUA": ["POLYGON ((1 2, 3"]}, "EPSG:32630", "not valid WKT"),
        ({"30UUA": ["POINT (300000 5540000)"]}, "EPSG:32630", "expected a POLYGON"),
        (
            {
                "30UUA": [
                    "POLYGON ((300000 5540000, 310000 5550000, 310000 5540000, 300000 5550000, 300000 5540000))"
                ]
            },
            "EPSG:32630",
            "self-intersecting",
        ),
        ({"30UVB": [SQUARE]}, "EPSG:32630", "does not intersect tile 30UVB"),
        ({"k": {"tileId": "30UUA"}}, "EPSG:32630", "needs keys 'geoRegion'"),
        ([1, 2], None, "expected a JSON object"),
    ],
)
def test_bad_grid_files_fail_with_a_specific_message(tmp_path, content, crs, message):
    path = tmp_path / "g.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message):
        load_subtiles(path, crs)


def test_missing_and_non_json_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_subtiles(tmp_path / "nope.json")
    bad = tmp_path / "g.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_subtiles(bad)


def test_tile_ids_and_epsg():
    assert utm_epsg("30UUA") == 32630
    assert utm_epsg("T24MVA") == 32724  # southern band -> 327xx
    assert validate_tile_id("t30uua") == "30UUA"
    for bad in ("30IAA", "61UUA", "30UUW", "3UUA", "30UUAA"):
        with pytest.raises(ConfigError):
            validate_tile_id(bad)


def test_tile_grid_matches_real_product_metadata():
    # T24MVA MTD_TL.xml: ULX 399960, ULY 9600040 (SNAP's test product)
    g = tile_grid("24MVA")
    assert (g.ulx, g.uly, g.epsg) == (399960.0, 9600040.0, 32724)
    assert tile_grid("30UUA").ulx == 299960.0


def test_raster_grids_align_with_the_tile_grid(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"30UUA": [SQUARE]}))
    (s,) = load_subtiles(path, "EPSG:32630")
    g20 = subtile_raster_grid(s, 20)
    assert (g20.x0, g20.y0, g20.width, g20.height) == (300000, 5550000, 500, 500)
    g60 = subtile_raster_grid(s, 60)  # 10 km squares are not on 60 m edges: snapped outward
    assert g60.x0 == 299960 and g60.width == 168 and (g60.x0 - 299960) % 60 == 0
    assert g60.bounds[0] <= 300000 and g60.bounds[2] >= 310000
    # a box that is off by float noise does not grow a pixel
    g = region_raster_grid("30UUA", (300000 - 1e-9, 5540000, 310000 + 1e-9, 5550000), 20)
    assert g.width == 500
