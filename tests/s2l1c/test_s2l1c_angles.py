"""Angle grids as SNAP's S2 reader builds and places them; checked on SNAP's own S2Ref product."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from lxml import etree
from s2l1c_testdata import small_extent

from seasonal_c2rcc.c2rcc import open_dimap
from seasonal_c2rcc.s2l1c import (
    BAND_NAMES,
    TileMetadata,
    ViewingGrid,
    build_angle_grids,
    open_safe,
    parse_tile_metadata,
    place_on_grid,
)

NAN = np.nan


def _tile(viewing: list[ViewingGrid], shape=(2, 3)) -> TileMetadata:
    return TileMetadata(
        tile_id="T",
        sensing_time=datetime(2020, 1, 1, tzinfo=UTC),
        epsg=32630,
        ulx=0.0,
        uly=0.0,
        sizes={10: (1000, 1000), 20: (500, 500), 60: (1000 // 6, 1000 // 6)},
        origins={10: (0.0, 0.0)},
        angle_step=(5000.0, 5000.0),
        sun_zenith=np.zeros(shape, np.float32),
        sun_azimuth=np.zeros(shape, np.float32),
        viewing=tuple(viewing),
    )


def _vg(band: int, det: int, z, a=None) -> ViewingGrid:
    z = np.asarray(z, dtype=np.float32)
    return ViewingGrid(band, det, z, np.asarray(z if a is None else a, dtype=np.float32))


def test_detector_merge_later_wins_nan_keeps() -> None:
    grids = [
        _vg(0, 1, [[1, 1, NAN], [1, NAN, NAN]]),
        _vg(0, 2, [[NAN, 2, 2], [NAN, NAN, 2]]),  # overlaps detector 1 at (0, 1): 2 wins
        _vg(1, 1, [[5, 5, 5], [5, 5, 5]]),
    ]
    g = build_angle_grids(_tile(grids))
    np.testing.assert_array_equal(g.view_zenith["B1"], [[1, 2, 2], [1, NAN, 2]])
    np.testing.assert_array_equal(g.view_zenith["B2"], np.full((2, 3), 5, np.float32))
    # mean over the two emitted bands; NaN wherever one band is NaN
    np.testing.assert_array_equal(g.view_zenith_mean, [[3, 3.5, 3.5], [3, NAN, 3.5]])


def test_mean_is_float32_sum_over_bands_and_arithmetic_azimuth() -> None:
    az = {0: 350.0, 1: 10.0, 2: 0.1}
    grids = [_vg(b, 1, np.full((2, 3), 7.1), np.full((2, 3), az[b])) for b in (0, 1, 2)]
    g = build_angle_grids(_tile(grids))
    f = np.float32
    expected_zen = ((f(7.1) + f(7.1)) + f(7.1)) / f(3)
    assert g.view_zenith_mean[0, 0] == expected_zen
    # no wrap-around handling: (350 + 10 + 0.1) / 3, not ~0
    assert g.view_azimuth_mean[0, 0] == ((f(0) + f(350.0) + f(10.0)) + f(0.1)) / f(3)
    assert g.view_zenith_mean.dtype == np.float32


def test_java_quirk_last_group_needs_positive_band_id() -> None:
    """Java adds the final band group only when its band id is > 0 (a file ending with band 0)."""
    grids = [_vg(1, 1, np.full((2, 3), 4.0)), _vg(0, 1, np.full((2, 3), 100.0))]
    g = build_angle_grids(_tile(grids))
    assert list(g.view_zenith) == ["B2"]
    np.testing.assert_array_equal(g.view_zenith_mean, np.full((2, 3), 4.0, np.float32))


def test_missized_viewing_grids_leave_nan_means() -> None:
    g = build_angle_grids(_tile([_vg(0, 1, np.ones((3, 3)))]))
    assert np.isnan(g.view_zenith_mean).all() and np.isnan(g.view_azimuth_mean).all()


def test_node_fills_the_cell_to_its_south_east() -> None:
    nodes = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    x = np.array([2.5, 4999.0, 5001.0, 14_999.0, 15_001.0])
    y = np.array([-1.0, -4999.0, -5001.0, -9999.0, -10_001.0])
    out = place_on_grid(nodes, (0.0, 0.0), (5000.0, 5000.0), x, y)
    np.testing.assert_array_equal(
        out,
        [[1, 1, 2, 3, NAN], [1, 1, 2, 3, NAN], [4, 4, 5, 6, NAN], [4, 4, 5, 6, NAN]] + [[NAN] * 5],
    )


def test_synthetic_product_angles(make_safe) -> None:
    """Overlapping detectors, NaN nodes east of the image, and placement on the read window."""
    path = make_safe("04.00", extent=small_extent(12.0, 6.0), zip=False)
    p = open_safe(path)
    mtd = next(path.glob("GRANULE/*/MTD_TL.xml")).read_bytes()
    tile = parse_tile_metadata(mtd)
    assert len(tile.viewing) == 26  # 13 bands x 2 detectors
    ncols = tile.sun_zenith.shape[1]
    assert ncols == 4  # ceil(12 km / 5 km) + 1 nodes
    det4, det5 = tile.viewing[0], tile.viewing[1]
    overlap = np.isfinite(det4.zenith[0]) & np.isfinite(det5.zenith[0])
    assert overlap.sum() == 2
    merged = p.angle_grids.view_zenith["B1"]
    np.testing.assert_array_equal(
        merged[0, overlap], det5.zenith[0, overlap]
    )  # later detector wins
    assert np.isnan(merged[:, -1]).all()  # no detector sees the column east of the image
    w = p.read_window(p.bounds, 60)
    # pixel centres 30 m in: column 83 (4980-5040 m) is still cell 0, column 84 is cell 1
    g = p.angle_grids
    assert w.angles["sun_zenith"][0, 82] == g.sun_zenith[0, 0]
    assert w.angles["sun_zenith"][0, 83] == g.sun_zenith[0, 1]
    assert w.angles["view_azimuth_mean"][83, 0] == g.view_azimuth_mean[1, 0]
    assert np.isfinite(w.angles["view_zenith_mean"]).all()  # the NaN column lies outside


# ------------------------------------------------------------------- SNAP's S2Ref product


def _mdelem(el: etree._Element, name: str) -> etree._Element:
    for c in el:
        if c.tag == "MDElem" and c.get("name") == name:
            return c
    raise KeyError(name)


def _attr(el: etree._Element, name: str) -> str:
    for c in el:
        if c.tag == "MDATTR" and c.get("name") == name:
            return c.text or ""
    raise KeyError(name)


def _values(el: etree._Element) -> np.ndarray:
    rows = [c.text.split() for c in _mdelem(el, "Values_List") if c.get("name") == "VALUES"]
    return np.array(rows, dtype=np.float32)


def _s2ref_tile_metadata(product: Path) -> tuple[TileMetadata, dict]:
    """The original MTD_TL angle grids kept in S2Ref's BEAM-DIMAP metadata, as TileMetadata."""
    with zipfile.ZipFile(product) as zf, zf.open("S2Ref_Product.dim") as fh:
        for _, el in etree.iterparse(fh, tag="MDElem", huge_tree=True):
            if el.get("name") == "Tile_Geocoding":
                geo = {_attr(g, "resolution"): g for g in el if g.get("name") == "Geoposition"}
                ulx, uly = float(_attr(geo["10"], "ULX")), float(_attr(geo["10"], "ULY"))
            if el.get("name") == "Tile_Angles":
                angles = el
                break
    sun = _mdelem(angles, "Sun_Angles_Grid")
    viewing = [
        ViewingGrid(
            int(_attr(v, "bandId")),
            int(_attr(v, "detectorId")),
            _values(_mdelem(v, "Zenith")),
            _values(_mdelem(v, "Azimuth")),
        )
        for v in angles
        if v.get("name") == "Viewing_Incidence_Angles_Grids"
    ]
    zen = _mdelem(sun, "Zenith")
    tile = TileMetadata(
        tile_id="24MVA",
        sensing_time=datetime(2020, 12, 29, tzinfo=UTC),
        epsg=32724,
        ulx=ulx,
        uly=uly,
        sizes={10: (10980, 10980), 20: (5490, 5490), 60: (1830, 1830)},
        origins={10: (ulx, uly)},
        angle_step=(float(_attr(zen, "COL_STEP")), float(_attr(zen, "ROW_STEP"))),
        sun_zenith=_values(zen),
        sun_azimuth=_values(_mdelem(sun, "Azimuth")),
        viewing=tuple(viewing),
    )
    return tile, {"detectors": {(g.band_id, g.detector_id) for g in viewing}}


