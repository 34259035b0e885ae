"""Every ``c2rcc_flags`` bit: when SNAP's algorithm sets it, and when it does not.

Bits driven by the inputs are provoked physically on SNAP's test pixel (sun zenith beyond the
nets' ranges, thresholds, the valid-pixel expression). The IOP and Kd range bits depend on net
outputs: the nets' sigmoid output layer keeps outputs inside the declared range, so ``Iop_OOR``,
``Kd489_OOR`` and ``Kdmin_OOR`` cannot fire with SNAP's own nets; their logic is shown with a net
whose output is fixed (a stand-in for a net with a different output layer). The at-limit bits are
also checked against the IOPs on the real S2Ref product with C2X-Nets, where some fire naturally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from c2rcc_native_testdata import pin_inputs

from seasonal_c2rcc.c2rcc import C2rccMsiParams, NetSet, NeuralNet, load_nets, run_c2rcc_msi
from seasonal_c2rcc.c2rcc.dimap import open_dimap
from seasonal_c2rcc.c2rcc.msi import IOP_NAMES, LOG_THRESH_OOR, NN_BANDS, c2rcc_msi_pixels
from seasonal_c2rcc.flags import C2RCC_FLAGS, FLAG_MASKS

VALID = FLAG_MASKS["Valid_PE"]


def _names(word: int) -> set[str]:
    return {name for name, bit, _ in C2RCC_FLAGS if word >> bit & 1}


def _run_pin(
    nets: NetSet, params: C2rccMsiParams | None = None, **angles: float
) -> tuple[int, dict]:
    toa, ang, _ = pin_inputs()
    for k, v in angles.items():
        ang[k] = np.full((1, 1), np.float32(v))
    ds = run_c2rcc_msi(toa, ang, params=params or C2rccMsiParams(), nets=nets)
    return int(ds["c2rcc_flags"].values[0, 0]), {k: float(v.values[0, 0]) for k, v in ds.items()}


def test_flag_table_is_snaps() -> None:
    bits = {name: bit for name, bit, _ in C2RCC_FLAGS}
    assert bits["Rtosa_OOS"] == 0 and bits["Rhow_OOS"] == 15 and bits["Kdmin_at_max"] == 19
    assert bits["Valid_PE"] == 31 and len(bits) == 21


def test_pin_pixel_has_only_valid_pe(std_nets: NetSet) -> None:
    word, _ = _run_pin(std_nets)
    assert word == VALID


def test_valid_pe_follows_the_expression(std_nets: NetSet) -> None:
    toa, ang, _ = pin_inputs((1, 3))
    toa["B8"] = np.array([[0.0498, 0.2, 0.0]], dtype=np.float32)  # water, bright, no data
    ds = run_c2rcc_msi(toa, ang, nets=std_nets)
    assert list(ds["c2rcc_flags"].values[0]) == [VALID, 0, 0]
    # an expression that accepts everything makes all three valid (SNAP processes them)
    ds = run_c2rcc_msi(toa, ang, params=C2rccMsiParams(validPixelExpression="true"), nets=std_nets)
    assert all(int(w) & VALID for w in ds["c2rcc_flags"].values[0])
    # an empty expression means "true" in SNAP too
    ds = run_c2rcc_msi(toa, ang, params=C2rccMsiParams(validPixelExpression=""), nets=std_nets)
    assert all(int(w) & VALID for w in ds["c2rcc_flags"].values[0])


def test_rtosa_oor_when_sun_zenith_exceeds_the_atmospheric_nets(std_nets: NetSet) -> None:
    # std rtosa_aann allows sun zenith up to ~79.6 deg; rw_iop only to 75 deg
    assert std_nets["rtosa_aann"].inmax[0] < 80.0 < 90.0
    word, _ = _run_pin(std_nets, sun_zenith=80.0)
    assert {"Rtosa_OOR", "Rhow_OOR"} <= _names(word)


def test_rhow_oor_without_rtosa_oor(std_nets: NetSet) -> None:
    assert std_nets["rw_iop"].inmax[0] == 75.0
    word, _ = _run_pin(std_nets, sun_zenith=76.0)
    assert "Rhow_OOR" in _names(word) and "Rtosa_OOR" not in _names(word)


def test_cloud_risk_from_tdown865(std_nets: NetSet) -> None:
    word, _ = _run_pin(std_nets)
    assert "Cloud_risk" not in _names(word)  # tdown(865) = 0.9756 > 0.955
    word, _ = _run_pin(std_nets, C2rccMsiParams(thresholdCloudTDown865=0.99))
    assert "Cloud_risk" in _names(word)
    word, _ = _run_pin(std_nets, sun_zenith=70.0)  # long slant path: low transmittance
    assert "Cloud_risk" in _names(word)


def test_rtosa_oos_only_with_output_oos(std_nets: NetSet) -> None:
    word, v = _run_pin(std_nets, C2rccMsiParams(outputOos=True))
    assert "Rtosa_OOS" not in _names(word) and 0.0 < v["oos_rtosa"] < 0.05
    word, _ = _run_pin(
        std_nets, C2rccMsiParams(outputOos=True, thresholdRtosaOOS=v["oos_rtosa"] / 2)
    )
    assert "Rtosa_OOS" in _names(word)
    # without outputOos the AANN is not run: oos = 0, so a positive threshold never fires...
    word, _ = _run_pin(std_nets, C2rccMsiParams(outputOos=False, thresholdRtosaOOS=1e-9))
    assert "Rtosa_OOS" not in _names(word)
    # ...but SNAP still compares 0 > threshold, so a negative threshold sets it
    word, _ = _run_pin(std_nets, C2rccMsiParams(thresholdRtosaOOS=-1.0))
    assert "Rtosa_OOS" in _names(word)


def test_rhow_oos_only_with_output_oos(std_nets: NetSet) -> None:
    word, v = _run_pin(std_nets, C2rccMsiParams(outputOos=True))
    assert "Rhow_OOS" not in _names(word) and 0.0 < v["oos_rhow"] < 0.1
    thr = v["oos_rhow"] / 2
    word, _ = _run_pin(std_nets, C2rccMsiParams(outputOos=True, thresholdAcReflecOos=thr))
    assert "Rhow_OOS" in _names(word)
    word, _ = _run_pin(std_nets, C2rccMsiParams(outputOos=False, thresholdAcReflecOos=-1.0))
    assert "Rhow_OOS" not in _names(word)  # only evaluated inside SNAP's "if (outputOos)"


@dataclass(frozen=True)
class FixedOutputNet:
    """A net with ``base``'s ranges whose outputs are fixed: stands in for an out-of-range net."""

    base: NeuralNet
    values: tuple[float, ...]

    def __getattr__(self, name: str) -> object:
        return getattr(self.base, name)

    def calc_t(
        self,
        x: npt.NDArray[np.floating],
        dtype: npt.DTypeLike = np.float64,
        outputs: slice | None = None,
    ) -> np.ndarray:
        out = np.repeat(np.asarray(self.values, dtype=np.float64)[:, None], x.shape[1], axis=1)
        return out if outputs is None else out[outputs]


