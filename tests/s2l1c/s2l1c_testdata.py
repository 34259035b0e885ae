"""Test data of the SAFE reader tests: the tile, the sensing time and small extents."""

from __future__ import annotations

from datetime import UTC, datetime

from seasonal_c2rcc.mgrs import tile_grid

TILE = "30UUA"
SENSING = datetime(2019, 6, 12, 11, 33, 21, tzinfo=UTC)


def small_extent(
    km_east: float = 6.0, km_south: float = 6.0, dx: float = 0.0, dy: float = 0.0
) -> tuple[float, float, float, float]:
    """An extent at the tile's upper-left corner (+ offsets in m), sizes multiples of 60 m."""
    g = tile_grid(TILE)
    w, h = round(km_east * 1000 / 60) * 60, round(km_south * 1000 / 60) * 60
    return (g.ulx + dx, g.uly - dy - h, g.ulx + dx + w, g.uly - dy)