def test_s2ref_angles_from_its_own_metadata_equal_snap_bands(snap_test_product: Path) -> None:
    """S2Ref_Product.zip keeps the tile's 23 x 23 sun grids and 78 per-band, per-detector viewing
    grids (13 bands x detectors 2-7, band order 0, 9, 10, 1, ... in the file) and SNAP's angle
    bands (1 x 1 pixel of 5 km at tile UL + 50 km): placing the merged grids reproduces every one
    of them exactly, means included."""
    tile, info = _s2ref_tile_metadata(snap_test_product)
    assert tile.sun_zenith.shape == (23, 23) and len(tile.viewing) == 78
    assert {d for _, d in info["detectors"]} == {2, 3, 4, 5, 6, 7}
    grids = build_angle_grids(tile)
    dimap = open_dimap(snap_test_product)
    g = dimap.bands["sun_zenith"].grid
    x, y = g.centres()
    place = lambda nodes: place_on_grid(  # noqa: E731
        nodes, (tile.ulx, tile.uly), tile.angle_step, x[0], y[:, 0]
    )
    for name in ("sun_zenith", "sun_azimuth", "view_zenith_mean", "view_azimuth_mean"):
        np.testing.assert_array_equal(place(getattr(grids, name)), dimap.read_band(name), name)
    for band in BAND_NAMES:
        for kind, merged in (("zenith", grids.view_zenith), ("azimuth", grids.view_azimuth)):
            snap = dimap.read_band(f"view_{kind}_{band}")
            np.testing.assert_array_equal(place(merged[band]), snap, f"view_{kind}_{band}")
    # the values the shared notes quote for node (10, 10)
    assert dimap.read_band("view_zenith_mean")[0, 0] == pytest.approx(5.016793, abs=1e-6)
    assert dimap.read_band("sun_zenith")[0, 0] == pytest.approx(30.1950, abs=1e-4)
