"""Output signature (SNAP's band names and dtypes), the other two net sets, chunking and threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from c2rcc_native_testdata import pin_inputs

from seasonal_c2rcc.c2rcc import (
    NN_BANDS,
    SOURCE_BANDS,
    C2rccMsiParams,
    NetSet,
    load_nets,
    output_bands,
    run_c2rcc_msi,
)
from seasonal_c2rcc.c2rcc.msi import IOP_NAMES, c2rcc_msi_pixels
from seasonal_c2rcc.errors import ConfigError

# band groups of SNAP's ExpectedSignature.java (opttbx-c2rcc tests)
MANDATORY = {"iop_apig", "iop_adet", "iop_agelb", "iop_bpart", "iop_bwit", "iop_adg", "iop_atot",
             "iop_btot", "conc_chl", "conc_tsm", "c2rcc_flags"}  # fmt: skip
RTOA = {f"rtoa_{b}" for b in SOURCE_BANDS}
RHOW = {f"rhow_{b}" for b in NN_BANDS}
RRS = {f"rrs_{b}" for b in NN_BANDS}
RHOWN = {f"rhown_{b}" for b in NN_BANDS[:6]}
KD = {"kd489", "kdmin", "kd_z90max"}
UNC = {
    "unc_apig",
    "unc_adet",
    "unc_agelb",
    "unc_bpart",
    "unc_bwit",
    "unc_adg",
    "unc_atot",
    "unc_btot",
}
KD_UNC = {"unc_kd489", "unc_kdmin"}


def _names(**kw: object) -> set[str]:
    return {b.name for b in output_bands(C2rccMsiParams(**kw))}


def test_product_signatures_match_snap() -> None:
    defaults = MANDATORY | RTOA | RHOW | RHOWN | KD | UNC | KD_UNC
    assert defaults <= _names()
    assert _names() - defaults == {"unc_tsm", "unc_chl", "unc_kd_z90max"}  # virtual unc bands
    assert MANDATORY | RRS <= _names(outputAsRrs=True) and not RHOW & _names(outputAsRrs=True)
    only = _names(outputRtoa=False, outputUncertainties=False, outputAcReflectance=False,
                  outputRhown=False, outputKd=False)  # fmt: skip
    assert only == MANDATORY and len(only) == 11  # SNAP: testProductSignature_OnlyMandatory
    extra = _names(outputRpath=True, outputTdown=True, outputTup=True, outputOos=True,
                   outputRtosaGc=True, outputRtosaGcAann=True)  # fmt: skip
    for prefix in ("rpath", "tdown", "tup", "rtosa_gc", "rtosagc_aann"):
        assert {f"{prefix}_{b}" for b in NN_BANDS} <= extra
    assert {"oos_rtosa", "oos_rhow"} <= extra
    assert "oos_rrs" in _names(outputOos=True, outputAsRrs=True)


def test_dataset_dtypes_attrs_and_all_options(std_nets: NetSet) -> None:
    toa, angles, _ = pin_inputs((2, 3))
    params = C2rccMsiParams(outputRpath=True, outputTdown=True, outputTup=True, outputOos=True,
                            outputRtosaGc=True, outputRtosaGcAann=True)  # fmt: skip
    lat = np.full((2, 3), 50.0)
    ds = run_c2rcc_msi(toa, angles, lat=lat, lon=lat * 0 - 5, params=params, nets=std_nets)
    assert [v for v in ds.data_vars] == [b.name for b in output_bands(params)]
    for name, var in ds.data_vars.items():
        assert var.dims == ("y", "x") and var.shape == (2, 3)
        assert var.dtype == (np.uint32 if name == "c2rcc_flags" else np.float32), name
        assert np.isfinite(var.values).all(), name
    assert ds["conc_chl"].attrs["snap_virtual_expression"] == "pow(iop_apig, 1.04) * 21.0"
    assert ds["conc_tsm"].attrs["snap_virtual_expression"] == "1.06 * pow(iop_btot, 0.942)"
    assert ds["iop_apig"].attrs["valid_pixel_expression"] == "c2rcc_flags.Valid_PE"
    assert ds["c2rcc_flags"].attrs["flag_meanings"].split()[-1] == "Valid_PE"
    assert ds.attrs["product_type"] == "C2RCC_S2-MSI"
    assert ds["lat"].shape == (2, 3)
    # tdown of B8A is what the cloud test reads; the doc quotes 0.9756 for this pixel
    assert abs(float(ds["tdown_B8A"][0, 0]) - 0.9756) < 5e-5
    # virtual bands as SNAP evaluates them from the float32 bands
    btot = ds["iop_bpart"].values.astype(np.float64) + ds["iop_bwit"].values
    np.testing.assert_array_equal(ds["iop_btot"].values, btot.astype(np.float32))
    np.testing.assert_array_equal(
        ds["kd_z90max"].values, (1.0 / ds["kdmin"].values.astype(np.float64)).astype(np.float32)
    )
    np.testing.assert_allclose(ds["unc_tsm"].values, ds["unc_btot"].values * 1.06, rtol=1e-6)
    # rtosa = rtoa / ozone transmittance: slightly above rtoa
    assert (ds["rtosa_gc_B3"].values > ds["rtoa_B3"].values).all()


def test_tsm_and_chl_factors(std_nets: NetSet) -> None:
    toa, angles, _ = pin_inputs()
    a = run_c2rcc_msi(toa, angles, nets=std_nets)
    b = run_c2rcc_msi(toa, angles, nets=std_nets, params=C2rccMsiParams(CHLfac=42.0, TSMexp=1.0))
    assert float(b["conc_chl"][0, 0]) == pytest.approx(2 * float(a["conc_chl"][0, 0]), rel=1e-6)
    assert float(b["conc_tsm"][0, 0]) == pytest.approx(1.06 * float(a["iop_btot"][0, 0]), rel=1e-6)
    assert float(b["iop_apig"][0, 0]) == float(a["iop_apig"][0, 0])


@pytest.mark.parametrize("net_set", ["C2X-Nets", "C2X-COMPLEX-Nets"])
def test_other_net_sets_stay_inside_their_ranges(nets_dir: Path, net_set: str) -> None:
    """C2X and C2X-COMPLEX on the test pixel: 13-band water input, outputs within the nets' ranges."""
    nets = load_nets(net_set, nets_dir=nets_dir)
    assert nets["rw_iop"].n_in == 13 and nets["rw_rwnorm"].n_in == 11
    toa, angles, _ = pin_inputs()
    params = C2rccMsiParams(netSet=net_set, outputOos=True, outputTdown=True, outputTup=True,
                            outputRpath=True)  # fmt: skip
    ds = run_c2rcc_msi(toa, angles, params=params, nets=nets)
    flags = int(ds["c2rcc_flags"][0, 0])
    assert flags & 0x80000000 and not flags & 0b111  # valid, no OOR of inputs, no OOS of rtosa
    v = {k: float(x[0, 0]) for k, x in ds.data_vars.items()}
    rw, iop, kd = nets["rtosa_rw"], nets["rw_iop"], nets["rw_kd"]
    for i, b in enumerate(NN_BANDS):
        assert np.exp(rw.outmin[i]) <= v[f"rhow_{b}"] <= np.exp(rw.outmax[i]), b
    for i, name in enumerate(IOP_NAMES):
        assert np.exp(iop.outmin[i]) <= v[f"iop_{name}"] <= np.exp(iop.outmax[i]), name
    assert np.exp(kd.outmin[0]) <= v["kdmin"] <= np.exp(kd.outmax[0])
    assert np.exp(kd.outmin[1]) <= v["kd489"] <= np.exp(kd.outmax[1])
    trans = nets["rtosa_trans"]
    for i, b in enumerate(NN_BANDS):
        assert trans.outmin[i] <= v[f"tdown_{b}"] <= trans.outmax[i]
        assert trans.outmin[8 + i] <= v[f"tup_{b}"] <= trans.outmax[8 + i]
    assert all(np.isfinite(x) for x in v.values())
    assert v["conc_chl"] > 0 and v["conc_tsm"] > 0
    std = run_c2rcc_msi(toa, angles, nets=load_nets("C2RCC-Nets", nets_dir=nets_dir))
    assert v["conc_chl"] != float(std["conc_chl"][0, 0])  # a different retrieval, not the std nets


