"""``.net`` parsing, SNAP's tabulated sigmoid, the fused evaluation, and where nets are found."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from c2rcc_native_testdata import literal_order

from seasonal_c2rcc.c2rcc import NET_SET_DIRS, find_nets_dir, load_nets, parse_net
from seasonal_c2rcc.c2rcc.nets import (
    NET_FILES,
    NET_ROLES,
    NUM_ALPHA,
    SIGMOID_TABLE,
    tabulated_sigmoid,
)
from seasonal_c2rcc.errors import ConfigError

#: Layer sizes per set and role, from the file names (hidden layers) and the doc's table (§2.2).
ARCH = {
    "C2RCC-Nets": {"rtosa_rw": (15, 33, 73, 53, 33, 8), "rw_iop": (11, 97, 77, 37, 5), "iop_rw": (10, 17, 97, 47, 6),
                   "rw_kd": (11, 97, 77, 7, 2), "rtosa_trans": (15, 31, 77, 57, 37, 16), "rw_rwnorm": (11, 27, 7, 27, 6)},
    "C2X-Nets": {"rtosa_rw": (15, 77, 77, 77, 77, 8), "rw_iop": (13, 77, 77, 77, 5), "iop_rw": (10, 77, 77, 77, 8),
                 "rw_kd": (13, 77, 77, 77, 2), "rtosa_trans": (15, 77, 77, 77, 16), "rw_rwnorm": (11, 27, 7, 27, 6)},
    "C2X-COMPLEX-Nets": {"rtosa_rw": (15, 99, 99, 99, 8), "rw_iop": (13, 39, 39, 39, 5), "iop_rw": (10, 55, 55, 55, 8),
                         "rw_kd": (13, 55, 55, 55, 2), "rtosa_aann": (15, 55, 7, 55, 8), "iop_unciop": (5, 55, 55, 55, 5)},
}  # fmt: skip


@pytest.mark.parametrize("net_set", list(NET_SET_DIRS))
def test_all_thirty_nets_parse_with_their_headers(nets_dir: Path, net_set: str) -> None:
    nets = load_nets(net_set, nets_dir=nets_dir)
    assert set(nets.nets) == set(NET_ROLES)
    for role in NET_ROLES:
        net = nets[role]
        hidden = tuple(int(v) for v in NET_FILES[net_set][role].split("_")[0].split("x"))
        assert net.sizes[1:-1] == hidden, role
        assert all(
            w.shape == (a, b)
            for w, a, b in zip(net.weights, net.sizes, net.sizes[1:], strict=False)
        )
        # the free-text header repeats the ranges: "input  1 is sun_zeni in [0.000069,75.000000]"
        text = Path(nets.sources[role]).read_text(encoding="latin-1")
        ins = re.findall(r"input\s+\d+ is \S+ in \[([-\d.]+),([-\d.]+)\]", text)
        assert np.allclose(np.array(ins, dtype=float), np.c_[net.inmin, net.inmax]), role
    for role, sizes in ARCH[net_set].items():
        assert nets[role].sizes == sizes, (net_set, role)


def test_parse_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cannot parse"):
        parse_net("no marker here")
    good = "hdr\n#\n1\n0 1\n1\n0 1\n$\n#planes=2 1 1\nbias 1 1\n0.5\nwgt 0 1 1\n2.0\n"
    net = parse_net(good)
    assert net.sizes == (1, 1) and net.biases[0][0] == 0.5 and net.weights[0][0, 0] == 2.0
    with pytest.raises(ConfigError, match="weights"):
        parse_net(good.replace("wgt 0 1 1\n2.0\n", "wgt 0 1 1\n"))


def test_sigmoid_table_is_snaps() -> None:
    assert SIGMOID_TABLE.shape == (NUM_ALPHA,)
    delta = 20.0 / (NUM_ALPHA - 1)
    i = np.arange(NUM_ALPHA)
    # SNAP accumulates the abscissa (sum += delta), which drifts ~1e-12 from -10 + (i + 0.5) delta
    np.testing.assert_allclose(
        SIGMOID_TABLE, 1 / (1 + np.exp(-(-10 + (i + 0.5) * delta))), rtol=1e-10
    )
    # index = trunc((x + 10) / delta), clamped (the top entry needs x >= 10); NaN -> 0 as Java
    x = np.array([-50.0, -10.0, -10 + 1.5 * delta, 0.0, 10.0, 50.0, np.nan, np.inf])
    got = tabulated_sigmoid(x)
    assert got[0] == got[1] == SIGMOID_TABLE[0]
    assert got[2] == SIGMOID_TABLE[1]
    assert got[4] == got[5] == got[7] == SIGMOID_TABLE[-1]
    assert got[6] == SIGMOID_TABLE[0]
    # the table differs from the exact sigmoid: a port without it cannot match SNAP to 1e-6
    assert abs(float(tabulated_sigmoid(np.array([0.00015]))[0]) - 1 / (1 + np.exp(-0.00015))) > 1e-6


def test_fused_evaluation_equals_snaps_operation_order(std_nets) -> None:
    """The pre-scaled, feature-major path picks the same table entries as SNAP's literal order."""
    rng = np.random.default_rng(5)
    for role in ("rtosa_rw", "rw_iop", "iop_unciop"):
        net = std_nets[role]
        x = net.inmin + (net.inmax - net.inmin) * rng.uniform(-0.05, 1.05, (2000, net.n_in))
        fast = net.calc(x)
        ref = net.calc(x, exact=True)
        span = net.outmax - net.outmin
        # one table step in the output layer is <= 0.25 * 20/99999 of the span
        tol = 5.1e-5 * span
        assert (np.abs(fast - ref) <= tol).all(), role
        assert np.mean(fast == ref) > 0.95, role
    net = std_nets["rw_iop"]
    x = net.inmin + (net.inmax - net.inmin) * rng.uniform(0, 1, (2000, net.n_in))
    f32 = net.calc(x, dtype=np.float32)
    assert f32.dtype == np.float32 and np.abs(f32 - net.calc(x, exact=True)).max() < 0.05


