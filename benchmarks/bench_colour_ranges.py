"""The tile colour ranges (rule colour_ranges): pooled histogram against a naive pooled percentile.

A tile of a long campaign has hundreds of seasonal composites (8 years x 4 seasons x 11 sub-tiles
= 352). :func:`seasonal_c2rcc.figure_ranges.pooled_ranges` fills one fixed histogram per variable
file by file; the naive baseline reads every composite's median band of a variable into one array
and calls ``numpy.percentile`` on the finite values. Both run here on the same files, each in its
own child process so its peak memory (max RSS) is its own; the limits they find are compared.

Files hold only what the rule reads (``<band>_median`` of chl, TSM, Kd489 and the three
true-colour Rrs bands, float32, ~30 % NaN), so the numbers are the ranges' own cost.

Run: ``.venv/bin/python benchmarks/bench_colour_ranges.py [--composites 24 48] [--size 500]``
(about a minute and 0.5 GB of temporary disk on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.figure_ranges import LOG_VARIABLES, MAP_VARIABLES, RGB_BANDS  # noqa: E402

BANDS = ("conc_chl", "conc_tsm", "kd489", *RGB_BANDS)


def make_composites(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """``n`` files with lognormal concentrations (levels varying by file, like seasons) and Rrs."""
    import netCDF4

    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"c{i:04d}.nc"
        level = np.exp(rng.normal(0, 1))
        nan = rng.random((size, size)) < 0.3
        with netCDF4.Dataset(path, "w") as ds:
            ds.createDimension("y", size)
            ds.createDimension("x", size)
            for band in BANDS:
                if band in LOG_VARIABLES:
                    a = level * rng.lognormal(0.0, 0.8, (size, size))
                else:
                    a = rng.normal(0.006, 0.003, (size, size))
                a[nan] = np.nan
                v = ds.createVariable(f"{band}_median", "f4", ("y", "x"), fill_value=np.nan)
                v[:] = a.astype(np.float32)
        paths.append(path)
    return paths


def naive(paths: list[Path]) -> dict[str, tuple[float, float]]:
    """Every value of a variable in memory at once, then numpy.percentile."""
    import netCDF4

    out = {}
    for var in MAP_VARIABLES:
        bands = RGB_BANDS if var == "rrs_rgb" else (var,)
        vals = []
        for p in paths:
            with netCDF4.Dataset(p) as ds:
                ds.set_auto_mask(False)
                for b in bands:
                    a = np.asarray(ds.variables[f"{b}_median"][:], np.float64)
                    ok = np.isfinite(a) & ((a > 0) if var in LOG_VARIABLES else True)
                    vals.append(a[ok])
        v = np.concatenate(vals)
        lo, hi = np.percentile(v, [2, 98])
        out[var] = (float(lo), float(hi))
    return out


def child(method: str, paths: list[str]) -> None:
    import resource

    files = [Path(p) for p in paths]
    t0 = time.perf_counter()
    if method == "histogram":
        from seasonal_c2rcc.figure_ranges import pooled_ranges

        res = {k: (lo, hi) for k, (lo, hi, _) in pooled_ranges(files).items()}
    else:
        res = naive(files)
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "ranges": res}))


def run(method: str, paths: list[Path]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", method, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--composites", type=int, nargs="+", default=[24, 48])
    ap.add_argument("--size", type=int, default=500)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.child:
        child(ns.child[0], ns.child[1:])
        return
    print(f"{'files':>5} {'method':>10} {'time s':>7} {'peak RSS MB':>11}  max rel. diff of limits")
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_composites(Path(tmp), max(ns.composites), ns.size)
        for n in ns.composites:
            base = run("naive", paths[:n])
            hist = run("histogram", paths[:n])
            diff = max(
                abs(h - b) / abs(b)
                for var in MAP_VARIABLES
                for h, b in zip(hist["ranges"][var], base["ranges"][var], strict=True)
            )
            for name, r in (("naive", base), ("histogram", hist)):
                print(f"{n:>5} {name:>10} {r['seconds']:>7.2f} {r['rss_mb']:>11.0f}")
            print(
                f"{n:>5} {'ratio':>10} {hist['seconds'] / base['seconds']:>7.2f} "
                f"{hist['rss_mb'] / base['rss_mb']:>11.2f}  {diff:.4f}"
            )


if __name__ == "__main__":
    main()