def test_chunks_and_threads_do_not_change_results(std_nets: NetSet) -> None:
    rng = np.random.default_rng(3)
    toa, angles, _ = pin_inputs((37, 23))
    toa = {k: (v * rng.uniform(0.8, 1.25, v.shape)).astype(np.float32) for k, v in toa.items()}
    toa["B8"][::5, ::4] = 0.3  # some invalid pixels
    angles["sun_zenith"] = rng.uniform(20, 80, (37, 23)).astype(np.float32)
    ref = run_c2rcc_msi(toa, angles, nets=std_nets, threads=1, chunk_rows=37)
    for rows, threads in ((1, 2), (5, 2), (7, 1)):
        ds = run_c2rcc_msi(toa, angles, nets=std_nets, threads=threads, chunk_rows=rows)
        for name in ref.data_vars:
            np.testing.assert_array_equal(ds[name].values, ref[name].values, err_msg=name)
    # per-pixel results do not depend on the neighbours: one pixel alone gives the same
    one = run_c2rcc_msi({k: v[3:4, 5:6] for k, v in toa.items()},
                        {k: v[3:4, 5:6] for k, v in angles.items()}, nets=std_nets)  # fmt: skip
    assert float(one["conc_chl"][0, 0]) == float(ref["conc_chl"][3, 5])


