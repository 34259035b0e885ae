"""Selection rules: duplicates, cloud filter, footprints, determinism, empty seasons."""

import pytest
from shapely.geometry import box, mapping

from seasonal_c2rcc.catalogue import build_query, build_selection, deduplicate, parse_feature
from seasonal_c2rcc.errors import CatalogueError
from seasonal_c2rcc.grid import load_subtiles
from seasonal_c2rcc.seasons import parse_seasons

WHOLE = box(-6.0, 49.0, -4.0, 51.0)
WEST = box(-6.0, 49.0, -5.72, 51.0)  # covers sub-tile 0 (x 300-310 km) only partly / not sub-tile 3


def feature(
    day, cloud, baseline="N0500", disc="20230427T164710", plat="S2B", orbit="037", geom=WHOLE
):
    pid = f"{plat}_MSIL1C_2019{day}T112119_{baseline}_R{orbit}_T30UUA_{disc}.SAFE"
    return {
        "type": "Feature",
        "id": pid,
        "geometry": mapping(geom),
        "properties": {
            "location": f"loc/{pid}",
            "size": 700_000_000,
            "metadata": {"cloudCover": cloud},
        },
    }


@pytest.fixture
def subtiles(repo_root):
    return load_subtiles(repo_root / "config/subtiles/demo_30UUA.json", "EPSG:32630")


@pytest.fixture
def summer():
    return {w.name: w for w in parse_seasons()}["summer"]


def select(features, subtiles, summer, **kw):
    args = dict(cloud_cover_max=20, images_per_season=2, selection="least_cloudy", min_coverage=0.5)
    args.update(kw)
    return build_selection(
        features, tile="30UUA", year=2019, window=summer, subtiles=subtiles, **args
    )


def test_query_uses_the_flat_dict_hda_expects(summer):
    q = build_query("EO:ESA:DAT:SENTINEL-2", "S2MSI1C", "30UUA", summer, 2019)
    assert q == {
        "dataset_id": "EO:ESA:DAT:SENTINEL-2",
        "processingLevel": "S2MSI1C",
        "tileId": "30UUA",
        "startdate": "2019-06-01T00:00:00.000Z",
        "enddate": "2019-08-31T23:59:59.999Z",
    }


def test_least_cloudy_n_are_chosen_and_cloudy_ones_rejected(subtiles, summer):
    feats = [
        feature("0605", 15.0),
        feature("0615", 3.0),
        feature("0625", 45.0),
        feature("0705", 8.0),
    ]
    doc = select(feats, subtiles, summer)
    assert doc["subtiles"]["0"] == [
        "S2B_MSIL1C_20190615T112119_N0500_R037_T30UUA_20230427T164710",
        "S2B_MSIL1C_20190705T112119_N0500_R037_T30UUA_20230427T164710",
    ]
    assert (
        "cloud cover 45.0 > 20"
        in doc["rejected"]["S2B_MSIL1C_20190625T112119_N0500_R037_T30UUA_20230427T164710"]
    )
    assert set(doc["products"]) == set(doc["subtiles"]["0"])


def test_duplicate_baselines_collapse_to_the_newest(subtiles, summer):
    feats = [feature("0615", 3.0, baseline="N0204", disc="20190615T130000"), feature("0615", 3.0)]
    kept, dropped = deduplicate([parse_feature(f) for f in feats])
    assert [p.baseline for p in kept] == ["N0500"]
    doc = select(feats, subtiles, summer)
    assert len(doc["subtiles"]["0"]) == 1 and "N0500" in doc["subtiles"]["0"][0]
    assert (
        "duplicate acquisition"
        in doc["rejected"]["S2B_MSIL1C_20190615T112119_N0204_R037_T30UUA_20190615T130000"]
    )


def test_partial_footprint_is_not_used_for_the_subtile_it_misses(subtiles, summer):
    east_only = box(
        -5.66, 49.0, -4.0, 51.0
    )  # misses sub-tile 0 (lon -5.79..-5.65), covers sub-tile 1
    doc = select([feature("0615", 1.0, geom=east_only)], subtiles, summer)
    assert doc["subtiles"]["0"] == []
    assert len(doc["subtiles"]["1"]) == 1


def test_empty_season_is_a_normal_outcome(subtiles, summer):
    doc = select([], subtiles, summer)
    assert doc["subtiles"] == {"0": [], "1": []} and doc["products"] == {}


def test_selection_is_deterministic_whatever_the_reply_order(subtiles, summer):
    feats = [feature(f"06{d:02d}", 5.0) for d in (3, 13, 23)] + [feature("0703", 5.0, plat="S2A")]
    a = select(feats, subtiles, summer)
    b = select(list(reversed(feats)), subtiles, summer)
    assert a["subtiles"] == b["subtiles"]


def test_spread_selection_spreads_through_the_season(subtiles, summer):
    feats = [feature("0602", 1.0), feature("0603", 2.0), feature("0604", 3.0), feature("0820", 9.0)]
    doc = select(feats, subtiles, summer, selection="spread")
    days = sorted(k.split("_")[2][:8] for k in doc["subtiles"]["0"])
    assert days == ["20190602", "20190820"]


def test_out_of_season_and_wrong_tile_are_rejected(subtiles, summer):
    bad_tile = feature("0615", 1.0)
    bad_tile["id"] = bad_tile["id"].replace("T30UUA", "T30UVA")
    doc = select([feature("0915", 1.0), bad_tile], subtiles, summer)
    assert doc["products"] == {}
    assert any("outside summer 2019" in r for r in doc["rejected"].values())
    assert any("is not 30UUA" in r for r in doc["rejected"].values())


@pytest.mark.parametrize(
    "feat,message",
    [
        ({"properties": {}}, "without id"),
        ({"id": "S3A_OL_1_EFR____2019", "properties": {"location": "x"}}, "not an S2 L1C product"),
        (
            {
                "id": "S2B_MSIL1C_20190615T112119_N0500_R037_T30UUA_20230427T164710.SAFE",
                "properties": {},
            },
            "no properties.location",
        ),
        (
            {
                "id": "S2B_MSIL1C_20190615T112119_N0500_R037_T30UUA_20230427T164710.SAFE",
                "properties": {"location": "x", "metadata": {"cloudCover": "cloudy"}},
            },
            "not a number",
        ),
    ],
)
def test_malformed_features_raise(feat, message):
    with pytest.raises(CatalogueError, match=message):
        parse_feature(feat)
