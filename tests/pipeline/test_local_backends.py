"""The demo grid end to end with local processing (issue 10): ``backend: native`` (real SAFE
downloads from the emulator, the SAFE reader, the numpy C2RCC) and ``backend: gpt`` (a stand-in
gpt), and the native and emulated-EOCanvas results of the same product side by side.

Real Snakemake runs against the emulator: one download per product (no second order on a re-run
or for a second sub-tile), no EOCanvas job, the same composites as the EOCanvas path makes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from seasonal_c2rcc.emulator import EmulatorServer

from .harness import ROOT, composites, run, write_config

pytestmark = pytest.mark.slow

TARGETS = composites([2019], ["summer"])


def local_config(workdir: Path, emulator_url: str, backend: str, **extra) -> Path:
    """The demo config, summer 2019 only, two scenes, processed by ``backend``."""
    cfg = write_config(
        workdir, emulator_url, backend=backend, images_per_season=2,
        product_cache=str(workdir / "cache"), masking={"min_valid_obs": 1}, **extra,
    )  # fmt: skip
    doc = yaml.safe_load(cfg.read_text())
    doc["seasons"] = {"summer": doc["seasons"]["summer"]}
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cfg


def selected_products(workdir: Path) -> set[str]:
    doc = json.loads((workdir / "results/catalog/30UUA/2019/summer.json").read_text())
    return {p for ps in doc["subtiles"].values() for p in ps}


def product_downloads(emulator: EmulatorServer) -> list[dict]:
    return [d for d in emulator.accounting()["downloads"] if d.get("kind") == "product"]


def clipped(workdir: Path, subtile: str, product: str) -> xr.Dataset:
    return xr.open_dataset(workdir / f"results/c2rcc/30UUA/2019/summer/{subtile}/{product}.nc")


def test_native_backend__demo_grid_end_to_end(emulator, nets_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "native"
    cfg = local_config(work, emulator.url, "native", native={"nets": str(nets_dir), "threads": 2})
    r = run(work, cfg, *TARGETS, "--cores", "2", timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    out = r.stdout + r.stderr
    assert "localrule download_product:" in out and "rule local_job:" in out

    acc = emulator.accounting()
    products = selected_products(work)
    assert products, "the demo season selects scenes"
    # each selected product ordered and downloaded exactly once, although both sub-tiles use it
    assert acc["counters"]["orders_placed"] == len(products)
    ordered = sorted(o["product_id"].removesuffix(".SAFE") for o in acc["orders"])
    assert ordered == sorted(products)
    assert len(product_downloads(emulator)) == len(products)
    assert acc["counters"]["jobs_created"] == 0, "no EOCanvas job with a local backend"
    assert sorted(p.stem for p in (work / "cache").glob("*.zip")) == sorted(products)

    for sid in ("0", "1"):
        with xr.open_dataset(work / f"results/composites/30UUA/2019/summer/{sid}.nc") as ds:
            chl = ds["conc_chl_median"].values
            assert np.isfinite(chl).mean() > 0.3, f"sub-tile {sid}: too few valid pixels"
            assert 0.01 < np.nanmedian(chl) < 200
            assert "native" in json.dumps({k: str(v) for k, v in ds.attrs.items()})

    # a second run does nothing: no download, no order, no processing
    again = run(work, cfg, *TARGETS, "--cores", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr
    assert emulator.accounting()["counters"]["orders_placed"] == len(products)

    # a pruned cache does not make a finished campaign download again
    for z in (work / "cache").glob("*.zip"):
        z.unlink()
    pruned = run(work, cfg, *TARGETS, "--cores", "2", "-n")
    assert pruned.returncode == 0 and "download_product" not in pruned.stdout, pruned.stdout[-2000:]


@pytest.fixture
def fake_gpt_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tests' stand-in gpt as ``<tmp>/bin/gpt``, first on PATH (inherited by Snakemake)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "gpt"
    body = (ROOT / "tests/backends/fake_gpt.py").read_text()
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_GPT_MODE", raising=False)
    return exe


def test_gpt_backend__demo_grid_end_to_end(
    emulator, fake_gpt_on_path: Path, tmp_path: Path
) -> None:
    work = tmp_path / "gpt"
    cfg = local_config(work, emulator.url, "gpt", gpt={"path": "gpt", "threads": 1, "timeout": 120})
    r = run(work, cfg, *TARGETS, "--cores", "2", timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    products = selected_products(work)
    assert emulator.accounting()["counters"]["orders_placed"] == len(products)
    assert emulator.accounting()["counters"]["jobs_created"] == 0
    logs = list((work / "logs/local/gpt").glob("*.gpt.log"))
    assert len(logs) == len(products), "one kept gpt log per product"
    for sid in ("0", "1"):
        with xr.open_dataset(work / f"results/composites/30UUA/2019/summer/{sid}.nc") as ds:
            assert np.isfinite(ds["conc_chl_median"].values).any()


def test_native_and_emulated_eocanvas_agree_on_one_product(nets_dir: Path, tmp_path: Path) -> None:
    """The emulator's EOCanvas jobs computed by the native C2RCC on the SAFE its HDA serves, and
    the native backend on the downloaded SAFE: the clipped sub-tile files agree to 1e-5."""
    emu = EmulatorServer(tmp_path / "emu", native_nets=nets_dir).start()
    try:
        emu.set_faults(accept_delay=0.1, job_duration=0.4)
        remote = tmp_path / "eocanvas"
        r = run(remote, local_config(remote, emu.url, "eocanvas"), *TARGETS, "--cores", "2",
                timeout=900)  # fmt: skip
        assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
        local = tmp_path / "native"
        cfg = local_config(local, emu.url, "native", native={"nets": str(nets_dir), "threads": 2})
        r = run(local, cfg, *TARGETS, "--cores", "2", timeout=900)
        assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    finally:
        emu.stop()
    products = selected_products(remote)
    assert products == selected_products(local)
    compared = 0
    for sid in ("0", "1"):
        for product in sorted(products):
            with clipped(remote, sid, product) as a, clipped(local, sid, product) as b:
                assert a.sizes == b.sizes
                for name in ("conc_chl", "conc_tsm", "kd489", "rrs_B3", "c2rcc_flags"):
                    x, y = a[name].values.astype(np.float64), b[name].values.astype(np.float64)
                    np.testing.assert_allclose(x, y, rtol=0, atol=1e-5, err_msg=f"{sid} {name}")
                assert (a["c2rcc_flags"].values > 0).mean() > 0.3
                compared += 1
    assert compared == 2 * len(products)
