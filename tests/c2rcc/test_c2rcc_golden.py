"""SNAP's own C2RCC-MSI unit-test values, reproduced to SNAP's tolerance (1e-6).

Expected values: ``MsiOperatorTest.java`` of s3tbx @ 87a854a5 (altitude 0: no DEM in SNAP <= 9's
test) and of optical-toolbox @ 92d55223 (Copernicus 90 m DEM at the test product's synthetic
position 49.5 N / 10.5 E, altitude ~337.5 m), each with default aux data and with
``useEcmwfAuxData=true`` (the product's msl / tco3 bands). The comparison mirrors JUnit's
``assertEquals(float expected, float actual, 1e-6)``: both float32, difference taken in double.
"""

from __future__ import annotations

import numpy as np
import pytest
from c2rcc_native_testdata import pin_inputs

from seasonal_c2rcc.c2rcc import NN_BANDS, C2rccMsiParams, NetSet, run_c2rcc_msi

#: (case id, altitude m, useEcmwfAuxData, conc_chl, conc_tsm, iop_apig, iop_bwit, rhow B1..B8A)
GOLDEN = [
    ("s3tbx-defaults", 0.0, False, 14.441857, 5.062996, 0.6976819, 4.0867243,
     [0.003311, 0.004983, 0.010308, 0.007630, 0.006501, 0.002323, 0.002366, 0.000986]),
    ("s3tbx-ecmwf", 0.0, True, 14.657781, 4.911448, 0.7077091, 4.0339804,
     [0.003032, 0.004516, 0.009282, 0.007060, 0.006061, 0.002194, 0.002237, 0.000937]),
    ("opttbx-defaults-dem", 337.5, False, 12.029993, 5.572476, 0.585264, 4.568540,
     [0.003817, 0.005736, 0.011709, 0.008642, 0.007270, 0.002554, 0.002591, 0.001073]),
    ("opttbx-ecmwf-dem", 337.5, True, 12.617269, 5.383925, 0.612711, 4.493466,
     [0.003418, 0.005088, 0.010344, 0.007879, 0.006699, 0.002393, 0.002434, 0.001014]),
]  # fmt: skip

TOLERANCE = 1.0e-6


def _abs_err(expected: float, actual: float) -> float:
    return abs(float(np.float32(expected)) - float(np.float32(actual)))


@pytest.mark.parametrize(
    ("case", "altitude", "ecmwf", "chl", "tsm", "apig", "bwit", "rhow"),
    GOLDEN,
    ids=[g[0] for g in GOLDEN],
)
def test_snap_msi_operator_values(
    std_nets: NetSet,
    case: str,
    altitude: float,
    ecmwf: bool,
    chl: float,
    tsm: float,
    apig: float,
    bwit: float,
    rhow: list[float],
) -> None:
    toa, angles, aux = pin_inputs()
    params = C2rccMsiParams(useEcmwfAuxData=ecmwf)
    ds = run_c2rcc_msi(toa, angles, altitude=altitude, params=params, nets=std_nets, ecmwf=aux)
    expected = {"conc_chl": chl, "conc_tsm": tsm, "iop_apig": apig, "iop_bwit": bwit}
    expected |= {f"rhow_{b}": v for b, v in zip(NN_BANDS, rhow, strict=True)}
    errors = {name: _abs_err(v, ds[name].values[0, 0]) for name, v in expected.items()}
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= TOLERANCE, f"{case}: {worst} off by {errors[worst]:.3g} ({errors})"
    assert all(ds[name].dtype == np.float32 for name in expected)
    # the default case of the doc also states tdown(865) = 0.9756 (no Cloud_risk) and a valid pixel
    assert int(ds["c2rcc_flags"].values[0, 0]) == 0x80000000


def test_ecmwf_ignored_without_flag_and_without_grids(std_nets: NetSet) -> None:
    """useEcmwfAuxData=false ignores the grids; =true without grids falls back to the constants.

    The second half is SNAP's ``testWithInternalECMWFAuxdata_ButAuxDataNotAvailable``.
    """
    toa, angles, aux = pin_inputs()
    base = run_c2rcc_msi(toa, angles, params=C2rccMsiParams(), nets=std_nets, ecmwf=aux)
    no_grids = run_c2rcc_msi(
        toa, angles, params=C2rccMsiParams(useEcmwfAuxData=True), nets=std_nets, ecmwf=None
    )
    assert _abs_err(14.441857, base["conc_chl"].values[0, 0]) <= TOLERANCE
    assert float(no_grids["conc_chl"].values[0, 0]) == float(base["conc_chl"].values[0, 0])


def test_rrs_is_rhow_over_pi(std_nets: NetSet) -> None:
    toa, angles, _ = pin_inputs()
    rhow = run_c2rcc_msi(toa, angles, nets=std_nets)
    rrs = run_c2rcc_msi(toa, angles, params=C2rccMsiParams(outputAsRrs=True), nets=std_nets)
    for b in NN_BANDS:
        assert f"rhow_{b}" not in rrs
        np.testing.assert_allclose(
            rrs[f"rrs_{b}"].values, rhow[f"rhow_{b}"].values / np.pi, rtol=1e-6
        )
        assert rrs[f"rrs_{b}"].attrs["units"] == "sr^-1"


def test_pressure_scaling_only_above_10_m(std_nets: NetSet) -> None:
    """alt <= 10 m leaves the pressure alone (identical result), above it changes the retrieval."""
    toa, angles, _ = pin_inputs()
    at0 = run_c2rcc_msi(toa, angles, altitude=0.0, nets=std_nets)
    at10 = run_c2rcc_msi(toa, angles, altitude=10.0, nets=std_nets)
    at11 = run_c2rcc_msi(toa, angles, altitude=11.0, nets=std_nets)
    assert float(at10["conc_chl"][0, 0]) == float(at0["conc_chl"][0, 0])
    assert float(at11["conc_chl"][0, 0]) != float(at0["conc_chl"][0, 0])
    # the elevation parameter is the fallback altitude when no altitude array is given
    via_param = run_c2rcc_msi(toa, angles, params=C2rccMsiParams(elevation=337.5), nets=std_nets)
    assert _abs_err(12.029993, via_param["conc_chl"].values[0, 0]) <= TOLERANCE
