"""Composite speed and memory: 40, 80 and 240 scenes of 1000 x 1000 pixels, against numpy.nanmedian.

Comparisons, all measured in this run on the same data:

1. **Kernel, in memory** (first scene count only). One (40, 1000, 1000) float32 stack with ~35 %
   NaN (invalid or masked pixels): :func:`seasonal_c2rcc.composite.nan_percentile_stats`
   (median, P10, P90 and count from one sort) against ``numpy.nanmedian(stack, axis=0)`` (median
   only) and ``numpy.nanpercentile(stack, [10, 50, 90], axis=0)``.
2. **End to end, from files, for each scene count**, each in its own child process so peak
   memory (max RSS) is its own: :func:`seasonal_c2rcc.composite.build_composite` on SNAP-shaped
   NetCDF4-BEAM products (masking, same-day grouping, all statistics, CF NetCDF + chl COG written
   and verified) against the naive approach (read every scene of a variable into one array,
   mask, ``numpy.nanmedian``; run up to ``--naive-max`` scenes, as it needs ~4 MB per scene and
   variable plus nanmedian's copies), and against the memory bound the rules declare as
   ``mem_mb`` (:func:`seasonal_c2rcc.composite.peak_memory_mb`). A climatology pools a few
   hundred scenes: the composite's peak RSS must not grow with the count (issue 11).

Run: ``.venv/bin/python benchmarks/bench_composite.py [--scenes 40,80,240] [--size 1000]``
(about 5 minutes and 6 GB of temporary disk for 240 scenes on a 2-core machine; ``--json
out.json`` saves the numbers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.composite import nan_percentile_stats  # noqa: E402
from seasonal_c2rcc.flags import FLAG_MASKS  # noqa: E402
from seasonal_c2rcc.grid import RasterGrid  # noqa: E402

VARIABLES = ("conc_chl", "conc_tsm", "kd489")


def _grid(size: int) -> RasterGrid:
    # 30UUA tile grid at 20 m: a 20 km x 20 km block of the tile
    return RasterGrid(epsg=32630, x0=299960.0, y0=5600040.0, res=20.0, width=size, height=size)


def make_products(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` products (distinct days) with lognormal chl and ~35 % unusable pixels."""
    import xarray as xr

    from seasonal_c2rcc.beam_netcdf import BeamGrid, write_beam_netcdf

    g = _grid(size)
    bg = BeamGrid(g.epsg, g.x0, g.y0, g.res, g.res, g.width, g.height)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        chl = rng.lognormal(1.0, 0.8, size=(size, size)).astype(np.float32)
        flags = np.full((size, size), FLAG_MASKS["Valid_PE"], np.uint32)
        r = rng.random((size, size))
        flags[r < 0.20] = 0
        flags[(r >= 0.20) & (r < 0.35)] |= np.uint32(FLAG_MASKS["Cloud_risk"])
        chl[flags == 0] = 0
        data = {"conc_chl": chl, "conc_tsm": 2 * chl, "kd489": 0.1 * chl, "c2rcc_flags": flags}
        ds = xr.Dataset({k: (("y", "x"), v) for k, v in data.items()})
        day = (dt.date(2016, 6, 1) + dt.timedelta(days=i)).strftime("%Y%m%d")  # distinct days
        name = f"S2B_MSIL1C_{day}T112119_N0500_R037_T30UUA_20230427T164710"
        paths.append(write_beam_netcdf(folder / f"{name}.nc", ds, grid=bg, compress=False))
    return paths


def kernel(n: int, size: int, seed: int = 1) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    stack = rng.lognormal(1.0, 0.8, size=(n, size, size)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.35] = np.nan
    out: dict[str, float] = {}
    t = time.perf_counter()
    ours = nan_percentile_stats(stack, min_count=1)
    out["ours_median_p10_p90_count_s"] = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = time.perf_counter()
        ref = np.nanmedian(stack, axis=0)
        out["numpy_nanmedian_s"] = time.perf_counter() - t
        # nanpercentile is far slower; time it on a tenth of the rows and scale
        rows = max(1, size // 10)
        t = time.perf_counter()
        np.nanpercentile(stack[:, :rows], [10, 50, 90], axis=0)
        out["numpy_nanpercentile_3q_s_est"] = (time.perf_counter() - t) * size / rows
    out["max_abs_diff_vs_nanmedian"] = float(np.nanmax(np.abs(ours["median"] - ref)))
    out["ratio_ours_over_nanmedian"] = out["ours_median_p10_p90_count_s"] / out["numpy_nanmedian_s"]
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process (MB).

    VmHWM from /proc (Linux), not ``getrusage``: ru_maxrss survives execve, so a child would
    report its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, folder: Path, size: int, variables: list[str]) -> None:
    """Run one end-to-end measurement; print a JSON line with time and max RSS."""
    paths = sorted(folder.glob("S2*.nc"))
    t = time.perf_counter()
    if mode == "imports":  # what the other modes import, nothing else: the fixed part of RSS
        import h5py  # noqa: F401
        import netCDF4  # noqa: F401
        import pyproj  # noqa: F401
        import rasterio  # noqa: F401

        from seasonal_c2rcc.composite import build_composite  # noqa: F401
    elif mode == "ours":
        from seasonal_c2rcc.composite import build_composite

        build_composite(
            paths,
            folder / "out" / "c.nc",
            grid=_grid(size),
            variables=variables,
            cog_path=folder / "out" / "c_chl.tif",
        )
    else:
        import netCDF4

        from seasonal_c2rcc.masking import MaskConfig, usable_values, valid_mask

        m = MaskConfig()
        for var in variables:
            stack = np.empty((len(paths), size, size), np.float32)
            for i, p in enumerate(paths):
                with netCDF4.Dataset(p) as ds:
                    ds.set_auto_mask(False)
                    ok = valid_mask(ds["c2rcc_flags"][:], m)
                    stack[i] = usable_values(ds[var][:], ok)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                np.nanmedian(stack, axis=0)
            del stack
    dt = time.perf_counter() - t
    print(json.dumps({"mode": mode, "seconds": dt, "max_rss_mb": peak_rss_mb()}))


