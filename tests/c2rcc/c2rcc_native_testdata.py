"""Test data of the native C2RCC-MSI tests: SNAP's test pixel and the shared data location."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seasonal_c2rcc.c2rcc import SOURCE_BANDS

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

#: The pin pixel of S2Ref_Product, as SNAP's MsiTestProduct.java hard-codes it (float32 values).
PIN_TOA = dict(
    zip(
        SOURCE_BANDS,
        [
            0.1251,
            0.0985,
            0.0827,
            0.0647,
            0.0705,
            0.0569,
            0.0593,
            0.0498,
            0.0547,
            0.0106,
            0.001,
            0.0452,
            0.0318,
        ],
        strict=True,
    )
)
PIN_ANGLES = {
    "sun_azimuth": 131.473,
    "sun_zenith": 30.195,
    "view_azimuth_mean": 86.0869,
    "view_zenith_mean": 5.01679,
}
#: MsiTestProduct's ECMWF bands (msl in Pa, tco3 in kg m-2).
PIN_ECMWF = {"msl": 101140.055, "tco3": 0.0056297514}


def pin_inputs(shape: tuple[int, int] = (1, 1)) -> tuple[dict, dict, dict]:
    """MsiTestProduct's pixel as float32 arrays of ``shape`` (SNAP's virtual bands are float32)."""
    toa = {b: np.full(shape, np.float32(v)) for b, v in PIN_TOA.items()}
    angles = {k: np.full(shape, np.float32(v)) for k, v in PIN_ANGLES.items()}
    ecmwf = {k: np.full(shape, np.float32(v)) for k, v in PIN_ECMWF.items()}
    return toa, angles, ecmwf
