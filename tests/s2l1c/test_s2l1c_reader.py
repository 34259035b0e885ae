"""The SAFE reader on synthetic products: radiometry, windows, resampling, metadata, damaged files."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from s2l1c_testdata import small_extent

from seasonal_c2rcc.errors import ConfigError, ProductError
from seasonal_c2rcc.s2l1c import (
    BAND_NAMES,
    downsample_mean,
    open_safe,
    parse_product_metadata,
    upsample_nearest,
)
from seasonal_c2rcc.s2l1c.synthetic import default_dn

EXTENT = small_extent()  # 6 km x 6 km at the tile's upper-left corner


def _shape(res: int) -> tuple[int, int]:
    return (round((EXTENT[3] - EXTENT[1]) / res), round((EXTENT[2] - EXTENT[0]) / res))


# ------------------------------------------------------------------------------- metadata


def test_metadata_of_both_baselines(safe_zip: Path, safe_zip_0209: Path) -> None:
    new, old = open_safe(safe_zip), open_safe(safe_zip_0209)
    assert new.metadata.processing_baseline == "04.00"
    assert new.metadata.quantification_value == 10000
    assert new.metadata.radio_add_offsets == {i: -1000.0 for i in range(13)}
    assert new.metadata.psd == 148 and new.metadata.radiometric_offset == -1000.0
    assert old.metadata.processing_baseline == "02.09"
    assert old.metadata.radio_add_offsets == {} and old.metadata.radiometric_offset == 0.0
    assert new.name.startswith("S2A_MSIL1C_20190612T113321_N0400_R080_T30UUA_")
    assert new.epsg == 32630 and new.bounds == EXTENT
    assert new.ecmwf_file is not None and old.ecmwf_file is None


MTD = b"""<?xml version="1.0"?>
<n1:Level-1C_User_Product xmlns:n1="https://psd-%(psd)s.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd">
 <n1:General_Info><Product_Info>
  <PRODUCT_START_TIME>2023-06-01T11:00:00.024Z</PRODUCT_START_TIME>
  <PRODUCT_URI>S2B_MSIL1C_20230601T110000_N%(nb)s_R037_T30UUA_20230601T130000.SAFE</PRODUCT_URI>
  <PROCESSING_BASELINE>%(pb)s</PROCESSING_BASELINE></Product_Info>
 <Product_Image_Characteristics><QUANTIFICATION_VALUE unit="none">10000</QUANTIFICATION_VALUE>
  <Radiometric_Offset_List>
   <RADIO_ADD_OFFSET band_id="0">-1000</RADIO_ADD_OFFSET>
   <RADIO_ADD_OFFSET band_id="12">-999</RADIO_ADD_OFFSET>
  </Radiometric_Offset_List></Product_Image_Characteristics>
 </n1:General_Info></n1:Level-1C_User_Product>"""


@pytest.mark.parametrize(
    ("psd", "pb", "offset"),
    [
        ("15", "05.11", -999.0),
        ("14", "05.09", -999.0),
        ("14", "04.00", -999.0),
        ("14", "02.14", 0.0),
    ],
)
def test_offset_rule_namespace_agnostic(psd: str, pb: str, offset: float) -> None:
    """SNAP's rule: offsets apply for format > 14.7 (psd-14 with baseline >= 04.00, psd-15+),
    whatever the namespace; the *last* listed value applies to every band."""
    xml = MTD % {b"psd": psd.encode(), b"pb": pb.encode(), b"nb": pb.replace(".", "").encode()}
    meta = parse_product_metadata(xml)
    assert meta.processing_baseline == pb
    assert meta.radiometric_offset == offset


# ------------------------------------------------------------------------------ radiometry


def test_reflectance_both_offsets_and_nodata(safe_zip: Path, safe_zip_0209: Path) -> None:
    """Same default field at both baselines reads as the same reflectance; DN 0 is NaN."""
    new, old = open_safe(safe_zip), open_safe(safe_zip_0209)
    a = new.read_window(EXTENT, 20)
    b = old.read_window(EXTENT, 20)
    dn_new = new.read_dn("B5", EXTENT)
    dn_old = old.read_dn("B5", EXTENT)
    np.testing.assert_array_equal(dn_new[dn_new > 0], dn_old[dn_old > 0] + 1000)
    for band in BAND_NAMES:
        np.testing.assert_array_equal(a.toa[band], b.toa[band], err_msg=band)
    # B5 is native 20 m: reflectance is (DN - 1000) / 10000 computed as SNAP's DN * 1e-4 - 0.1
    expected = (dn_new.astype(np.float64) * (1 / 10000) + (-1000 / 10000)).astype(np.float32)
    expected[dn_new == 0] = np.nan
    np.testing.assert_array_equal(a.toa["B5"], expected)
    assert np.isnan(a.toa["B5"]).sum() == 81  # the 3 x 3 block of 60 m no-data: 9 x 9 at 20 m
    assert a.toa["B5"].dtype == np.float32


def test_dn_1000_is_exact_zero_and_dn_0_is_nan(make_safe) -> None:
    dn = {"B5": np.full(_shape(20), 1500, dtype=np.uint16)}
    dn["B5"][0, 0] = 1000
    dn["B5"][0, 1] = 0
    dn["B5"][0, 2] = 999  # below the offset: a negative reflectance, as in SNAP
    p = open_safe(make_safe("04.00", dn=dn, zip=False))
    toa = p.read_window(EXTENT, 20).toa["B5"]
    assert toa[0, 0] == 0.0
    assert np.isnan(toa[0, 1])
    assert toa[0, 2] == np.float32(-0.0001)
    assert toa[1, 1] == np.float32(0.05)


# --------------------------------------------------------------------------- resampling


def test_downsample_mean_hand_made_blocks() -> None:
    dn = np.array(
        [
            [1, 2, 0, 0, 7, 8],
            [4, 4, 0, 0, 9, 9],
            [0, 5, 10, 10, 65535, 65534],
            [0, 0, 10, 11, 1, 1],
        ],
        dtype=np.uint16,
    )
    out = downsample_mean(dn, 2)
    # (1+2+4+4)/4 = 2.75 -> 2; all invalid -> 0 (no-data); (7+8+9+9)/4 = 8.25 -> 8;
    # one valid 5 -> 5; (10+10+10+11)/4 = 10.25 -> 10; large values averaged in double, truncated
    np.testing.assert_array_equal(out, [[2, 0, 8], [5, 10, 32767]])
    assert out.dtype == np.uint16
    # a 6 x 6 (10 m -> 60 m) block with 35 valid pixels of 100 and one 0 -> 100
    big = np.full((6, 6), 100, np.uint16)
    big[2, 3] = 0
    assert downsample_mean(big, 6)[0, 0] == 100
    with pytest.raises(ValueError, match="multiple"):
        downsample_mean(dn[:3], 2)


def test_upsample_nearest() -> None:
    dn = np.array([[1, 2], [3, 4]], dtype=np.uint16)
    np.testing.assert_array_equal(
        upsample_nearest(dn, 3)[:, :4],
        [[1, 1, 1, 2], [1, 1, 1, 2], [1, 1, 1, 2], [3, 3, 3, 4], [3, 3, 3, 4], [3, 3, 3, 4]],
    )


def test_resampling_through_the_reader(make_safe) -> None:
    """B2 (10 m) with a hand-made pattern reads at 20 m as SNAP's truncated Mean of each 2 x 2
    block (no-data skipped); B1 (60 m) reads at 20 m as 3 x 3 copies of each pixel."""
    b2 = np.full(_shape(10), 2000, dtype=np.uint16)
    b2[0:2, 0:2] = [[2001, 2002], [2002, 2002]]  # mean 2001.75 -> 2001
    b2[0:2, 2:4] = [[0, 0], [0, 2003]]  # one valid -> 2003
    b2[0:2, 4:6] = 0  # none valid -> no-data
    b1 = np.arange(np.prod(_shape(60)), dtype=np.uint16).reshape(_shape(60)) % 500 + 1100
    p = open_safe(make_safe("04.00", dn={"B2": b2, "B1": b1}))
    w = p.read_window(EXTENT, 20)
    assert w.toa["B2"][0, 0] == np.float32(1001 / 10000)
    assert w.toa["B2"][0, 1] == np.float32(1003 / 10000)
    assert np.isnan(w.toa["B2"][0, 2])
    assert w.toa["B2"][5, 5] == np.float32(0.1)
    expected_b1 = (upsample_nearest(b1, 3).astype(np.float64) * 1e-4 - 0.1).astype(np.float32)
    np.testing.assert_array_equal(w.toa["B1"], expected_b1)
    # at 60 m B2 is the Mean over 6 x 6 blocks of the 10 m pixels
    w60 = p.read_window(EXTENT, 60)
    blk = b2[0:6, 0:6]
    mean = int(blk[blk > 0].astype(np.float64).mean())
    assert w60.toa["B2"][0, 0] == np.float32((mean - 1000) / 10000)
    # at 10 m B5 (20 m) is Nearest: 2 x 2 copies
    w10 = p.read_window(EXTENT, 10)
    b5 = p.read_dn("B5", EXTENT)
    exp = (upsample_nearest(b5, 2).astype(np.float64) * 1e-4 - 0.1).astype(np.float32)
    exp[upsample_nearest(b5, 2) == 0] = np.nan
    np.testing.assert_array_equal(w10.toa["B5"], exp)


def test_window_equals_the_same_pixels_of_the_whole_product(safe_zip: Path) -> None:
    """Windows not aligned to 60 m (only to 20 m) give exactly the whole read's pixels."""
    p = open_safe(safe_zip)
    whole = p.read_window(p.bounds, 20, ecmwf=True)
    x0, y1 = EXTENT[0], EXTENT[3]
    window = (x0 + 20 * 37, y1 - 20 * 211, x0 + 20 * 250, y1 - 20 * 13)  # cols 37-249, rows 13-210
    part = p.read_window(window, 20, ecmwf=True)
    sl = (slice(13, 211), slice(37, 250))
    for band in BAND_NAMES:
        np.testing.assert_array_equal(part.toa[band], whole.toa[band][sl], err_msg=band)
    for name in part.angles:
        np.testing.assert_array_equal(part.angles[name], whole.angles[name][sl], err_msg=name)
    for name in ("tco3", "tcwv", "msl"):
        np.testing.assert_array_equal(part.ecmwf[name], whole.ecmwf[name][sl], err_msg=name)
    np.testing.assert_array_equal(part.lat, whole.lat[sl])
    np.testing.assert_array_equal(part.lon, whole.lon[sl])
    g = part.grid
    assert (g.width, g.height, g.m00, g.m11, g.m02, g.m12) == (
        213,
        198,
        20.0,
        -20.0,
        window[0],
        window[3],
    )
    assert "32630" in part.crs_wkt or "UTM zone 30N" in part.crs_wkt


