"""C2RCC-MSI, the per-pixel algorithm of SNAP's ``c2rcc.msi`` operator, vectorised over arrays.

Follows ``eu.esa.opt.c2rcc.msi.C2rccMsiAlgorithm.processPixel`` and ``C2rccMsiOperator`` of
optical-toolbox @ 92d55223 step by step (see ``docs/c2rcc.md``): valid-pixel expression, ozone
correction, pressure from altitude, geometry, atmospheric nets, water nets, IOPs and their flags,
Kd, uncertainties, normalised reflectance and the out-of-scope tests. Arithmetic is float64 as in
the Java code; inputs are taken as float32 (what SNAP's readers and virtual bands hold) and every
output band is stored as float32, ``c2rcc_flags`` as uint32.

Work is done in row chunks; within a chunk only the valid pixels are gathered and pushed through
the nets as matrices, so there is no Python loop per pixel and invalid pixels cost nothing. Chunks
run on a thread pool: numpy's GEMM, ufuncs and ``take`` release the GIL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import xarray as xr
from threadpoolctl import threadpool_limits

from seasonal_c2rcc.c2rcc.expression import parse_expression
from seasonal_c2rcc.c2rcc.nets import NetSet, calc_group_t, load_nets
from seasonal_c2rcc.c2rcc.params import C2rccMsiParams
from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.flags import C2RCC_FLAGS, FLAG_MASKS

F64 = npt.NDArray[np.float64]

#: Source reflectance bands in SNAP's order (``SOURCE_BAND_REFL_NAMES``).
SOURCE_BANDS: Final = (
    "B1",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6",
    "B7",
    "B8",
    "B8A",
    "B9",
    "B10",
    "B11",
    "B12",
)
#: The eight bands the nets use, B8A in the eighth slot (``NN_SOURCE_BAND_REFL_NAMES``).
NN_BANDS: Final = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8A")
#: Angle rasters the operator requires.
ANGLE_NAMES: Final = ("sun_zenith", "sun_azimuth", "view_zenith_mean", "view_azimuth_mean")
#: Ozone absorption coefficients for the eight NN bands (``absorb_ozon``).
ABSORB_OZONE: Final = np.array(
    [0.0035560, 0.0205669, 0.105446, 0.0501634, 0.0198157, 0.0107319, 0.0075270, 0.0018944]
)
#: Margin in ln units for the ``*_at_max`` / ``*_at_min`` flags (``log_threshfak_oor``).
LOG_THRESH_OOR: Final = 0.02
#: ECMWF conversions the operator applies (``tco3 * 46698`` kg m-2 -> DU, ``msl / 100`` Pa -> hPa).
TCO3_TO_DU: Final = 46698.0
IOP_NAMES: Final = ("apig", "adet", "agelb", "bpart", "bwit")
PRODUCT_TYPE: Final = "C2RCC_S2-MSI"
#: Default work unit (pixels per chunk).
CHUNK_PIXELS: Final = 8192
VALID_EXPRESSION: Final = "c2rcc_flags.Valid_PE"

_BIT = {name: bit for name, bit, _ in C2RCC_FLAGS}


@dataclass(frozen=True)
class BandSpec:
    """One output band: name, unit, description, and the SNAP expression if it is virtual."""

    name: str
    unit: str
    description: str
    expression: str | None = None


def output_bands(params: C2rccMsiParams) -> list[BandSpec]:
    """The target bands SNAP creates for ``params``, in SNAP's order (flags last).

    Virtual bands (``expression`` set) are expressions only in SNAP's BEAM-DIMAP output; here they
    are computed as data with that expression, from the float32 real bands, as SNAP evaluates them.
    """
    p = params
    b: list[BandSpec] = []
    if p.outputRtoa:
        b += [BandSpec(f"rtoa_{n}", "1", "Top-of-atmosphere reflectance") for n in SOURCE_BANDS]
    nn8 = NN_BANDS
    if p.outputRtosaGc:
        b += [
            BandSpec(
                f"rtosa_gc_{n}", "1", "Gas corrected top-of-atmosphere reflectance, input to AC"
            )
            for n in nn8
        ]
    if p.outputRtosaGcAann:
        b += [
            BandSpec(
                f"rtosagc_aann_{n}",
                "1",
                "Gas corrected top-of-atmosphere reflectance, output from AANN",
            )
            for n in nn8
        ]
    if p.outputRpath:
        b += [BandSpec(f"rpath_{n}", "1", "Path-radiance reflectances") for n in nn8]
    if p.outputTdown:
        b += [BandSpec(f"tdown_{n}", "1", "Transmittance of downweling irradiance") for n in nn8]
    if p.outputTup:
        b += [BandSpec(f"tup_{n}", "1", "Transmittance of upweling irradiance") for n in nn8]
    if p.outputAcReflectance:
        if p.outputAsRrs:
            b += [
                BandSpec(
                    f"rrs_{n}",
                    "sr^-1",
                    "Atmospherically corrected Angular dependent remote sensing reflectances",
                )
                for n in nn8
            ]
        else:
            b += [
                BandSpec(
                    f"rhow_{n}",
                    "1",
                    "Atmospherically corrected Angular dependent water leaving reflectances",
                )
                for n in nn8
            ]
    if p.outputRhown:
        b += [BandSpec(f"rhown_{n}", "1", "Normalized water leaving reflectances") for n in nn8[:6]]
    if p.outputOos:
        b.append(
            BandSpec(
                "oos_rtosa",
                "1",
                "Gas corrected top-of-atmosphere reflectances are out of scope of nn training dataset",
            )
        )
        if p.outputAsRrs:
            b.append(
                BandSpec(
                    "oos_rrs",
                    "1",
                    "Remote sensing reflectance are out of scope of nn training dataset",
                )
            )
        else:
            b.append(
                BandSpec(
                    "oos_rhow",
                    "1",
                    "Water leaving reflectances are out of scope of nn training dataset",
                )
            )
    b += [
        BandSpec("iop_apig", "m^-1", "Absorption coefficient of phytoplankton pigments at 443 nm"),
        BandSpec("iop_adet", "m^-1", "Absorption coefficient of detritus at 443 nm"),
        BandSpec("iop_agelb", "m^-1", "Absorption coefficient of gelbstoff at 443 nm"),
        BandSpec("iop_bpart", "m^-1", "Scattering coefficient of marine paticles at 443 nm"),
        BandSpec("iop_bwit", "m^-1", "Scattering coefficient of white particles at 443 nm"),
        BandSpec(
            "iop_adg", "m^-1", "Detritus + gelbstoff absorption at 443 nm", "iop_adet + iop_agelb"
        ),
        BandSpec(
            "iop_atot",
            "m^-1",
            "phytoplankton + detritus + gelbstoff absorption at 443 nm",
            "iop_apig + iop_adet + iop_agelb",
        ),
        BandSpec("iop_btot", "m^-1", "total particle scattering at 443 nm", "iop_bpart + iop_bwit"),
    ]
    if p.outputKd:
        b += [
            BandSpec("kd489", "m^-1", "Irradiance attenuation coefficient at 489 nm"),
            BandSpec(
                "kdmin",
                "m^-1",
                "Mean irradiance attenuation coefficient at the three bands with minimum kd",
            ),
            BandSpec(
                "kd_z90max",
                "m",
                "Depth of the water column from which 90% of the water leaving irradiance comes from",
                "1 / kdmin",
            ),
        ]
    b += [
        BandSpec("conc_tsm", "g m^-3", "Total suspended matter dry weight concentration",
                 f"{_jd(p.TSMfac)} * pow(iop_btot, {_jd(p.TSMexp)})"),
        BandSpec("conc_chl", "mg m^-3", "Chlorophyll concentration",
                 f"pow(iop_apig, {_jd(p.CHLexp)}) * {_jd(p.CHLfac)}"),
    ]  # fmt: skip
    if p.outputUncertainties:
        b += [
            BandSpec("unc_apig", "m^-1", "Uncertainty of pigment absorption coefficient"),
            BandSpec("unc_adet", "m^-1", "Uncertainty of detritus absorption coefficient"),
            BandSpec("unc_agelb", "m^-1", "Uncertainty of dissolved gelbstoff absorption coefficient"),
            BandSpec("unc_bpart", "m^-1", "Uncertainty of particle scattering coefficient"),
            BandSpec("unc_bwit", "m^-1", "Uncertainty of white particle scattering coefficient"),
            BandSpec("unc_adg", "m^-1", "Uncertainty of total gelbstoff absorption coefficient"),
            BandSpec("unc_atot", "m^-1", "Uncertainty of total water constituent absorption coefficient"),
            BandSpec("unc_btot", "m^-1", "Uncertainty of total water constituent scattering coefficient"),
            BandSpec("unc_tsm", "g m^-3", "Uncertainty of total suspended matter (TSM) dry weight concentration",
                     f"unc_btot * {_jd(p.TSMfac)}"),
            BandSpec("unc_chl", "mg m^-3", "Uncertainty of chlorophyll concentration",
                     f"pow(unc_apig, {_jd(p.CHLexp)}) * {_jd(p.CHLfac)}"),
        ]  # fmt: skip
        if p.outputKd:
            b += [
                BandSpec("unc_kd489", "m^-1", "Uncertainty of irradiance attenuation coefficient"),
                BandSpec("unc_kdmin", "m^-1", "Uncertainty of mean irradiance attenuation coefficient"),
                BandSpec("unc_kd_z90max", "m", "Uncertainty of depth of the water column from which 90% of the water leaving irradiance comes from",
                         "abs(kd_z90max - 1.0 / abs(kdmin - unc_kdmin))"),
            ]  # fmt: skip
    b.append(BandSpec("c2rcc_flags", "", "C2RCC quality flags"))
    return b


def nets_evaluated(params: C2rccMsiParams) -> list[str]:
    """Roles of the nets ``params`` makes the algorithm evaluate per valid pixel (cost model)."""
    p = params
    derive = p.deriveRwFromPathAndTransmittance
    wanted = {
        "rtosa_trans": True,
        "rtosa_rw": not derive,
        "rtosa_rpath": p.outputRpath or derive,
        "rtosa_aann": p.outputRtosaGcAann or p.outputOos,
        "rw_iop": True,
        "rw_rwnorm": p.outputRhown,
        "iop_rw": p.outputOos,
        "rw_kd": p.outputKd or p.outputUncertainties,
        "iop_unciop": p.outputUncertainties,
        "iop_uncsumiop_unckd": p.outputUncertainties,
    }
    return [role for role, on in wanted.items() if on]


def _jd(v: float) -> str:
    """Java's ``Double.toString`` for the plain numbers used in SNAP's expressions."""
    return repr(float(v))


# --------------------------------------------------------------------------------------------------
# the per-pixel algorithm on 1-D arrays of valid pixels


def _any_out_of_range(x: F64, lo: F64, hi: F64) -> npt.NDArray[np.bool_]:
    """Feature-major ``x`` (k, n): is any row outside [lo, hi]? NaN never counts, as in Java."""
    k = lo.shape[0]
    return ((x[:k] < lo[:, None]) | (x[:k] > hi[:, None])).any(axis=0)


def c2rcc_msi_pixels(
    nets: NetSet,
    params: C2rccMsiParams,
    rtoa: F64,
    sun_zenith: F64,
    sun_azimuth: F64,
    view_zenith: F64,
    view_azimuth: F64,
    altitude: F64,
    pressure: F64,
    ozone: F64,
    dtype: npt.DTypeLike = np.float64,
) -> tuple[dict[str, F64], npt.NDArray[np.uint32]]:
    """Run ``processPixel`` on ``n`` valid pixels at once.

    ``rtoa`` is ``(8, n)`` in :data:`NN_BANDS` order (feature-major); the other inputs are
    ``(n,)`` (angles in degrees, altitude in m, sea-level pressure in hPa, ozone in DU). Returns
    float64 arrays ``(n,)`` keyed by SNAP band name (only those ``params`` asks for, before the
    float32 cast) and the flag words (Valid_PE included). ``dtype`` is the net arithmetic
    (float64 = SNAP's double).
    """
    p = params
    n = rtoa.shape[1]
    out: dict[str, F64] = {}
    flags = np.zeros(n, dtype=np.uint32)

    def set_flag(name: str, cond: npt.NDArray[np.bool_]) -> None:
        flags[cond] |= np.uint32(FLAG_MASKS[name])

    def per_band(prefix: str, values: F64, bands: tuple[str, ...] = NN_BANDS) -> None:
        for i, b in enumerate(bands):
            out[f"{prefix}_{b}"] = values[i]

    # (9.2) geometry; the azimuth difference goes through acos(cos(.)), so it lies in [0, 180]
    cos_sun = np.cos(np.radians(sun_zenith))
    cos_view = np.cos(np.radians(view_zenith))
    sin_view = np.sin(np.radians(view_zenith))
    cos_azi_diff = np.cos(np.radians(view_azimuth - sun_azimuth))
    azi_diff_rad = np.arccos(cos_azi_diff)
    sin_azi_diff = np.sin(azi_diff_rad)
    azi_diff_deg = np.degrees(azi_diff_rad)

    # (9.3.1) ozone correction only: no H2O/O2 step, Rayleigh and aerosol are inside the nets
    k_oz = ABSORB_OZONE[:, None] * (ozone / 1000.0)
    trans_ozone = np.exp(-k_oz / cos_sun) * np.exp(-k_oz / cos_view)
    r_tosa = rtoa / trans_ozone

    # (9.3.2) pressure at the surface altitude, only above 10 m
    alti_press = np.where(altitude > 10.0, pressure * np.exp(-altitude / 8000.0), pressure)

    # (9.4) atmospheric net input [sza, x, y, z, T, S, p, ln rtosa(8)] plus the bias row of ones
    nn_in = np.empty((16, n))
    nn_in[0] = sun_zenith
    nn_in[1] = sin_view * cos_azi_diff
    nn_in[2] = sin_view * sin_azi_diff
    nn_in[3] = cos_view
    nn_in[4] = p.temperature
    nn_in[5] = p.salinity
    nn_in[6] = alti_press
    np.log(r_tosa, out=nn_in[7:15])
    nn_in[15] = 1.0
    log_rtosa = nn_in[7:15]

    aann = nets["rtosa_aann"]
    set_flag("Rtosa_OOR", _any_out_of_range(nn_in, aann.inmin, aann.inmax))

    if p.outputRtosaGc:
        per_band("rtosa_gc", r_tosa)
    # the atmospheric nets share their input: one GEMM for all their first layers
    derive = p.deriveRwFromPathAndTransmittance
    need_all = p.outputTdown or p.outputTup or derive
    atm_roles = ["rtosa_trans"]
    if not derive:
        atm_roles.append("rtosa_rw")
    if p.outputRtosaGcAann or p.outputOos:
        atm_roles.append("rtosa_aann")
    if p.outputRpath or derive:
        atm_roles.append("rtosa_rpath")
    # tdown(B8A) alone feeds the always-on cloud test; the other 15 outputs only when asked for
    atm = dict(
        zip(
            atm_roles,
            calc_group_t(
                [nets[r] for r in atm_roles],
                nn_in,
                dtype,
                [None if r != "rtosa_trans" or need_all else slice(7, 8) for r in atm_roles],
            ),
            strict=True,
        )
    )

    rtosa_oos = np.zeros(n)
    if p.outputRtosaGcAann or p.outputOos:
        log_aann = atm["rtosa_aann"]
        if p.outputRtosaGcAann:
            per_band("rtosagc_aann", np.exp(log_aann))
        if p.outputOos:
            rtosa_oos = np.abs(log_rtosa - log_aann).max(axis=0)
    # SNAP compares even when OOS is off (rtosa_oos = 0 then), so the bit follows the threshold sign
    set_flag("Rtosa_OOS", rtosa_oos > p.thresholdRtosaOOS)
    if p.outputOos:
        out["oos_rtosa"] = rtosa_oos

    rpath = None
    if p.outputRpath or derive:
        rpath = np.exp(atm["rtosa_rpath"])
        if p.outputRpath:
            per_band("rpath", rpath)

    trans = atm["rtosa_trans"]
    set_flag("Cloud_risk", trans[7 if need_all else 0] < p.thresholdCloudTDown865)
    tdown, tup = trans[:8], trans[8:]
    if p.outputTdown:
        per_band("tdown", tdown)
    if p.outputTup:
        per_band("tup", tup)

    if derive:
        # experimental in SNAP; this is the formula of optical-toolbox @ 92d55223
        with np.errstate(invalid="ignore", divide="ignore"):
            log_rw = np.log((r_tosa - rpath) / (tup * tdown))
    else:
        log_rw = atm["rtosa_rw"]
    if p.outputAcReflectance:
        rwa = np.exp(log_rw)
        if p.outputAsRrs:
            per_band("rrs", rwa / np.pi)
        else:
            per_band("rhow", rwa)

    # (9.5) water input [sza, vza, azi_diff_deg, T, S, ln rhow(first k)], k from the net, + ones
    rw_iop = nets["rw_iop"]
    k_in = rw_iop.n_in
    nn_in_inv = np.empty((k_in + 1, n))
    nn_in_inv[0] = sun_zenith
    nn_in_inv[1] = view_zenith
    nn_in_inv[2] = azi_diff_deg
    nn_in_inv[3] = p.temperature
    nn_in_inv[4] = p.salinity
    nn_in_inv[5:k_in] = log_rw[: k_in - 5]
    nn_in_inv[k_in] = 1.0
    set_flag("Rhow_OOR", _any_out_of_range(nn_in_inv, rw_iop.inmin, rw_iop.inmax))

    # the water nets share their input (rw_rwnorm only where it has as many inputs as rw_iop)
    need_kd = p.outputKd or p.outputUncertainties
    water_roles = ["rw_iop"] + (["rw_kd"] if need_kd else [])
    norm = nets["rw_rwnorm"]
    grouped_norm = p.outputRhown and norm.n_in == rw_iop.n_in
    if grouped_norm:
        water_roles.append("rw_rwnorm")
    water = dict(
        zip(
            water_roles, calc_group_t([nets[r] for r in water_roles], nn_in_inv, dtype), strict=True
        )
    )
    if p.outputRhown:
        # rw_rwnorm has 11 inputs in every set, also where rw_iop has 13
        log_rwn = water["rw_rwnorm"] if grouped_norm else norm.calc_t(nn_in_inv[:11], dtype)
        per_band("rhown", np.exp(log_rwn), NN_BANDS[:6])

    log_iops = water["rw_iop"]
    iops = np.exp(log_iops)
    per_band("iop", iops, IOP_NAMES)

    lo, hi = rw_iop.outmin, rw_iop.outmax
    set_flag("Iop_OOR", _any_out_of_range(log_iops, lo, hi))
    for i, name in enumerate(IOP_NAMES):
        cap = name.capitalize()
        set_flag(f"{cap}_at_max", log_iops[i] > hi[i] - LOG_THRESH_OOR)
        set_flag(f"{cap}_at_min", log_iops[i] < lo[i] + LOG_THRESH_OOR)

    if p.outputOos:
        nn_in_for = np.empty((5 + 5, n))
        nn_in_for[:5] = nn_in_inv[:5]
        nn_in_for[5:] = log_iops
        log_rw2 = nets["iop_rw"].calc_t(nn_in_for, dtype)
        # band ratios B5/B2 and B6/B5 (ln differences) of measured and forward-modelled rhow
        s1_mess = np.abs(log_rw[4] - log_rw[1])
        s2_mess = np.abs(log_rw[5] - log_rw[4])
        s1_nn2 = np.abs(log_rw2[4] - log_rw2[1])
        s2_nn2 = np.abs(log_rw2[5] - log_rw2[4])
        rwa_oos = np.maximum(np.abs(s1_nn2 - s1_mess), np.abs(s2_nn2 - s2_mess))
        set_flag("Rhow_OOS", rwa_oos > p.thresholdAcReflecOos)
        out["oos_rrs" if p.outputAsRrs else "oos_rhow"] = rwa_oos

    kdmin = kd489 = None
    if need_kd:
        rw_kd = nets["rw_kd"]
        log_kd = water["rw_kd"]
        kdmin = np.exp(log_kd[0])
        kd489 = np.exp(log_kd[1])
        klo, khi = rw_kd.outmin, rw_kd.outmax
        set_flag("Kdmin_OOR", (log_kd[0] < klo[0]) | (log_kd[0] > khi[0]))
        set_flag("Kd489_OOR", (log_kd[1] < klo[1]) | (log_kd[1] > khi[1]))
        # SNAP tests kd489 (index 1) for Kdmin_at_max too; kept for parity (see docs/c2rcc.md)
        set_flag("Kdmin_at_max", log_kd[1] > khi[1] - LOG_THRESH_OOR)
        set_flag("Kd489_at_max", log_kd[1] > khi[1] - LOG_THRESH_OOR)
        if p.outputKd:
            out["kd489"] = kd489
            out["kdmin"] = kdmin

    if p.outputUncertainties:
        d_iop, d_sum = calc_group_t(
            [nets["iop_unciop"], nets["iop_uncsumiop_unckd"]], log_iops, dtype
        )
        per_band("unc", iops * (1.0 - np.exp(-d_iop)), IOP_NAMES)
        adg = iops[1] + iops[2]
        atot = adg + iops[0]
        btot = iops[3] + iops[4]
        out["unc_adg"] = (1.0 - np.exp(-d_sum[0])) * adg
        out["unc_atot"] = (1.0 - np.exp(-d_sum[1])) * atot
        out["unc_btot"] = (1.0 - np.exp(-d_sum[2])) * btot
        if p.outputKd:
            # SNAP uses the kd489 uncertainty output (index 3) for kdmin as well
            out["unc_kd489"] = (1.0 - np.exp(-d_sum[3])) * kd489
            out["unc_kdmin"] = (1.0 - np.exp(-d_sum[3])) * kdmin

    flags |= np.uint32(FLAG_MASKS["Valid_PE"])
    return out, flags


# --------------------------------------------------------------------------------------------------
# whole arrays


def _virtual(
    name: str, v: Mapping[str, npt.NDArray[np.float32]], p: C2rccMsiParams
) -> npt.NDArray[np.float32]:
    """SNAP's virtual band expressions, evaluated in double from the float32 bands, stored float32."""

    def d(key: str) -> F64:
        return v[key].astype(np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "iop_adg":
            r = d("iop_adet") + d("iop_agelb")
        elif name == "iop_atot":
            r = d("iop_apig") + d("iop_adet") + d("iop_agelb")
        elif name == "iop_btot":
            r = d("iop_bpart") + d("iop_bwit")
        elif name == "kd_z90max":
            r = 1.0 / d("kdmin")
        elif name == "conc_tsm":
            r = p.TSMfac * np.power(d("iop_btot"), p.TSMexp)
        elif name == "conc_chl":
            r = np.power(d("iop_apig"), p.CHLexp) * p.CHLfac
        elif name == "unc_tsm":
            r = d("unc_btot") * p.TSMfac
        elif name == "unc_chl":
            r = np.power(d("unc_apig"), p.CHLexp) * p.CHLfac
        elif name == "unc_kd_z90max":
            r = np.abs(d("kd_z90max") - 1.0 / np.abs(d("kdmin") - d("unc_kdmin")))
        else:  # pragma: no cover - output_bands() and this table are kept in step
            raise KeyError(name)
    return r.astype(np.float32)


def _as_2d(name: str, value: npt.ArrayLike, shape: tuple[int, int]) -> npt.NDArray[np.float32]:
    arr = np.asarray(value, dtype=np.float32)
    try:
        return np.broadcast_to(arr, shape)
    except ValueError as exc:
        raise ConfigError(f"input {name} has shape {arr.shape}, expected {shape}") from exc


def run_c2rcc_msi(
    toa: Mapping[str, npt.ArrayLike],
    angles: Mapping[str, npt.ArrayLike],
    lat: npt.ArrayLike | None = None,
    lon: npt.ArrayLike | None = None,
    altitude: npt.ArrayLike | None = None,
    params: C2rccMsiParams | None = None,
    nets_dir: str | os.PathLike[str] | None = None,
    ecmwf: Mapping[str, npt.ArrayLike] | None = None,
    nets: NetSet | None = None,
    chunk_rows: int | None = None,
    threads: int | None = None,
    dtype: npt.DTypeLike = np.float64,
) -> xr.Dataset:
    """Run C2RCC-MSI on a single-resolution Sentinel-2 L1C scene (or any 2-D block of one).

    Parameters
    ----------
    toa:
        TOA reflectance per band name (``B1`` ... ``B12``, ``B8A``), 2-D arrays of one shape, as
        SNAP presents them (offset applied, /10000). The eight NN bands and the bands of the
        valid-pixel expression are required; all 13 when ``outputRtoa``.
    angles:
        ``sun_zenith``, ``sun_azimuth``, ``view_zenith_mean``, ``view_azimuth_mean`` in degrees;
        arrays of the scene shape or anything broadcastable to it (e.g. scalars).
    lat, lon:
        Optional 2-D coordinates, attached to the output (the algorithm itself does not use them).
    altitude:
        Surface altitude in m (SNAP takes it from a DEM). ``None`` uses ``params.elevation``, SNAP's
        fallback when no DEM is available. Pressure is scaled by exp(-alt/8000) only above 10 m.
    params:
        Operator parameters; default :class:`C2rccMsiParams()` (SNAP's defaults).
    nets_dir, nets:
        Where to load the nets (see :func:`~seasonal_c2rcc.c2rcc.nets.find_nets_dir`), or an
        already loaded :class:`NetSet`.
    ecmwf:
        With ``params.useEcmwfAuxData``: ``tco3`` (total ozone, kg m-2) and ``msl`` (Pa) on the
        scene grid. Without them the constants ``ozone``/``press`` are used, as SNAP does.
    chunk_rows:
        Rows per work unit (default: about 8k pixels); bounds memory for large scenes.
    threads:
        Worker threads over chunks (default ``os.cpu_count()``).
    dtype:
        Net arithmetic; float64 reproduces SNAP, float32 is faster and approximate.

    Returns
    -------
    xarray.Dataset with SNAP's band names (float32; ``c2rcc_flags`` uint32), dims ``(y, x)``.
    Invalid pixels (valid-pixel expression false) hold 0 in every band except ``rtoa_*`` (SNAP
    copies the input there) and have ``c2rcc_flags`` 0.
    """
    p = params or C2rccMsiParams()
    if nets is None:
        nets = load_nets(p.netSet, nets_dir=nets_dir, alternative_nn_path=p.alternativeNNPath)
    expr = parse_expression(p.validPixelExpression or "true")

    if "B8A" not in toa:
        raise ConfigError("input lacks band B8A (C2RCC-MSI needs B1..B7 and B8A)")
    shape0 = np.shape(toa["B8A"])
    if len(shape0) != 2:
        raise ConfigError(f"bands must be 2-D arrays, B8A has shape {shape0}")
    shape: tuple[int, int] = (int(shape0[0]), int(shape0[1]))
    needed = set(NN_BANDS) | set(expr.bands) | (set(SOURCE_BANDS) if p.outputRtoa else set())
    missing = sorted(
        needed - set(toa), key=lambda b: SOURCE_BANDS.index(b) if b in SOURCE_BANDS else 99
    )
    if missing:
        raise ConfigError(
            f"input lacks band(s) {', '.join(missing)} (needed by the nets, the valid-pixel "
            "expression or outputRtoa); the S2 product must be resampled to one resolution"
        )
    bands = {k: _as_2d(k, v, shape) for k, v in toa.items() if k in needed}
    missing_angles = [a for a in ANGLE_NAMES if a not in angles]
    if missing_angles:
        raise ConfigError(f"Invalid source product, raster(s) {', '.join(missing_angles)} required")
    ang = {k: _as_2d(k, angles[k], shape) for k in ANGLE_NAMES}
    alt = _as_2d("altitude", p.elevation if altitude is None else altitude, shape)

    # ozone / pressure: ECMWF grids (float32 virtual bands "tco3 * 46698", "msl / 100") or constants
    use_ecmwf = bool(p.useEcmwfAuxData and ecmwf is not None and "tco3" in ecmwf and "msl" in ecmwf)
    if use_ecmwf:
        assert ecmwf is not None
        oz_field: npt.NDArray[np.floating] = (
            _as_2d("tco3", ecmwf["tco3"], shape).astype(np.float64) * TCO3_TO_DU
        ).astype(np.float32)
        pr_field: npt.NDArray[np.floating] = (
            _as_2d("msl", ecmwf["msl"], shape).astype(np.float64) / 100.0
        ).astype(np.float32)
    else:
        oz_field = np.broadcast_to(np.float64(p.ozone), shape)
        pr_field = np.broadcast_to(np.float64(p.press), shape)

    specs = output_bands(p)
    data = {s.name: np.zeros(shape, dtype=np.float32) for s in specs if s.name != "c2rcc_flags"}
    flags = np.zeros(shape, dtype=np.uint32)

    if p.outputRtoa:
        for b in SOURCE_BANDS:
            data[f"rtoa_{b}"][...] = bands[b]

    # ~8k pixels per chunk keeps a layer's activations (<= 100 x 8k doubles) in L2/L3 cache
    rows = chunk_rows or max(1, CHUNK_PIXELS // max(shape[1], 1))

    def work(r0: int) -> None:
        # numpy's error state is per thread (context variable): set it in each worker; log of a
        # non-positive reflectance gives NaN as in Java, not a warning
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            _work(r0)

    virtual = [sp.name for sp in specs if sp.expression is not None]

    def _work(r0: int) -> None:
        sl = slice(r0, min(r0 + rows, shape[0]))
        valid = expr.evaluate({b: bands[b][sl] for b in expr.bands}, bands["B8A"][sl].shape)
        flat = np.flatnonzero(valid)
        if flat.size == 0:
            return
        everything = flat.size == valid.size

        def gather(a: npt.NDArray[np.floating]) -> F64:
            # 1-D take on the chunk's rows (contiguous) is cheaper than 2-D fancy indexing
            part = a[sl].reshape(-1)
            return (part if everything else part[flat]).astype(np.float64)

        res, fl = c2rcc_msi_pixels(
            nets,
            p,
            np.stack([gather(bands[b]) for b in NN_BANDS]),
            gather(ang["sun_zenith"]),
            gather(ang["sun_azimuth"]),
            gather(ang["view_zenith_mean"]),
            gather(ang["view_azimuth_mean"]),
            gather(alt),
            gather(pr_field),
            gather(oz_field),
            dtype=dtype,
        )
        # the output arrays are fresh C-contiguous (H, W): a row slice reshapes to a view
        for name, values in res.items():
            target = data[name][sl].reshape(-1)
            if everything:
                target[:] = values
            else:
                target[flat] = values
        flags[sl].reshape(-1)[flat] = fl
        # virtual bands from the float32 real bands, in SNAP's dependency order; invalid pixels
        # keep 0 (SNAP stores nothing for virtual bands, 0 keeps "invalid pixels are 0" true)
        chunk = {k: v[sl] for k, v in data.items()}
        for name in virtual:
            values32 = _virtual(name, chunk, p)
            if not everything:
                values32[~valid] = 0.0
            data[name][sl] = values32
            chunk[name] = data[name][sl]

    starts = range(0, shape[0], rows)
    n_threads = threads or os.cpu_count() or 1
    # one BLAS thread per worker: the element-wise passes (cast, gather) cost as much as the GEMMs
    # and only run in parallel across chunks; nested BLAS threads would oversubscribe the cores
    with threadpool_limits(limits=1, user_api="blas"):
        if n_threads == 1 or len(starts) == 1:
            for r0 in starts:
                work(r0)
        else:
            with ThreadPoolExecutor(max_workers=n_threads) as pool:
                list(pool.map(work, starts))

    return _to_dataset(specs, data, flags, p, nets, lat, lon, shape, use_ecmwf)


def _to_dataset(
    specs: list[BandSpec],
    data: Mapping[str, npt.NDArray[np.float32]],
    flags: npt.NDArray[np.uint32],
    p: C2rccMsiParams,
    nets: NetSet,
    lat: npt.ArrayLike | None,
    lon: npt.ArrayLike | None,
    shape: tuple[int, int],
    use_ecmwf: bool,
) -> xr.Dataset:
    variables: dict[str, xr.DataArray] = {}
    for s in specs:
        if s.name == "c2rcc_flags":
            names = [n for n, _, _ in C2RCC_FLAGS]
            variables[s.name] = xr.DataArray(
                flags,
                dims=("y", "x"),
                attrs={
                    "long_name": s.description,
                    "flag_masks": np.array([FLAG_MASKS[n] for n in names], dtype=np.uint32),
                    "flag_meanings": " ".join(names),
                    "flag_descriptions": "\t".join(d for _, _, d in C2RCC_FLAGS),
                },
            )
            continue
        attrs = {"units": s.unit, "long_name": s.description}
        if not s.name.startswith("rtoa_"):
            attrs["valid_pixel_expression"] = VALID_EXPRESSION
        if s.expression is not None:
            # not "expression": SNAP's NetCDF-BEAM reader would turn the variable into a virtual band
            attrs["snap_virtual_expression"] = s.expression
        variables[s.name] = xr.DataArray(data[s.name], dims=("y", "x"), attrs=attrs)
    coords = {}
    if lat is not None and lon is not None:
        coords["lat"] = (("y", "x"), np.broadcast_to(np.asarray(lat, dtype=np.float32), shape))
        coords["lon"] = (("y", "x"), np.broadcast_to(np.asarray(lon, dtype=np.float32), shape))
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs.update(
        {
            "product_type": PRODUCT_TYPE,
            "processor": "seasonal_c2rcc.c2rcc (numpy port of SNAP c2rcc.msi 1.2)",
            "netSet": p.netSet if not p.alternativeNNPath else f"alternativeNNPath={p.alternativeNNPath}",
            "usedNeuralNet": " ".join(nets.sources[r] for r in nets.sources),
            "atmospheric_auxdata": "ECMWF (tco3, msl)" if use_ecmwf else f"constant ozone={p.ozone} DU, press={p.press} hPa",
            "c2rcc_parameters": repr(p),
        }
    )  # fmt: skip
    return ds
