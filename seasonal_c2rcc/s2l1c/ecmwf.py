"""``AUX_ECMWFT`` (GRIB): total ozone, water vapour and sea-level pressure as SNAP places them.

SNAP's ``ECMWFTReader`` turns each field into a tie-point grid with offset 0.5 and step 1220 in
10 m scene pixels, ignoring the file's own latitudes and longitudes; C2RCC then samples it
bilinearly (``TiePointGrid.getPixelDouble``). The fields are found by their GRIB names or
descriptions through GDAL's GRIB driver.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

#: SNAP's tie-point placement of the ECMWF fields (scene pixels of the 10 m grid).
TIE_POINT_OFFSET: Final = 0.5
TIE_POINT_STEP: Final = 1220.0
SCENE_PIXEL_M: Final = 10.0

#: GRIB element names (GRIB1 ECMWF table 128 and GRIB2) and description keywords per field.
_FIELDS: Final[dict[str, tuple[frozenset[str], tuple[str, ...]]]] = {
    "tco3": (frozenset({"TCO3", "TOZNE", "VAR206"}), ("total column ozone", "total ozone")),
    "tcwv": (
        frozenset({"TCWV", "TCIWV", "PWAT", "PWC", "VAR137"}),
        ("total column water vapour", "water vapor", "water vapour", "precipitable water"),
    ),
    "msl": (
        frozenset({"MSL", "PRMSL", "VAR151"}),
        ("mean sea level pressure", "pressure reduced to msl", "mean sea level"),
    ),
}


def identify_fields(tags: list[dict[str, str]]) -> dict[str, int]:
    """Band index (1-based) of each of ``tco3``, ``tcwv``, ``msl`` among GDAL band tags."""
    found: dict[str, int] = {}
    for i, t in enumerate(tags, start=1):
        element = t.get("GRIB_ELEMENT", "").strip().upper()
        comment = t.get("GRIB_COMMENT", "").lower()
        for name, (elements, words) in _FIELDS.items():
            if name in found:
                continue
            if element in elements or any(w in comment for w in words):
                found[name] = i
                break
    return found


def sample_tie_point_grid(
    nodes: npt.NDArray[np.floating],
    origin: tuple[float, float],
    x_centres: npt.NDArray[np.float64],
    y_centres: npt.NDArray[np.float64],
) -> npt.NDArray[np.float32]:
    """SNAP's bilinear ``TiePointGrid`` value at map points (extrapolating beyond the outer nodes).

    ``origin`` is the scene's (ULX, ULY); node (r, c) sits at scene pixel coordinate
    ``0.5 + 1220 * c`` (x) / ``0.5 + 1220 * r`` (y) of the 10 m grid.
    """
    g = np.asarray(nodes, dtype=np.float32).astype(np.float64)
    nrows, ncols = g.shape
    fi = ((x_centres - origin[0]) / SCENE_PIXEL_M - TIE_POINT_OFFSET) / TIE_POINT_STEP
    fj = ((origin[1] - y_centres) / SCENE_PIXEL_M - TIE_POINT_OFFSET) / TIE_POINT_STEP
    i = np.clip(np.floor(fi).astype(np.intp), 0, max(ncols - 2, 0))
    j = np.clip(np.floor(fj).astype(np.intp), 0, max(nrows - 2, 0))
    i1 = np.minimum(i + 1, ncols - 1)
    j1 = np.minimum(j + 1, nrows - 1)
    wi = (fi - i)[None, :]
    wj = (fj - j)[:, None]
    v00 = g[j[:, None], i[None, :]]
    v10 = g[j[:, None], i1[None, :]]
    v01 = g[j1[:, None], i[None, :]]
    v11 = g[j1[:, None], i1[None, :]]
    v = v00 + wi * (v10 - v00) + wj * (v01 - v00) + wi * wj * (v11 + v00 - v01 - v10)
    return v.astype(np.float32)
