"""Fixtures of the SAFE reader tests: small synthetic L1C products built once per session."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from seasonal_c2rcc.mgrs import tile_grid
from seasonal_c2rcc.s2l1c.synthetic import make_product_id, write_synthetic_safe

TILE = "30UUA"
SENSING = datetime(2019, 6, 12, 11, 33, 21, tzinfo=UTC)


def small_extent(km_east: float = 6.0, km_south: float = 6.0, dx: float = 0.0, dy: float = 0.0):
    """An extent at the tile's upper-left corner (+ offsets in m), sizes multiples of 60 m."""
    g = tile_grid(TILE)
    w, h = round(km_east * 1000 / 60) * 60, round(km_south * 1000 / 60) * 60
    return (g.ulx + dx, g.uly - dy - h, g.ulx + dx + w, g.uly - dy)


@pytest.fixture(scope="session")
def make_safe(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``make_safe(baseline="04.00", zip=True, **kwargs)``: a synthetic product in a fresh folder."""
    counter = iter(range(10_000))

    def make(baseline: str = "04.00", **kwargs) -> Path:
        kwargs.setdefault("extent", small_extent())
        dest = tmp_path_factory.mktemp(f"safe{next(counter)}")
        pid = make_product_id(TILE, SENSING, baseline=baseline)
        return write_synthetic_safe(dest, pid, **kwargs)

    return make


@pytest.fixture(scope="session")
def safe_zip(make_safe) -> Path:
    """A default 6 km x 6 km product, baseline 04.00, zipped, with AUX_ECMWFT."""
    return make_safe("04.00", ecmwf=True)


@pytest.fixture(scope="session")
def safe_zip_0209(make_safe) -> Path:
    """The same field at baseline 02.09 (no radiometric offset)."""
    return make_safe("02.09")