def test_ecmwf_fields_are_plausible_and_bilinear(safe_zip: Path) -> None:
    p = open_safe(safe_zip)
    nodes = p.read_ecmwf_nodes()
    assert set(nodes) == {"tco3", "tcwv", "msl"} and nodes["tco3"].shape == (9, 9)
    w = p.read_window(EXTENT, 60, ecmwf=True)
    # node (0, 0) sits at the centre of the first 10 m pixel: at 60 m pixel (0, 0) (centre 30 m in)
    # the value is bilinear between nodes (0, 0) and (0, 1)/(1, 0), 2.5 px of 1220 along
    fi = (3.0 - 0.5) / 1220
    g = nodes["msl"].astype(np.float64)
    expected = (
        g[0, 0]
        + fi * (g[0, 1] - g[0, 0])
        + fi * (g[1, 0] - g[0, 0])
        + fi * fi * (g[1, 1] + g[0, 0] - g[0, 1] - g[1, 0])
    )
    assert w.ecmwf["msl"][0, 0] == np.float32(expected)
    assert 0.004 < float(w.ecmwf["tco3"].mean()) < 0.009  # kg m-2, ~300 DU
    assert p.read_window(EXTENT, 60).ecmwf == {}


# ------------------------------------------------------------------------------ bad input


