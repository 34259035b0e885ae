"""A reflectance of exactly 0 in a net input band, as SNAP's Java computes it.

DN 1000 at baseline 04.00+ reads as reflectance 0; C2RCC feeds ``log(0) = -inf`` into the first
layer of the atmospheric nets, whose pre-activations become +-inf. Java's ``(int)`` cast saturates,
so +inf takes the *last* entry of the activation table. The reference here is SNAP's literal
order of operations (``NeuralNet.calc(exact=True)``: normalise, ``b + W.a``, ``(z + 10) * rec``,
clamp with fmax/fmin, which saturate like Java), run through the whole algorithm; the expected
numbers quoted in issue 10 (chl 0.0103 with C2RCC-Nets, kd489 0.063 with C2X-Nets, against the
0.0289 and 827 the first-entry behaviour gave) are checked to the precision given there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from c2rcc_native_testdata import literal_order, pin_inputs

from seasonal_c2rcc.c2rcc import NET_SET_DIRS, NN_BANDS, C2rccMsiParams, run_c2rcc_msi
from seasonal_c2rcc.c2rcc.nets import NUM_ALPHA, SIGMOID_TABLE, load_nets, tabulated_sigmoid


def _zero_pixel(band: str) -> tuple[dict, dict]:
    toa, angles, _ = pin_inputs()
    toa[band] = np.zeros((1, 1), dtype=np.float32)
    return toa, angles


def test_tabulated_sigmoid_saturates_like_java() -> None:
    x = np.array([np.inf, -np.inf, np.nan, 1e300, -1e300])
    got = tabulated_sigmoid(x)
    top, bottom = SIGMOID_TABLE[NUM_ALPHA - 1], SIGMOID_TABLE[0]
    np.testing.assert_array_equal(got, [top, bottom, bottom, top, bottom])


@pytest.mark.parametrize("net_set", list(NET_SET_DIRS))
def test_zero_reflectance_matches_java_order_in_every_band(nets_dir: Path, net_set: str) -> None:
    """Each NN band at exactly 0 in turn: the fast path equals the Java-order reference."""
    nets = load_nets(net_set, nets_dir=nets_dir)
    java = literal_order(nets)
    params = C2rccMsiParams(netSet=net_set)
    chl = {}
    for band in NN_BANDS:
        toa, angles = _zero_pixel(band)
        fast = run_c2rcc_msi(toa, angles, altitude=0.0, params=params, nets=nets)
        ref = run_c2rcc_msi(toa, angles, altitude=0.0, params=params, nets=java)
        for name in ("conc_chl", "conc_tsm", "kd489", "iop_apig", "rhow_B2", "c2rcc_flags"):
            np.testing.assert_array_equal(
                fast[name].values, ref[name].values, err_msg=f"{net_set} {band}=0 {name}"
            )
        chl[band] = float(fast["conc_chl"].values[0, 0])
    # the first-entry bug made every zeroed band give the same answer; saturation does not
    assert len(set(chl.values())) == len(NN_BANDS), chl


def test_issue_numbers_c2rcc_nets_b8a_zero(nets_dir: Path) -> None:
    """B8A = 0 with C2RCC-Nets: chl 0.0103 (the first-entry port gave 0.0289)."""
    nets = load_nets("C2RCC-Nets", nets_dir=nets_dir)
    toa, angles = _zero_pixel("B8A")
    ds = run_c2rcc_msi(toa, angles, altitude=0.0, nets=nets)
    assert float(ds["conc_chl"].values[0, 0]) == pytest.approx(0.0103, abs=5e-5)
    assert int(ds["c2rcc_flags"].values[0, 0]) & 0x80000000  # still a valid pixel


def test_issue_numbers_c2x_nets_b1_zero(nets_dir: Path) -> None:
    """B1 = 0 with C2X-Nets: kd489 0.063 (the first-entry port gave 827)."""
    nets = load_nets("C2X-Nets", nets_dir=nets_dir)
    toa, angles = _zero_pixel("B1")
    ds = run_c2rcc_msi(
        toa, angles, altitude=0.0, params=C2rccMsiParams(netSet="C2X-Nets"), nets=nets
    )
    assert float(ds["kd489"].values[0, 0]) == pytest.approx(0.063, abs=5e-4)