def test_float32_mode_is_close(std_nets: NetSet) -> None:
    toa, angles, _ = pin_inputs((4, 4))
    ref = run_c2rcc_msi(toa, angles, nets=std_nets)
    f32 = run_c2rcc_msi(toa, angles, nets=std_nets, dtype=np.float32)
    np.testing.assert_allclose(f32["conc_chl"].values, ref["conc_chl"].values, rtol=2e-3)
    np.testing.assert_array_equal(f32["c2rcc_flags"].values, ref["c2rcc_flags"].values)


def test_input_errors(std_nets: NetSet) -> None:
    toa, angles, _ = pin_inputs()
    with pytest.raises(ConfigError, match="B9"):
        run_c2rcc_msi({k: v for k, v in toa.items() if k != "B9"}, angles, nets=std_nets)
    # without rtoa output, B9..B12 are not needed
    partial = {k: v for k, v in toa.items() if k in (*NN_BANDS, "B8")}
    run_c2rcc_msi(partial, angles, nets=std_nets, params=C2rccMsiParams(outputRtoa=False))
    with pytest.raises(ConfigError, match="view_zenith_mean"):
        run_c2rcc_msi(
            toa, {k: v for k, v in angles.items() if k != "view_zenith_mean"}, nets=std_nets
        )
    with pytest.raises(ConfigError, match="shape"):
        run_c2rcc_msi(toa, angles | {"sun_zenith": np.zeros((2, 2))}, nets=std_nets)


def test_pixel_core_is_feature_major(std_nets: NetSet) -> None:
    n = 3
    rtoa = np.repeat(
        np.array([0.1251, 0.0985, 0.0827, 0.0647, 0.0705, 0.0569, 0.0593, 0.0547])[:, None], n, 1
    )
    out, flags = c2rcc_msi_pixels(std_nets, C2rccMsiParams(), rtoa, *(np.full(n, v) for v in
                                  (30.195, 131.473, 5.01679, 86.0869, 0.0, 1000.0, 330.0)))  # fmt: skip
    assert out["iop_apig"].shape == (n,) and (flags == 0x80000000).all()
