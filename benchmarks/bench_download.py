"""Benchmark the product cache's checks: what a verified download costs next to a plain one.

A product-sized zip (``--size-mb`` of incompressible members stored as the JP2 bands of a real L1C
zip are, under ``<id>.SAFE/`` with its ``MTD_MSIL1C.xml``) is served over loopback by a small
threaded HTTP server. In the same run, interleaved over ``--rounds``:

* ``plain GET``: stream the body to a file, nothing else (what hda's own ``Client.stream`` does);
* ``cache GET``: what :mod:`seasonal_c2rcc.download` does with the body: ``wekeo.stream_to_file``
  (temporary name, ``Content-Length`` check), ``fsync``, :func:`verify_product_zip` (layout and
  every member's CRC), atomic rename;
* ``plain read``: read the downloaded file once, sequentially (the page-cache baseline);
* ``verify``: :func:`verify_product_zip` alone on the same file.

Prints MB/s per scenario, ``cache GET / plain GET`` and ``verify / plain read`` time ratios. The
order (one POST) and its readiness probes are not included: they cost the same either way.

    .venv/bin/python benchmarks/bench_download.py [--size-mb 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.server
import os
import statistics
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import requests

from seasonal_c2rcc import wekeo
from seasonal_c2rcc.atomic import atomic_path
from seasonal_c2rcc.download import _fsync, verify_product_zip

KEY = "S2B_MSIL1C_20200609T112152_N0209_R110_T30UUA_20200609T133453"
BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")


def make_product(path: Path, size_mb: int) -> None:
    """A stored zip of ``size_mb`` MB of random band files with the L1C SAFE layout."""
    per_band = size_mb * 1_000_000 // len(BANDS)
    granule = f"{KEY}.SAFE/GRANULE/L1C_T30UUA_A000000_20200609T112152/IMG_DATA"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{KEY}.SAFE/MTD_MSIL1C.xml", "<Level-1C_User_Product/>\n")
        for band in BANDS:
            with zf.open(
                f"{granule}/T30UUA_20200609T112152_{band}.jp2", "w", force_zip64=True
            ) as f:
                left = per_band
                while left:
                    n = min(left, 1 << 20)
                    f.write(os.urandom(n))
                    left -= n


def serve(path: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    folder = str(path.parent)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=folder, **kw)  # type: ignore[misc]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/{path.name}"


def plain_get(url: str, dest: Path) -> None:
    with requests.get(url, stream=True, timeout=60) as r, open(dest, "wb") as fh:
        r.raise_for_status()
        for block in r.iter_content(chunk_size=1 << 20):
            fh.write(block)


def cache_get(url: str, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        wekeo.stream_to_file(lambda: requests.get(url, stream=True, timeout=60), tmp)
        _fsync(tmp)
        verify_product_zip(tmp, KEY)


def plain_read(path: Path) -> None:
    with open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def timed(fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        root = Path(tmp)
        served = root / "serve" / f"{KEY}.zip"
        served.parent.mkdir()
        make_product(served, args.size_mb)
        size = served.stat().st_size
        server, url = serve(served)
        got = root / "got"
        got.mkdir()
        times: dict[str, list[float]] = {
            k: [] for k in ("plain GET", "cache GET", "plain read", "verify")
        }
        try:
            for i in range(args.rounds):
                a, b = got / f"plain{i}.zip", got / f"{KEY}.zip"
                times["plain GET"].append(timed(lambda a=a: plain_get(url, a)))
                times["cache GET"].append(timed(lambda b=b: cache_get(url, b)))
                times["plain read"].append(timed(lambda b=b: plain_read(b)))
                times["verify"].append(timed(lambda b=b: verify_product_zip(b, KEY)))
                a.unlink()
                b.unlink()
        finally:
            server.shutdown()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"product zip {size / 1e6:.0f} MB, {args.rounds} rounds, medians")
    print(f"{'scenario':<12} {'s':>7} {'MB/s':>8}")
    for k, v in med.items():
        print(f"{k:<12} {v:>7.3f} {size / 1e6 / v:>8.0f}")
    print(f"cache GET / plain GET: {med['cache GET'] / med['plain GET']:.2f}")
    print(f"verify / plain read:   {med['verify'] / med['plain read']:.2f}")


if __name__ == "__main__":
    main()