def run_child(mode: str, folder: Path, size: int, variables: list[str]) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--folder",
        str(folder),
        "--size",
        str(size),
        "--variables",
        ",".join(variables),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _subset(folder: Path, products: list[Path], n: int) -> Path:
    """A folder holding the first ``n`` products (symbolic links)."""
    sub = folder / f"n{n}"
    sub.mkdir()
    for p in products[:n]:
        (sub / p.name).symlink_to(p)
    return sub


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", default="40,80,240", help="scene counts, comma-separated")
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--variables", default=",".join(VARIABLES))
    ap.add_argument("--naive-max", type=int, default=80, help="largest count run the naive way")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--child", choices=["ours", "naive", "imports"])
    ap.add_argument("--folder", type=Path)
    a = ap.parse_args()
    variables = a.variables.split(",")
    if a.child:
        child(a.child, a.folder, a.size, variables)
        return 0
    from seasonal_c2rcc.composite import peak_memory_mb

    counts = sorted({int(n) for n in a.scenes.split(",")})
    bound = peak_memory_mb(a.size, a.size, n_variables=len(variables))
    result: dict[str, object] = {
        "scenes": counts,
        "size": a.size,
        "variables": variables,
        "declared_bound_mb": bound,
    }
    print(f"kernel: {counts[0]} x {a.size} x {a.size} float32, 35 % NaN")
    k = kernel(counts[0], a.size)
    result["kernel"] = k
    for key, v in k.items():
        print(f"  {key:32s} {v:10.4g}")
    with tempfile.TemporaryDirectory(prefix="bench_composite_") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        (folder / "all").mkdir()
        products = make_products(folder / "all", counts[-1], a.size)
        print(
            f"end to end from NetCDF4-BEAM files ({counts[-1]} written in "
            f"{time.perf_counter() - t:.1f} s), variables {variables}; declared bound "
            f"(mem_mb of the rules for this grid and these variables) {bound} MB"
        )
        base = run_child("imports", folder / "all", a.size, variables)["max_rss_mb"]
        print(f"  RSS of the imports alone: {base:.0f} MB")
        rows = []
        for n in counts:
            sub = _subset(folder, products, n)
            ours = run_child("ours", sub, a.size, variables)
            row = {
                "scenes": n,
                "ours_s": ours["seconds"],
                "ours_peak_rss_mb": ours["max_rss_mb"],
                "ratio_ours_peak_over_bound": ours["max_rss_mb"] / bound,
            }
            line = (
                f"  {n:4d} scenes: build_composite {ours['seconds']:6.1f} s, peak RSS "
                f"{ours['max_rss_mb']:5.0f} MB ({row['ratio_ours_peak_over_bound']:.2f} of the bound)"
            )
            if n <= a.naive_max:
                naive = run_child("naive", sub, a.size, variables)
                row.update(
                    naive_nanmedian_s=naive["seconds"],
                    naive_peak_rss_mb=naive["max_rss_mb"],
                    ratio_time_ours_over_naive=ours["seconds"] / naive["seconds"],
                    ratio_rss_ours_over_naive=ours["max_rss_mb"] / naive["max_rss_mb"],
                )
                line += (
                    f"; naive load + mask + nanmedian {naive['seconds']:6.1f} s, peak RSS "
                    f"{naive['max_rss_mb']:5.0f} MB (time ratio {row['ratio_time_ours_over_naive']:.2f}, "
                    f"RSS ratio {row['ratio_rss_ours_over_naive']:.2f})"
                )
            print(line, flush=True)
            rows.append(row)
            shutil.rmtree(sub)
        first = rows[0]["ours_peak_rss_mb"]
        print(
            "  peak RSS relative to the smallest count: "
            + ", ".join(f"{r['scenes']}: {r['ours_peak_rss_mb'] / first:.2f}" for r in rows)
        )
        result["end_to_end"] = rows
        result["import_baseline_rss_mb"] = base
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
