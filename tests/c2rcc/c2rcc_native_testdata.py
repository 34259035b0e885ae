"""Test data of the native C2RCC-MSI tests: SNAP's test pixel and the shared data location."""

from __future__ import annotations

import numpy as np

# SNAP's test pixel lives in the package (the benchmark uses it too); re-exported for the tests.
from seasonal_c2rcc.c2rcc.reference import PIN_ANGLES, PIN_TOA  # noqa: F401

#: MsiTestProduct's ECMWF bands (msl in Pa, tco3 in kg m-2).
PIN_ECMWF = {"msl": 101140.055, "tco3": 0.0056297514}


def pin_inputs(shape: tuple[int, int] = (1, 1)) -> tuple[dict, dict, dict]:
    """MsiTestProduct's pixel as float32 arrays of ``shape`` (SNAP's virtual bands are float32)."""
    toa = {b: np.full(shape, np.float32(v)) for b, v in PIN_TOA.items()}
    angles = {k: np.full(shape, np.float32(v)) for k, v in PIN_ANGLES.items()}
    ecmwf = {k: np.full(shape, np.float32(v)) for k, v in PIN_ECMWF.items()}
    return toa, angles, ecmwf