def test_find_nets_dir_order_and_errors(nets_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SEASONAL_C2RCC_NETS", raising=False)
    monkeypatch.setenv("SNAP_HOME", str(tmp_path / "no-snap"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_nets_dir(nets_dir) == nets_dir
    assert find_nets_dir(nets_dir.parent) == nets_dir  # the parent "c2rcc-nets/" holding "msi/"
    monkeypatch.setenv("SEASONAL_C2RCC_NETS", str(nets_dir))
    assert find_nets_dir() == nets_dir
    monkeypatch.setenv("SEASONAL_C2RCC_NETS", str(tmp_path))
    with pytest.raises(ConfigError, match="SEASONAL_C2RCC_NETS"):
        find_nets_dir()
    monkeypatch.delenv("SEASONAL_C2RCC_NETS")
    with pytest.raises(ConfigError) as err:
        find_nets_dir()
    msg = str(err.value)
    assert "senbox-org/optical-toolbox" in msg and "92d5522312eff5366056a9d39f50018cba85d53e" in msg
    assert "opttbx-c2rcc/src/main/resources/auxdata/nets/msi/" in msg and "SNAP" in msg


def test_nets_are_read_from_an_installed_snap_jar(
    nets_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """SNAP keeps the nets as resources inside the C2RCC module jar; that jar is found and read."""
    home = tmp_path / "esa-snap"
    jar = home / "opttbx" / "modules" / "eu-esa-opt-opttbx-c2rcc.jar"
    jar.parent.mkdir(parents=True)
    with zipfile.ZipFile(jar, "w") as zf:
        for sub in nets_dir.rglob("*.net"):
            zf.write(sub, f"auxdata/nets/msi/{sub.relative_to(nets_dir).as_posix()}")
    monkeypatch.delenv("SEASONAL_C2RCC_NETS", raising=False)
    monkeypatch.setenv("SNAP_HOME", str(home))
    assert find_nets_dir() == jar
    from_jar = load_nets("C2X-Nets")
    from_dir = load_nets("C2X-Nets", nets_dir=nets_dir)
    assert from_jar.sources["rw_iop"].startswith(str(jar))
    for role in NET_ROLES:
        for a, b in zip(from_jar[role].weights, from_dir[role].weights, strict=True):
            np.testing.assert_array_equal(a, b)


def test_alternative_nn_path_rules(nets_dir: Path, tmp_path: Path) -> None:
    alt = tmp_path / "alt"
    shutil.copytree(nets_dir / "std_s2_20160502", alt)
    nets = load_nets(alternative_nn_path=alt)
    assert nets["rw_iop"].sizes == (11, 97, 77, 37, 5)
    shutil.copy(next((alt / "rw_kd").glob("*.net")), alt / "rw_kd" / "second.net")
    with pytest.raises(ConfigError, match="exactly 1"):
        load_nets(alternative_nn_path=alt)
    with pytest.raises(ConfigError, match="not a valid path"):
        load_nets(alternative_nn_path=tmp_path / "missing")
    with pytest.raises(ConfigError, match="Unknown set"):
        load_nets("C2RCC", nets_dir=nets_dir)




@pytest.mark.parametrize("net_set", list(NET_SET_DIRS))
def test_whole_product_fused_equals_literal_order(
    nets_dir: Path, snap_test_product: Path, net_set: str
) -> None:
    """On every pixel of SNAP's S2Ref product (land included, via validPixelExpression=true) the
    fused evaluation gives the same float32 outputs as SNAP's literal order of operations."""
    from seasonal_c2rcc.c2rcc import C2rccMsiParams, open_dimap, run_c2rcc_msi

    inp = open_dimap(snap_test_product).c2rcc_inputs(with_latlon=False)
    toa = dict(inp.toa)
    toa["B2"] = toa["B2"].copy()
    toa["B2"][0, :3] = -0.01  # negative reflectance: ln -> NaN, SNAP's (int) NaN -> table entry 0
    nets = load_nets(net_set, nets_dir=nets_dir)
    literal = literal_order(nets)
    params = C2rccMsiParams(netSet=net_set, validPixelExpression="true", outputOos=True,
                            outputRpath=True, outputTdown=True, outputTup=True)  # fmt: skip
    fast = run_c2rcc_msi(toa, inp.angles, params=params, nets=nets)
    ref = run_c2rcc_msi(toa, inp.angles, params=params, nets=literal)
    np.testing.assert_array_equal(fast["c2rcc_flags"].values, ref["c2rcc_flags"].values)
    for name in ref.data_vars:
        # bit-identical: the reassociated sums (~1e-11 table steps apart) pick the same entries
        np.testing.assert_array_equal(fast[name].values, ref[name].values, err_msg=name)
    assert np.isfinite(fast["conc_chl"].values[0, :3]).all()  # NaN input -> entry 0, finite outputs


def test_snap_jar_under_another_cluster_name_is_found(
    nets_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    home = tmp_path / "snap"
    (home / "s3tbx" / "modules").mkdir(parents=True)
    # a jar without nets (another module) is skipped, the s3tbx C2RCC jar is used
    with zipfile.ZipFile(
        home / "s3tbx" / "modules" / "org-esa-s3tbx-s3tbx-c2rcc-ui.jar", "w"
    ) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "x")
    jar = home / "s3tbx" / "modules" / "org-esa-s3tbx-s3tbx-c2rcc.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        for sub in (nets_dir / "std_s2_20160502").rglob("*.net"):
            zf.write(
                sub,
                f"auxdata/nets/msi/std_s2_20160502/{sub.relative_to(nets_dir / 'std_s2_20160502').as_posix()}",
            )
    monkeypatch.delenv("SEASONAL_C2RCC_NETS", raising=False)
    monkeypatch.setenv("SNAP_HOME", str(home))
    assert find_nets_dir() == jar
    assert load_nets("C2RCC-Nets")["rw_iop"].sizes == (11, 97, 77, 37, 5)
    with pytest.raises(ConfigError, match="lacks"):
        load_nets("C2X-Nets")  # this jar only holds the standard set
