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


class LiteralOrderNet:
    """A net evaluated in SNAP's literal operation order (``calc(exact=True)``): the reference the
    fused fast path is checked against."""

    def __init__(self, base) -> None:
        self.base = base

    def __getattr__(self, name: str) -> object:
        return getattr(self.base, name)

    def calc_t(self, x, dtype=np.float64, outputs=None):
        out = self.base.calc(np.ascontiguousarray(x[: self.base.n_in].T), exact=True).T
        return out if outputs is None else out[outputs]


def literal_order(nets):
    """``nets`` (a NetSet) with every net evaluated in SNAP's literal order."""
    from seasonal_c2rcc.c2rcc import NetSet

    return NetSet(nets.name, {r: LiteralOrderNet(n) for r, n in nets.nets.items()}, nets.sources)
