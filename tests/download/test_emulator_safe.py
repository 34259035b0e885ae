"""The emulator's HDA downloads are real, small SAFE zips that the SAFE reader opens.

A user downloading a product from the emulator gets what a real download gives: the SAFE folder
and file names, 13 JP2 bands and both metadata files, over a window of the tile that covers the
demo grid, with water-like reflectances; a partial product has no data outside its footprint.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seasonal_c2rcc.download import download_product, verify_product_zip
from seasonal_c2rcc.emulator import EmulatorServer
from seasonal_c2rcc.emulator.catalogue import products_for_tile
from seasonal_c2rcc.emulator.products import (
    DEFAULT_PRODUCT_EXTENT,
    parse_extent,
    product_extent,
    safe_zip_path,
)
from seasonal_c2rcc.grid import load_subtiles

from .test_download import FAST, make_config

ROOT = Path(__file__).resolve().parents[2]
TILE = "30UUA"


def summer_products() -> list[Any]:
    return products_for_tile(
        TILE, datetime(2019, 6, 1, tzinfo=UTC), datetime(2019, 9, 1, tzinfo=UTC)
    )


def as_dict(p: Any) -> dict[str, Any]:
    return {"key": p.stem, "id": p.id, "location": p.location, "size": p.size}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HDA_USER", "tester")
    monkeypatch.setenv("HDA_PASSWORD", "secret")
    monkeypatch.setenv("HDA_RC", str(tmp_path / "no-hdarc"))
    monkeypatch.chdir(tmp_path)


def test_downloaded_product_is_a_safe_the_reader_opens_over_the_demo_grid(
    emulator: Any, env: None, tmp_path: Path
) -> None:
    from seasonal_c2rcc.s2l1c.reader import open_safe

    product = next(p for p in summer_products() if p.partial is None and p.baseline == "N0500")
    path = download_product(as_dict(product), make_config(emulator, tmp_path), settings=FAST)

    with zipfile.ZipFile(path) as zf:
        jp2 = [n for n in zf.namelist() if n.endswith(".jp2")]
    assert len(jp2) == 13 and any(n.endswith("_B8A.jp2") for n in jp2)
    (sent,) = [d for d in emulator.accounting()["downloads"] if d["kind"] == "product"]
    assert sent["content_length"] == path.stat().st_size
    subtiles = load_subtiles(ROOT / "config/subtiles/demo_30UUA.json", "EPSG:32630")
    with open_safe(path) as safe:
        assert safe.name == product.stem
        assert safe.metadata.radiometric_offset == -1000  # baseline 05.00 carries the offset
        xmin, ymin, xmax, ymax = safe.bounds
        for st in subtiles:
            bx0, by0, bx1, by1 = st.geometry.bounds
            assert xmin <= bx0 and bx1 <= xmax and ymin <= by0 and by1 <= ymax, st.id
        # the demo's per-product job box at 60 m (both sub-tiles, snapped outward to the tile's
        # 60 m grid) reads in full
        inputs = safe.read_window((299960.0, 5539980.0, 320000.0, 5550060.0), 60)
    b2 = inputs.toa["B2"]
    finite = np.isfinite(b2)
    assert finite.mean() > 0.9  # water and a bit of land; the no-data block is small
    assert 0.05 < float(np.nanmedian(b2)) < 0.2  # water-like TOA reflectance at 490 nm


def test_partial_product_has_no_data_outside_its_footprint(tmp_path: Path) -> None:
    from seasonal_c2rcc.s2l1c.reader import open_safe

    east = next(
        p for p in products_for_tile(TILE, datetime(2019, 1, 1, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC))
        if p.partial == "east"
    )  # fmt: skip
    path = safe_zip_path(east, tmp_path)
    extent = product_extent(TILE, DEFAULT_PRODUCT_EXTENT)
    assert extent[2] <= east.cut_x  # the default window lies west of the cut: no data at all
    with open_safe(path) as safe:
        dn = safe.read_dn("B2", extent)
    assert dn.shape == (1014, 2010) and not dn.any()
    mtime = path.stat().st_mtime_ns
    assert safe_zip_path(east, tmp_path) == path and path.stat().st_mtime_ns == mtime  # kept


def test_product_extent_option(tmp_path: Path) -> None:
    assert parse_extent("0,49980,20100,60120") == DEFAULT_PRODUCT_EXTENT
    for bad in ("0,0,10,10", "0,0,1", "60,0,0,60", "0,0,120000,60"):
        with pytest.raises(ValueError, match="product extent"):
            parse_extent(bad)
    product = summer_products()[0]
    small = (60.0, 120.0, 1260.0, 1320.0)
    path = safe_zip_path(product, tmp_path, small)
    verify_product_zip(path, product.stem)
    with zipfile.ZipFile(path) as zf:
        tl = next(n for n in zf.namelist() if n.endswith("MTD_TL.xml"))
        text = zf.read(tl).decode()
    assert "<NROWS>120</NROWS>" in text and "<NCOLS>120</NCOLS>" in text  # 1.2 km at 10 m


def test_stub_payload_is_still_available(env: None, tmp_path: Path) -> None:
    with EmulatorServer(tmp_path / "emu", product_payload="stub") as emu:
        product = as_dict(summer_products()[0])
        path = download_product(product, make_config(emu, tmp_path), settings=FAST)
    with zipfile.ZipFile(path) as zf:
        assert f"{product['id']}/EMULATOR_README.txt" in zf.namelist()
