"""Benchmark of the Sentinel-2 L1C SAFE reader: one 10 km sub-tile window against whole-band reads.

Usage::

    .venv/bin/python benchmarks/bench_s2_reader.py [--km 40] [--repeat 3] [--zip/--folder]

Writes a synthetic ``km x km`` product (the real SAFE layout, 1024 x 1024 JP2 tiles), then times,
in the same run and on the same file:

- the baseline: decoding all 13 bands whole at their native resolution (what a reader without
  windowed reads pays for any window);
- ``read_window`` of one 10 km x 10 km sub-tile at 20 m (all 13 bands resampled, angles, lat/lon),
  cold (a fresh ``open_safe``) and warm (the same product again: GDAL's block cache);
- ``read_window`` of the same sub-tile in 25 row blocks (the native backend's access pattern).

It prints the best of ``--repeat`` runs and the ratio to the baseline. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime

from seasonal_c2rcc.mgrs import tile_grid
from seasonal_c2rcc.s2l1c import BAND_NAMES, open_safe
from seasonal_c2rcc.s2l1c.synthetic import make_product_id, write_synthetic_safe


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--km", type=float, default=40.0, help="product extent (km, square)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--folder", action="store_true", help="an unpacked .SAFE instead of a .zip")
    args = ap.parse_args()

    g = tile_grid("30UUA")
    size = round(args.km * 1000 / 60) * 60
    extent = (g.ulx, g.uly - size, g.ulx + size, g.uly)
    pid = make_product_id("30UUA", datetime(2023, 6, 1, 11, 0, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory(prefix="bench-s2-") as tmp:
        t0 = time.perf_counter()
        path = write_synthetic_safe(tmp, pid, extent=extent, zip=not args.folder)
        t_write = time.perf_counter() - t0
        nbytes = (
            path.stat().st_size
            if path.is_file()
            else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        )
        print(f"synthetic product {size / 1000:g} km square: written in {t_write:.2f} s, "
              f"{nbytes / 1e6:.1f} MB ({'folder' if args.folder else 'zip'})")  # fmt: skip

        def whole() -> None:
            p = open_safe(path)
            for band in BAND_NAMES:
                p.read_dn(band, p.bounds)
            p.close()

        # a 10 km sub-tile (on the 60 m grid) in the middle of the product
        x0 = extent[0] + round((size / 2 - 5000) / 60) * 60
        y1 = extent[3] - round((size / 2 - 5000) / 60) * 60
        window = (x0, y1 - 9960, x0 + 9960, y1)

        def cold() -> None:
            with open_safe(path) as p:
                p.read_window(window, 20)

        warm_product = open_safe(path)
        warm_product.read_window(window, 20)

        def warm() -> None:
            warm_product.read_window(window, 20)

        def row_blocks() -> None:
            with open_safe(path) as p:
                rows = round((window[3] - window[1]) / 20)
                step = rows // 25
                for r0 in range(0, rows, step):
                    r1 = min(rows, r0 + step)
                    p.read_window(
                        (window[0], window[3] - r1 * 20, window[2], window[3] - r0 * 20), 20
                    )

        t_whole = best(whole, args.repeat)
        t_cold = best(cold, args.repeat)
        t_warm = best(warm, args.repeat)
        t_rows = best(row_blocks, args.repeat)
        px = round(9960 / 20) ** 2
        print(f"baseline: all 13 bands decoded whole        {t_whole:7.3f} s")
        print(f"read_window 10 km @ 20 m, cold              {t_cold:7.3f} s  "
              f"ratio {t_cold / t_whole:.3f}  ({px / t_cold / 1e6:.2f} Mpx/s)")  # fmt: skip
        print(f"read_window 10 km @ 20 m, warm block cache  {t_warm:7.3f} s  "
              f"ratio {t_warm / t_whole:.3f}")  # fmt: skip
        print(f"read_window in 25 row blocks, cold          {t_rows:7.3f} s  "
              f"ratio {t_rows / t_whole:.3f}")  # fmt: skip
        warm_product.close()


if __name__ == "__main__":
    main()
