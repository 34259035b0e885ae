"""The native backend: a downloaded L1C product -> the per-job NetCDF4-BEAM result the composite
rule clips, with SNAP's values, bounded memory, and config errors before anything runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from seasonal_c2rcc.backends import native
from seasonal_c2rcc.backends.base import JobSpec
from seasonal_c2rcc.backends.local import check_local_config, run_local_job
from seasonal_c2rcc.c2rcc.reference import PIN_ANGLES, PIN_TOA
from seasonal_c2rcc.clip import source_product
from seasonal_c2rcc.config import load_campaign
from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.mgrs import tile_grid
from seasonal_c2rcc.s2l1c import BAND_NAMES, BAND_RESOLUTION
from seasonal_c2rcc.s2l1c.synthetic import dn_for_reflectance, make_product_id, write_synthetic_safe
from seasonal_c2rcc.verify import verify_c2rcc_netcdf

ROOT = Path(__file__).resolve().parents[2]
TILE = "30UUA"
SENSING = datetime(2019, 6, 12, 11, 33, 21, tzinfo=UTC)
#: s3tbx MsiOperatorTest, default parameters, altitude 0 (tests/c2rcc/test_c2rcc_golden.py)
GOLDEN = {"conc_chl": 14.441857, "conc_tsm": 5.062996, "iop_apig": 0.6976819, "rhow_B3": 0.010308}

#: A graph with SNAP's default c2rcc.msi parameters (the golden rows' settings).
DEFAULT_GRAPH = """<graph id="g"><version>1.0</version>
  <node id="Read"><operator>Read</operator><parameters><file>$img1</file></parameters></node>
  <node id="Subset"><operator>Subset</operator><sources><sourceProduct refid="Read"/></sources>
    <parameters><geoRegion>$polygon</geoRegion></parameters></node>
  <node id="Resample"><operator>Resample</operator><sources><sourceProduct refid="Subset"/></sources>
    <parameters><referenceBand>B5</referenceBand><upsampling>Nearest</upsampling>
    <downsampling>Mean</downsampling></parameters></node>
  <node id="c2rcc"><operator>c2rcc.msi</operator><sources><sourceProduct refid="Resample"/></sources>
    <parameters>{c2rcc}</parameters></node>
  <node id="Write"><operator>Write</operator><sources><sourceProduct refid="c2rcc"/></sources>
    <parameters><file>$output</file><formatName>NetCDF4-BEAM</formatName></parameters></node>
</graph>"""


def extent(km: float) -> tuple[float, float, float, float]:
    """A square of ``km`` at the tile's upper-left corner (a multiple of 60 m)."""
    g = tile_grid(TILE)
    side = round(km * 1000 / 60) * 60
    return (g.ulx, g.uly - side, g.ulx + side, g.uly)


def pin_product(dest: Path, baseline: str, box: tuple[float, float, float, float]) -> Path:
    """SNAP's C2RCC test pixel everywhere, written as DN, with its angles."""
    dn = {}
    for band in BAND_NAMES:
        res = BAND_RESOLUTION[band]
        shape = (round((box[3] - box[1]) / res), round((box[2] - box[0]) / res))
        dn[band] = np.full(shape, dn_for_reflectance(PIN_TOA[band], baseline), dtype=np.uint16)
    angles = {
        "sun_zenith": PIN_ANGLES["sun_zenith"],
        "sun_azimuth": PIN_ANGLES["sun_azimuth"],
        # 13 equal float32 values: their float32 mean is the value itself
        "view_zenith": float(np.float32(PIN_ANGLES["view_zenith_mean"])),
        "view_azimuth": float(np.float32(PIN_ANGLES["view_azimuth_mean"])),
    }
    pid = make_product_id(TILE, SENSING, baseline=baseline)
    return write_synthetic_safe(dest, pid, extent=box, dn=dn, angles=angles)


def spec_for(
    product: Path, box: tuple[float, float, float, float], graph: str, res: float
) -> JobSpec:
    key = product.name.removesuffix(".zip")
    return JobSpec(
        key="job1", tile=TILE, year=2019, season="summer",
        products=({"key": key, "id": f"{key}.SAFE", "location": "x"},),
        geo_region="POLYGON ((0 0, 1 0, 1 1, 0 0))", subtiles=("0",), graph=graph,
        utm_bounds=box, epsg=tile_grid(TILE).epsg, resolution=res,
    )  # fmt: skip


def config(nets_dir: Path, cache: Path | None = None, **changes) -> dict:
    cfg = {
        "product_cache": str(cache or nets_dir),
        "subtiles": str(ROOT / "config/subtiles/demo_30UUA.json"),
        "subtiles_crs": "EPSG:32630",
        "years": [2019],
        "graph": str(ROOT / "graphs/s2_c2rcc.xml"),
        "backend": "native",
        "native": {"nets": str(nets_dir), "threads": 2},
        **changes,
    }
    return load_campaign(cfg).config