def _with_fixed(nets: NetSet, role: str, values: list[float]) -> NetSet:
    swapped = dict(nets.nets)
    swapped[role] = FixedOutputNet(nets[role], tuple(values))  # type: ignore[assignment]
    return NetSet(name=nets.name, nets=swapped, sources=nets.sources)


def _iop_values(net: NeuralNet, i: int, where: str) -> list[float]:
    lo, hi = net.outmin, net.outmax
    values = list((lo + hi) / 2)
    values[i] = {
        "near_max": hi[i] - LOG_THRESH_OOR / 2,
        "above": hi[i] + 0.5,
        "near_min": lo[i] + LOG_THRESH_OOR / 2,
        "below": lo[i] - 0.5,
    }[where]
    return values


@pytest.mark.parametrize("i", range(5), ids=IOP_NAMES)
@pytest.mark.parametrize("where", ["near_max", "above", "near_min", "below"])
def test_iop_range_bits(std_nets: NetSet, i: int, where: str) -> None:
    cap = IOP_NAMES[i].capitalize()
    nets = _with_fixed(std_nets, "rw_iop", _iop_values(std_nets["rw_iop"], i, where))
    word, _ = _run_pin(nets)
    expected = {
        "near_max": {f"{cap}_at_max"},
        "above": {f"{cap}_at_max", "Iop_OOR"},
        "near_min": {f"{cap}_at_min"},
        "below": {f"{cap}_at_min", "Iop_OOR"},
    }[where]
    assert _names(word) - {"Valid_PE"} == expected


