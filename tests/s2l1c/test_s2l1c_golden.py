"""SNAP's C2RCC test pixel written into a synthetic SAFE as DN, through the reader and the native
C2RCC, gives SNAP's golden values (s3tbx rows: altitude 0) to SNAP's tolerance of 1e-6."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from s2l1c_testdata import small_extent

from seasonal_c2rcc.c2rcc import NN_BANDS, C2rccMsiParams, load_nets, run_c2rcc_msi
from seasonal_c2rcc.c2rcc.reference import PIN_ANGLES, PIN_TOA
from seasonal_c2rcc.s2l1c import BAND_NAMES, BAND_RESOLUTION, open_safe
from seasonal_c2rcc.s2l1c.synthetic import dn_for_reflectance

EXTENT = small_extent(1.2, 1.2)  # 20 x 20 pixels of 60 m
#: s3tbx MsiOperatorTest, default aux data, altitude 0 (tests/c2rcc/test_c2rcc_golden.py)
GOLDEN = {
    "conc_chl": 14.441857, "conc_tsm": 5.062996, "iop_apig": 0.6976819, "iop_bwit": 4.0867243,
    "rhow_B1": 0.003311, "rhow_B2": 0.004983, "rhow_B3": 0.010308, "rhow_B4": 0.007630,
    "rhow_B5": 0.006501, "rhow_B6": 0.002323, "rhow_B7": 0.002366, "rhow_B8A": 0.000986,
}  # fmt: skip


def _mean_preserving(value: float, n: int = 13) -> list[float]:
    """Per-band float32 values whose float32 mean (SNAP's sequential sum / n) is exactly
    ``float32(value)``: n - 1 bands at the value, the last one nudged by a few ulp if needed."""
    target = np.float32(value)
    w = target
    for _ in range(256):
        s = np.float32(0)
        for v in [target] * (n - 1) + [w]:
            s = np.float32(s + v)
        mean = s / np.float32(n)
        if mean == target:
            return [float(target)] * (n - 1) + [float(w)]
        w = np.nextafter(w, np.float32(np.inf) if mean < target else np.float32(-np.inf))
    raise AssertionError(f"no float32 reproduces the mean {value}")


def _pin_product(make_safe, baseline: str, overrides: dict[str, int] | None = None) -> Path:
    dn = {}
    for band in BAND_NAMES:
        res = BAND_RESOLUTION[band]
        shape = (round((EXTENT[3] - EXTENT[1]) / res), round((EXTENT[2] - EXTENT[0]) / res))
        dn[band] = np.full(shape, dn_for_reflectance(PIN_TOA[band], baseline), dtype=np.uint16)
        if overrides and band in overrides:
            dn[band][:] = overrides[band]
    angles = {
        "sun_zenith": PIN_ANGLES["sun_zenith"],
        "sun_azimuth": PIN_ANGLES["sun_azimuth"],
        "view_zenith": _mean_preserving(PIN_ANGLES["view_zenith_mean"]),
        "view_azimuth": _mean_preserving(PIN_ANGLES["view_azimuth_mean"]),
    }
    return make_safe(baseline, extent=EXTENT, dn=dn, angles=angles)


@pytest.mark.parametrize("baseline", ["02.09", "04.00"])
def test_snap_test_pixel_through_reader_and_c2rcc(make_safe, nets_dir: Path, baseline: str) -> None:
    product = open_safe(_pin_product(make_safe, baseline))
    inputs = product.read_window(EXTENT, 20)
    for band in BAND_NAMES:  # 4-decimal reflectances map to integer DNs exactly
        assert (inputs.toa[band] == np.float32(PIN_TOA[band])).all(), band
    for name, value in PIN_ANGLES.items():
        assert (inputs.angles[name] == np.float32(value)).all(), name
    ds = run_c2rcc_msi(
        inputs.toa,
        inputs.angles,
        inputs.lat,
        inputs.lon,
        altitude=0.0,
        params=C2rccMsiParams(),
        nets=load_nets("C2RCC-Nets", nets_dir=nets_dir),
    )
    for name, expected in GOLDEN.items():
        got = ds[name].values
        err = np.abs(got.astype(np.float64) - float(np.float32(expected))).max()
        assert err <= 1e-6, f"{baseline} {name}: off by {err:.3g}"
    assert (ds["c2rcc_flags"].values == 0x80000000).all()


def test_zero_reflectance_pixel_through_reader_and_c2rcc(make_safe, nets_dir: Path) -> None:
    """DN 1000 in B8A at baseline 04.00 is reflectance 0 and gives Java's chl 0.0103 (issue 10)."""
    product = open_safe(_pin_product(make_safe, "04.00", {"B8A": 1000}))
    inputs = product.read_window(EXTENT, 60)
    assert (inputs.toa["B8A"] == 0.0).all()
    nets = load_nets("C2RCC-Nets", nets_dir=nets_dir)
    ds = run_c2rcc_msi(inputs.toa, inputs.angles, altitude=0.0, nets=nets)
    chl = ds["conc_chl"].values
    assert chl == pytest.approx(np.full(chl.shape, 0.0103), abs=5e-5)
    assert set(NN_BANDS) <= set(inputs.toa)
