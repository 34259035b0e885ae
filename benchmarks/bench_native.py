"""Local processing throughput of ``backend: native`` (issue 10), next to the EOCanvas quota.

Two cases, in one run, on synthetic Sentinel-2 L1C products with the real SAFE layout
(:mod:`seasonal_c2rcc.s2l1c.synthetic`, 13 lossless JP2 bands, water-like reflectance):

1. one 10 km sub-tile at 20 m (500 x 500 px): one product read for one sub-tile;
2. one product serving 20 sub-tiles (a 50 x 40 km region at 20 m, 2500 x 2000 px, processed as
   one job over their bounding box, as per-product packing plans it).

For each: the time split between reading the SAFE window (JP2 decode, Mean/Nearest resampling,
angles), C2RCC and writing the NetCDF4-BEAM file, and the sub-tile products per hour this machine
processes, next to what EOCanvas allows: 10 jobs an hour (per-subtile packing: 10 sub-tile products
an hour; per-product packing: 10 products, i.e. up to 10 x 20 sub-tile products, and 100 jobs a
month). The baseline measured in the same run is C2RCC alone on in-memory arrays of the same size
(SNAP's test pixel): the ratios say what reading and writing add to the algorithm itself.

Run: ``.venv/bin/python benchmarks/bench_native.py [--threads 2] [--net-set C2X-COMPLEX-Nets]``
(needs SNAP's nets: ``$SEASONAL_C2RCC_NETS``, ``native.nets``, or ``../shared/data`` beside the
repository).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.backends.native import NativeSettings, process_product  # noqa: E402
from seasonal_c2rcc.beam_netcdf import BeamGrid  # noqa: E402
from seasonal_c2rcc.c2rcc import C2rccMsiParams, find_nets_dir, run_c2rcc_msi  # noqa: E402
from seasonal_c2rcc.c2rcc.reference import PIN_ANGLES, PIN_TOA  # noqa: E402
from seasonal_c2rcc.errors import ConfigError  # noqa: E402
from seasonal_c2rcc.mgrs import tile_grid  # noqa: E402
from seasonal_c2rcc.s2l1c.synthetic import make_product_id, write_synthetic_safe  # noqa: E402

TILE = "30UUA"
RES = 20.0
#: EOCanvas's quota (docs/quota-and-packing.md): jobs an hour and a month.
EOCANVAS_PER_HOUR = 10
EOCANVAS_PER_MONTH = 100


def nets_dir() -> Path:
    try:
        return find_nets_dir()
    except ConfigError:
        return find_nets_dir(REPO.parent / "shared" / "data" / "c2rcc-nets")


def baseline_c2rcc(
    shape: tuple[int, int], params: C2rccMsiParams, settings: NativeSettings
) -> float:
    """Seconds of C2RCC alone on in-memory arrays of ``shape`` (SNAP's test pixel)."""
    toa = {b: np.full(shape, np.float32(v)) for b, v in PIN_TOA.items()}
    angles = {k: np.full(shape, np.float32(v)) for k, v in PIN_ANGLES.items()}
    t0 = time.perf_counter()
    run_c2rcc_msi(toa, angles, altitude=0.0, params=params, nets_dir=settings.nets_dir,
                  threads=settings.threads)  # fmt: skip
    return time.perf_counter() - t0


def case(
    name: str, work: Path, width_km: float, height_km: float, n_subtiles: int,
    params: C2rccMsiParams, settings: NativeSettings,
) -> None:  # fmt: skip
    g = tile_grid(TILE)
    w, h = round(width_km * 1000 / 60) * 60, round(height_km * 1000 / 60) * 60
    extent = (g.ulx, g.uly - h, g.ulx + w, g.uly)
    pid = make_product_id(TILE, datetime(2019, 6, 12, 11, 33, 21, tzinfo=UTC), baseline="04.00")
    t0 = time.perf_counter()
    product = write_synthetic_safe(work / name, pid, extent=extent)
    made = time.perf_counter() - t0
    grid = BeamGrid(g.epsg, extent[0], extent[3], RES, RES, round(w / RES), round(h / RES))
    result = process_product(product, pid, grid, params, work / name / "out.nc", settings=settings)
    base = baseline_c2rcc((grid.height, grid.width), params, settings)
    total = result.read_s + result.c2rcc_s + result.write_s
    per_hour = 3600.0 / total * n_subtiles
    mb = product.stat().st_size / 2**20
    print(
        f"== {name}: {grid.width} x {grid.height} px at {RES:g} m, {n_subtiles} sub-tile(s) "
        f"(synthetic product {mb:.1f} MB, made in {made:.1f} s, not counted)"
    )
    print(f"   read SAFE window  {result.read_s:7.2f} s  ({result.read_s / total:5.1%})")
    print(
        f"   C2RCC             {result.c2rcc_s:7.2f} s  ({result.c2rcc_s / total:5.1%})  "
        f"{result.pixels / result.c2rcc_s / 1e3:.0f}k px/s"
    )
    print(f"   write NetCDF      {result.write_s:7.2f} s  ({result.write_s / total:5.1%})")
    print(
        f"   baseline, C2RCC on in-memory arrays of the same size: {base:.2f} s; "
        f"whole product / baseline = {total / base:.2f}, C2RCC in the job / baseline = "
        f"{result.c2rcc_s / base:.2f}"
    )
    print(
        f"   native: {per_hour:,.0f} sub-tile products an hour on {settings.threads} thread(s); "
        f"EOCanvas: {EOCANVAS_PER_HOUR} an hour per-subtile, at most "
        f"{EOCANVAS_PER_HOUR * n_subtiles} per-product ({EOCANVAS_PER_MONTH} jobs a month); "
        f"ratio native / EOCanvas per-product = {per_hour / (EOCANVAS_PER_HOUR * n_subtiles):.1f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--net-set", default="C2X-COMPLEX-Nets",
                    help="the first user's graph uses C2X-COMPLEX-Nets")  # fmt: skip
    ns = ap.parse_args()
    settings = NativeSettings(nets_dir=nets_dir(), threads=ns.threads, dem=None)
    graph = (REPO / "graphs" / "s2_c2rcc.xml").read_text()
    params = C2rccMsiParams.from_graph(graph).replace(netSet=ns.net_set)
    with tempfile.TemporaryDirectory(prefix="bench_native_") as tmp:
        work = Path(tmp)
        case("one 10 km sub-tile", work, 10.02, 10.02, 1, params, settings)
        case("one product serving 20 sub-tiles", work, 50.04, 40.02, 20, params, settings)


if __name__ == "__main__":
    main()
