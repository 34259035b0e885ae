"""Sun and viewing angles from ``MTD_TL.xml`` the way SNAP's S2 reader builds its angle bands.

Follows ``Sentinel2OrthoProductReader.createS2OrthoAnglesGrids`` (optical-toolbox @ 92d55223):

- per band, the detector grids are merged in file order: each valid (finite) node overwrites, so a
  later detector wins where two overlap and a NaN node never erases a value; a band's merged grid
  is emitted when the ``bandId`` changes (the very last group only if its id is > 0, as in Java);
- ``view_*_mean`` is the float32 sum of the emitted band grids divided by their count: a NaN in
  any band makes the mean NaN, and azimuths are averaged arithmetically (no 0/360 handling);
- each node's value covers the ``COL_STEP`` x ``ROW_STEP`` cell to its south-east, anchored at
  the tile's 10 m upper-left corner (the angle image is a 5 km raster upsampled by Nearest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seasonal_c2rcc.s2l1c.metadata import BAND_NAMES, TileMetadata

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class AngleGrids:
    """The node grids of the four angle rasters C2RCC needs, plus the per-band viewing grids."""

    sun_zenith: F32
    sun_azimuth: F32
    view_zenith_mean: F32
    view_azimuth_mean: F32
    #: merged per-band grids, keyed by band name (as SNAP's ``view_zenith_B1`` ... bands)
    view_zenith: dict[str, F32]
    view_azimuth: dict[str, F32]


def build_angle_grids(tile: TileMetadata) -> AngleGrids:
    """Merge the detector grids and compute the mean viewing angles on the node grid."""
    shape = tile.sun_zenith.shape
    emitted: list[tuple[int, F32, F32]] = []
    zen = np.full(shape, np.nan, dtype=np.float32)
    azi = np.full(shape, np.nan, dtype=np.float32)
    last = -1
    usable = all(g.zenith.shape == shape and g.azimuth.shape == shape for g in tile.viewing)
    if usable and tile.viewing:
        for g in tile.viewing:
            if g.band_id != last:
                if last >= 0:
                    emitted.append((last, zen.copy(), azi.copy()))
                zen[:] = np.nan
                azi[:] = np.nan
                last = g.band_id
            ok = np.isfinite(g.zenith)
            zen[ok] = g.zenith[ok]
            ok = np.isfinite(g.azimuth)
            azi[ok] = g.azimuth[ok]
        if last > 0:  # Java adds the last group only when its band id is > 0
            emitted.append((last, zen.copy(), azi.copy()))
        zsum = np.zeros(shape, dtype=np.float32)
        asum = np.zeros(shape, dtype=np.float32)
        for _, z, a in emitted:
            zsum = zsum + z  # float32 accumulation in emission order, as the Java loop
            asum = asum + a
        n = np.float32(len(emitted))
        zmean = zsum / n if emitted else zsum
        amean = asum / n if emitted else asum
    else:  # SNAP keeps NaN means when the viewing grids are missing or mis-sized
        zmean = np.full(shape, np.nan, dtype=np.float32)
        amean = np.full(shape, np.nan, dtype=np.float32)
    names = {i: b for i, b in enumerate(BAND_NAMES)}
    return AngleGrids(
        sun_zenith=tile.sun_zenith.astype(np.float32),
        sun_azimuth=tile.sun_azimuth.astype(np.float32),
        view_zenith_mean=zmean.astype(np.float32),
        view_azimuth_mean=amean.astype(np.float32),
        view_zenith={names.get(b, str(b)): z for b, z, _ in emitted},
        view_azimuth={names.get(b, str(b)): a for b, _, a in emitted},
    )


def place_on_grid(
    nodes: F32,
    origin: tuple[float, float],
    step: tuple[float, float],
    x_centres: npt.NDArray[np.float64],
    y_centres: npt.NDArray[np.float64],
) -> F32:
    """Values of a node grid at pixel centres: node (r, c) fills the cell to its south-east.

    ``origin`` is (ULX, ULY), ``step`` (col step, row step) in m; pixels whose centre falls
    outside the node grid get NaN.
    """
    col = np.floor((x_centres - origin[0]) / step[0]).astype(np.intp)
    row = np.floor((origin[1] - y_centres) / step[1]).astype(np.intp)
    nrows, ncols = nodes.shape
    out = np.full((row.size, col.size), np.nan, dtype=np.float32)
    cok = (col >= 0) & (col < ncols)
    rok = (row >= 0) & (row < nrows)
    out[np.ix_(rok, cok)] = nodes[np.ix_(row[rok], col[cok])]
    return out
