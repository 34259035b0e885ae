"""Sentinel-2 L1C SAFE reader: C2RCC-MSI inputs from a product, as SNAP's ``Read -> Resample`` gives them.

Public API::

    from seasonal_c2rcc.s2l1c import open_safe
    product = open_safe("S2A_MSIL1C_..._T30UUA_....zip")     # or the unpacked .SAFE folder
    inputs = product.read_window((xmin, ymin, xmax, ymax), 20, ecmwf=False)   # C2rccInputs
    ds = run_c2rcc_msi(inputs.toa, inputs.angles, inputs.lat, inputs.lon, altitude=0.0, ...)

``bounds`` are in the tile's UTM CRS (``product.epsg``), on the resolution's pixel grid and
inside ``product.bounds``. A damaged product raises :class:`~seasonal_c2rcc.errors.ProductError`
(``product``, ``part``, ``redownload_may_fix``). Small synthetic products with the real layout:
:mod:`seasonal_c2rcc.s2l1c.synthetic`. SNAP-compatibility decisions: ``docs/s2-reader.md``.
"""

from seasonal_c2rcc.s2l1c.angles import AngleGrids, build_angle_grids, place_on_grid
from seasonal_c2rcc.s2l1c.metadata import (
    BAND_NAMES,
    BAND_RESOLUTION,
    ProductMetadata,
    TileMetadata,
    ViewingGrid,
    parse_product_metadata,
    parse_tile_metadata,
)
from seasonal_c2rcc.s2l1c.reader import SafeProduct, open_safe
from seasonal_c2rcc.s2l1c.resample import downsample_mean, upsample_nearest

__all__ = [
    "BAND_NAMES",
    "BAND_RESOLUTION",
    "AngleGrids",
    "ProductMetadata",
    "SafeProduct",
    "TileMetadata",
    "ViewingGrid",
    "build_angle_grids",
    "downsample_mean",
    "open_safe",
    "parse_product_metadata",
    "parse_tile_metadata",
    "place_on_grid",
    "upsample_nearest",
]