def test_bad_windows_are_config_errors(safe_zip: Path) -> None:
    p = open_safe(safe_zip)
    x0, y0, x1, y1 = EXTENT
    with pytest.raises(ConfigError, match="not on the 20 m pixel grid"):
        p.read_window((x0 + 10, y0, x1, y1), 20)
    with pytest.raises(ConfigError, match="not inside product"):
        p.read_window((x0 - 60, y0, x1, y1), 20)
    with pytest.raises(ConfigError, match="10, 20 or 60"):
        p.read_window(EXTENT, 30)
    with pytest.raises(ConfigError, match="empty or inverted"):
        p.read_window((x1, y0, x0, y1), 20)
    with pytest.raises(ConfigError, match="does not exist"):
        open_safe(safe_zip.with_name("missing.zip"))


def _unzipped(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return next(dest.glob("*.SAFE"))


def _assert_product_error(exc: pytest.ExceptionInfo, part: str) -> None:
    err = exc.value
    assert isinstance(err, ProductError) and err.redownload_may_fix
    assert part in err.part, (part, err.part)
    assert "S2A_MSIL1C_" in str(err) and "download" in str(err)


def test_truncated_zip(safe_zip: Path, tmp_path: Path) -> None:
    data = safe_zip.read_bytes()
    bad = tmp_path / safe_zip.name
    bad.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ProductError) as exc:
        open_safe(bad)
    assert exc.value.part == "zip archive" and exc.value.product == safe_zip.name
    assert exc.value.redownload_may_fix