@pytest.mark.parametrize("baseline", ["02.09", "04.00"])
def test_native_job__snap_test_pixel_comes_out_of_the_written_file(
    tmp_path: Path, nets_dir: Path, baseline: str
) -> None:
    box = extent(1.2)
    product = pin_product(tmp_path / "cache", baseline, box)
    spec = spec_for(product, box, DEFAULT_GRAPH.format(c2rcc="<netSet>C2RCC-Nets</netSet>"), 60.0)
    out = run_local_job(
        spec, {spec.product_keys[0]: product}, config(nets_dir, product.parent), out_dir=tmp_path / "jobs",
        log_dir=tmp_path / "logs", threads=1,
    )  # fmt: skip
    path = Path(out[spec.product_keys[0]])
    assert path == tmp_path / "jobs" / "job1" / f"{spec.product_keys[0]}.nc"
    verify_c2rcc_netcdf(path)
    assert source_product(path) == spec.product_keys[0]
    with xr.open_dataset(path) as ds:
        assert ds.sizes["y"] == ds.sizes["x"] == 20
        for name, expected in GOLDEN.items():
            err = np.abs(ds[name].values.astype(np.float64) - float(np.float32(expected))).max()
            assert err <= 1e-6, f"{baseline} {name}: off by {err:.3g}"
        assert ds.attrs["seasonal_c2rcc_backend"] == "native"


def test_native_job__block_wise_equals_one_block(
    tmp_path: Path, nets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row blocks that bound memory give the same file as one block over the whole region."""
    box = extent(3.0)
    pid = make_product_id(TILE, SENSING, baseline="04.00")
    product = write_synthetic_safe(tmp_path / "cache", pid, extent=extent(6.0))
    graph = (ROOT / "graphs/s2_c2rcc.xml").read_text()
    spec = spec_for(product, box, graph, 20.0)
    cfg = config(nets_dir, product.parent)
    whole = run_local_job(spec, {pid: product}, cfg, out_dir=tmp_path / "a", log_dir=tmp_path)
    monkeypatch.setattr(native, "BLOCK_PIXELS", 150 * 37)  # 37-row blocks, not a divisor
    blocks = run_local_job(spec, {pid: product}, cfg, out_dir=tmp_path / "b", log_dir=tmp_path)
    with xr.open_dataset(whole[pid]) as a, xr.open_dataset(blocks[pid]) as b:
        assert a.sizes["y"] == 150 and set(a.data_vars) == set(b.data_vars)
        valid = a["c2rcc_flags"].values & 0x80000000 > 0
        assert valid.mean() > 0.3, "the synthetic water should give valid pixels"
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_native_job__keeps_a_verified_result_and_remakes_a_damaged_one(
    tmp_path: Path, nets_dir: Path
) -> None:
    box = extent(1.2)
    product = pin_product(tmp_path / "cache", "04.00", box)
    spec = spec_for(product, box, DEFAULT_GRAPH.format(c2rcc=""), 60.0)
    key = spec.product_keys[0]
    cfg = config(nets_dir, product.parent)
    path = Path(run_local_job(spec, {key: product}, cfg, out_dir=tmp_path, log_dir=tmp_path)[key])
    mtime = path.stat().st_mtime_ns
    run_local_job(spec, {key: product}, cfg, out_dir=tmp_path, log_dir=tmp_path)
    assert path.stat().st_mtime_ns == mtime, "a verified result is not made again"
    path.write_bytes(path.read_bytes()[:2000])
    run_local_job(spec, {key: product}, cfg, out_dir=tmp_path, log_dir=tmp_path)
    verify_c2rcc_netcdf(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"c2rcc": "<notAParameter>1</notAParameter>"}, "notAParameter"),
        ({"c2rcc": "<netSet>C3-Nets</netSet>"}, "C3-Nets"),
        ({"upsampling": "Bilinear"}, "upsampling=Bilinear"),
        ({"downsampling": "Median"}, "downsampling=Median"),
    ],
)
def test_native_config__graph_errors_before_any_download(
    tmp_path: Path, nets_dir: Path, change: dict, message: str
) -> None:
    graph = DEFAULT_GRAPH.format(c2rcc=change.get("c2rcc", ""))
    if "upsampling" in change:
        graph = graph.replace("<upsampling>Nearest", f"<upsampling>{change['upsampling']}")
    if "downsampling" in change:
        graph = graph.replace("<downsampling>Mean", f"<downsampling>{change['downsampling']}")
    with pytest.raises(ConfigError, match=message):
        check_local_config(config(nets_dir), graph)


def test_native_config__nets_folder_and_packing(tmp_path: Path, nets_dir: Path) -> None:
    graph = (ROOT / "graphs/s2_c2rcc.xml").read_text()
    check_local_config(config(nets_dir), graph)  # the shipped graph is fine
    with pytest.raises(ConfigError, match="no C2RCC-MSI nets under"):
        check_local_config(config(nets_dir, native={"nets": str(tmp_path)}), graph)
    with pytest.raises(ConfigError, match="packing"):
        check_local_config(config(nets_dir, packing="multi-input"), graph)
    with pytest.raises(ConfigError, match="native.dem"):
        check_local_config(config(nets_dir, native={"nets": str(nets_dir), "dem": "no.tif"}), graph)