@pytest.mark.parametrize(
    ("kdmin", "kd489", "expected"),
    [
        ("mid", "near_max", {"Kd489_at_max", "Kdmin_at_max"}),  # SNAP tests kd489 for both
        ("near_max", "mid", set()),  # ... so kdmin at its maximum raises nothing
        ("mid", "above", {"Kd489_OOR", "Kd489_at_max", "Kdmin_at_max"}),
        ("above", "mid", {"Kdmin_OOR"}),
        ("below", "mid", {"Kdmin_OOR"}),
        ("mid", "below", {"Kd489_OOR"}),
    ],
)
def test_kd_bits(std_nets: NetSet, kdmin: str, kd489: str, expected: set[str]) -> None:
    net = std_nets["rw_kd"]
    lo, hi = net.outmin, net.outmax

    def value(k: int, where: str) -> float:
        return {
            "mid": (lo[k] + hi[k]) / 2,
            "near_max": hi[k] - LOG_THRESH_OOR / 2,
            "above": hi[k] + 0.5,
            "below": lo[k] - 0.5,
        }[where]

    nets = _with_fixed(std_nets, "rw_kd", [value(0, kdmin), value(1, kd489)])
    word, _ = _run_pin(nets)
    assert _names(word) - {"Valid_PE"} == expected
    # the Kd bits are computed only if Kd or uncertainties are output
    off = C2rccMsiParams(outputKd=False, outputUncertainties=False)
    word, _ = _run_pin(nets, off)
    assert _names(word) == {"Valid_PE"}


def test_at_limit_bits_match_iops_on_real_product(nets_dir: Path, snap_test_product: Path) -> None:
    """C2X-Nets on the S2Ref subset: some at-limit bits fire; each is set iff its IOP is there."""
    nets = load_nets("C2X-Nets", nets_dir=nets_dir)
    inp = open_dimap(snap_test_product).c2rcc_inputs(with_latlon=False)
    valid = inp.toa["B8"] < 0.1
    rtoa = np.stack([inp.toa[b][valid] for b in NN_BANDS]).astype(np.float64)
    ang = {k: v[valid].astype(np.float64) for k, v in inp.angles.items()}
    n = rtoa.shape[1]
    out, flags = c2rcc_msi_pixels(
        nets, C2rccMsiParams(netSet="C2X-Nets"), rtoa, ang["sun_zenith"], ang["sun_azimuth"],
        ang["view_zenith_mean"], ang["view_azimuth_mean"], np.zeros(n), np.full(n, 1000.0),
        np.full(n, 330.0),
    )  # fmt: skip
    lo, hi = nets["rw_iop"].outmin, nets["rw_iop"].outmax
    fired = 0
    for i, name in enumerate(IOP_NAMES):
        log_iop = np.log(out[f"iop_{name}"])
        for suffix, cond in (("max", log_iop > hi[i] - 0.02), ("min", log_iop < lo[i] + 0.02)):
            bit = (flags & FLAG_MASKS[f"{name.capitalize()}_at_{suffix}"]) != 0
            np.testing.assert_array_equal(bit, cond, err_msg=f"{name}_at_{suffix}")
            fired += int(bit.sum())
    assert fired > 0