def test_corrupt_jp2_truncated_codestream(safe_zip: Path, tmp_path: Path) -> None:
    """A JP2 cut short (an interrupted copy or extraction) fails when decoded, naming the band."""
    safe = _unzipped(safe_zip, tmp_path)
    jp2 = next(safe.glob("GRANULE/*/IMG_DATA/*_B03.jp2"))
    raw = jp2.read_bytes()
    jp2.write_bytes(raw[: len(raw) // 2])
    p = open_safe(safe)
    with pytest.raises(ProductError) as exc:
        p.read_window(EXTENT, 20)
    _assert_product_error(exc, "band B3")


def test_corrupt_jp2_header(safe_zip: Path, tmp_path: Path) -> None:
    safe = _unzipped(safe_zip, tmp_path)
    jp2 = next(safe.glob("GRANULE/*/IMG_DATA/*_B11.jp2"))
    raw = bytearray(jp2.read_bytes())
    raw[:200] = bytes(200)
    jp2.write_bytes(bytes(raw))
    with pytest.raises(ProductError) as exc:
        open_safe(safe).read_window(EXTENT, 60)
    _assert_product_error(exc, "band B11")


def test_missing_band(safe_zip: Path, tmp_path: Path) -> None:
    safe = _unzipped(safe_zip, tmp_path)
    next(safe.glob("GRANULE/*/IMG_DATA/*_B8A.jp2")).unlink()
    with pytest.raises(ProductError) as exc:
        open_safe(safe)
    _assert_product_error(exc, "band B8A")


def test_missing_tile_metadata(safe_zip: Path, tmp_path: Path) -> None:
    safe = _unzipped(safe_zip, tmp_path)
    next(safe.glob("GRANULE/*/MTD_TL.xml")).unlink()
    with pytest.raises(ProductError) as exc:
        open_safe(safe)
    _assert_product_error(exc, "MTD_TL.xml")
    # the same product zipped without MTD_TL.xml
    rezipped = tmp_path / "re" / safe_zip.name
    rezipped.parent.mkdir()
    shutil.make_archive(str(rezipped.with_suffix("")), "zip", tmp_path, safe.name)
    with pytest.raises(ProductError) as exc:
        open_safe(rezipped)
    _assert_product_error(exc, "MTD_TL.xml")


def test_missing_metadata_element(safe_zip: Path, tmp_path: Path) -> None:
    safe = _unzipped(safe_zip, tmp_path)
    mtd = safe / "MTD_MSIL1C.xml"
    mtd.write_text(mtd.read_text().replace("QUANTIFICATION_VALUE", "QUANTIFICATION_XXX"))
    with pytest.raises(ProductError) as exc:
        open_safe(safe)
    assert exc.value.part == "QUANTIFICATION_VALUE"


def test_synthetic_default_field(safe_zip: Path) -> None:
    """Water-like (SNAP's test pixel +-5 %) with a land square where B8 is high, and no-data."""
    w = open_safe(safe_zip).read_window(EXTENT, 60)
    b8 = w.toa["B8"]
    water = b8 < 0.1
    assert 0.5 < np.mean(water) < 0.95 and (b8[~water & ~np.isnan(b8)] > 0.3).all()
    assert np.isnan(b8).sum() == 9
    ratio = w.toa["B2"][water] / np.float32(0.0985)
    assert ratio.min() > 0.94 and ratio.max() < 1.06
    dn = default_dn("B2", EXTENT, "04.00")
    assert dn.shape == _shape(10) and (dn == 0).sum() == 18 * 18


def test_synthetic_zip_bytes_and_product_ids(tmp_path: Path) -> None:
    from seasonal_c2rcc.s2l1c.synthetic import ProductId, synthetic_safe_zip_bytes

    pid = "S2B_MSIL1C_20170704T113319_N0205_R080_T30UUA_20170704T113319"
    info = ProductId.parse(pid)
    assert (info.baseline, info.tile, info.offset) == ("02.05", "30UUA", 0)
    assert ProductId.parse(pid.replace("N0205", "N0511")).offset == -1000
    data = synthetic_safe_zip_bytes(pid, extent=small_extent(1.2, 1.2))
    path = tmp_path / f"{pid}.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert f"{pid}.SAFE/MTD_MSIL1C.xml" in names
    assert any(n.endswith("/IMG_DATA/T30UUA_20170704T113319_B8A.jp2") for n in names)
    assert sum(n.endswith(".jp2") for n in names) == 13
    p = open_safe(path)
    assert p.name == pid and p.metadata.radiometric_offset == 0.0
    with pytest.raises(ConfigError, match="not an L1C product id"):
        ProductId.parse("S2A_MSIL2A_20170704T113319_N0205_R080_T30UUA_20170704T113319")
    with pytest.raises(ConfigError, match="60 m grid"):
        synthetic_safe_zip_bytes(pid, extent=(300000.0, 5590000.0, 301200.0, 5591200.0))


def test_n0511_namespace_product_opens(make_safe) -> None:
    """Baseline 05.11 products use the psd-15 namespace in both metadata files."""
    path = make_safe("05.11", extent=small_extent(1.2, 1.2), zip=False)
    assert "psd-15" in (path / "MTD_MSIL1C.xml").read_text()
    p = open_safe(path)
    assert p.metadata.psd == 150 and p.metadata.radiometric_offset == -1000.0
    w = p.read_window(p.bounds, 60)
    assert w.toa["B2"][0, 0] == pytest.approx(0.0985, rel=0.06)
