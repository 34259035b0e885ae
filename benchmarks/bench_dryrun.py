"""Scale of the plan: ``snakemake -n`` on a 31 tiles x 20 sub-tiles x 8 years x 4 seasons campaign
with frozen catalogues (issue 4).

Generates, in a temporary working directory:

* a sub-tile grid of 31 Sentinel-2 tiles (zones 29-31 around the first user's 30UUA) with 20 squares
  of 10 km each (lon/lat WKT, the grid-file form every zone can share);
* ``config/config.yaml`` for 2016-2023 and the four default seasons, 5 scenes per season;
* one frozen catalogue selection per tile/year/season (``results/catalog/...`` and its frozen copy
  in ``results/state/catalog/``, 992 each, 6 products each, every sub-tile selecting 5 of them), so
  the checkpoint never runs.

Then times ``snakemake --version`` (interpreter and import start-up) and ``snakemake -n`` on the
project Snakefile in that directory, and reports their ratio, the DAG size and the peak memory of
the ``-n`` process. Target (issue 4): ``-n`` under 60 s on this 2-core machine.

A second baseline, measured in the same run: ``snakemake -n`` on a plain Snakefile with as many
jobs (one ``shell:`` rule, one output each, nothing else). The ratio of the two is what the
pipeline's rules cost beyond Snakemake's own per-job floor.

With ``--backends eocanvas native`` the same campaign is planned once per backend (issue 10): local
processing adds one download and one processing job per product instead of one remote job per
product, and leaves the per-sub-tile, per-season composite targets as they are. ``native`` needs
SNAP's nets only to check the config (``$SEASONAL_C2RCC_NETS`` or ``../shared/data``).

Run: ``.venv/bin/python benchmarks/bench_dryrun.py [--tiles 31 --subtiles 20 --backends eocanvas native --keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.errors import ConfigError  # noqa: E402
from seasonal_c2rcc.mgrs import tile_grid  # noqa: E402
from seasonal_c2rcc.seasons import parse_seasons  # noqa: E402

SNAKEMAKE = str(REPO / ".venv" / "bin" / "snakemake")
YEARS = list(range(2016, 2024))
N_PRODUCTS = 6


def pick_tiles(n: int) -> list[str]:
    """``n`` valid S2 tiles of latitude band U, 30UUA first, then its neighbours in zones 29-31."""
    out = ["30UUA"]
    for zone, cols in ((30, "UVWXY"), (29, "MNPQR"), (31, "BCDEF")):
        for row in "ABCDEFG":
            for col in cols:
                tid = f"{zone}U{col}{row}"
                try:
                    tile_grid(tid)
                except ConfigError:
                    continue
                if tid not in out:
                    out.append(tid)
                if len(out) == n:
                    return out
    raise RuntimeError(f"only {len(out)} tiles found")


def grid_file(tiles: list[str], per_tile: int) -> dict[str, list[str]]:
    """``per_tile`` 10 km squares per tile on the 10 km UTM lattice, as lon/lat WKT."""
    from pyproj import Transformer

    out: dict[str, list[str]] = {}
    for tid in tiles:
        g = tile_grid(tid)
        tr = Transformer.from_crs(g.epsg, 4326, always_xy=True)
        x_start = g.ulx + 40 + 10_000
        y_start = g.uly - 40 - 10_000
        wkts = []
        for k in range(per_tile):
            i, j = k % 5, k // 5
            x0, y1 = x_start + 10_000 * i, y_start - 10_000 * j
            x1, y0 = x0 + 10_000, y1 - 10_000
            ring = [tr.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
            wkts.append("POLYGON ((" + ", ".join(f"{a:.9f} {b:.9f}" for a, b in ring) + "))")
        out[tid] = wkts
    return out


def catalogue(tile: str, year: int, season: str, first: date, last: date, n_sub: int) -> dict:
    """A frozen selection shaped like the pipeline's (catalogue.build_selection)."""
    span = (last - first).days
    products = {}
    for i in range(N_PRODUCTS):
        day = first + timedelta(days=(span * (2 * i + 1)) // (2 * N_PRODUCTS))
        platform = "S2A" if (year < 2017 or i % 2 == 0) else "S2B"
        sensing = f"{day:%Y%m%d}T112119"
        key = f"{platform}_MSIL1C_{sensing}_N0500_R037_T{tile}_20230427T164710"
        products[key] = {
            "id": key + ".SAFE",
            "location": f"/eodata/Sentinel-2/MSI/L1C/{day:%Y/%m/%d}/{key}.SAFE",
            "size": 650_000_000 + 10_000_000 * i,
            "cloud_cover": 2.5 * i,
            "sensing_time": f"{day:%Y-%m-%d}T11:21:19Z",
            "platform": platform,
            "relative_orbit": 37,
            "baseline": "N0500",
            "discriminator": "20230427T164710",
            "tile": tile,
            "footprint": None,
        }
    keys = list(products)
    subtiles = {str(s): [k for i, k in enumerate(keys) if i != (s % N_PRODUCTS)][:5]
                for s in range(n_sub)}  # fmt: skip
    return {
        "schema": 1, "tile": tile, "year": year, "season": season,
        "start": first.isoformat(), "end": last.isoformat(), "cloud_cover_max": 20.0,
        "images_per_season": 5, "selection": "least_cloudy", "min_subtile_coverage": 0.5,
        "searched_at": "2026-11-29T00:00:00Z", "query": {}, "n_found": N_PRODUCTS,
        "products": products, "subtiles": subtiles, "rejected": {},
    }  # fmt: skip


def set_backend(work: Path, backend: str) -> None:
    """Point the generated config at ``backend`` (native: with the nets it checks at start)."""
    import yaml

    path = work / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["backend"] = backend
    cfg.pop("native", None)
    if backend == "native":
        from seasonal_c2rcc.c2rcc import find_nets_dir

        shared = REPO.parent / "shared" / "data" / "c2rcc-nets"
        try:
            nets = find_nets_dir()
        except ConfigError:
            nets = find_nets_dir(shared)
        cfg["native"] = {"nets": str(nets)}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def generate(work: Path, n_tiles: int, n_sub: int) -> int:
    """Write grid, config and frozen catalogues under ``work``; return the number of catalogues."""
    import yaml

    tiles = pick_tiles(n_tiles)
    (work / "config").mkdir(parents=True)
    (work / "config" / "grid.json").write_text(json.dumps(grid_file(tiles, n_sub)))
    cfg = {
        "subtiles": "config/grid.json",
        "subtiles_crs": "EPSG:4326",
        "years": f"{YEARS[0]}-{YEARS[-1]}",
        "images_per_season": 5,
        "graph": str(REPO / "graphs" / "s2_c2rcc.xml"),
        "resolution": 20,
        "packing": "per-product",
    }
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    seasons = parse_seasons(None)
    n = 0
    for tile in tiles:
        for year in YEARS:
            for w in seasons:
                first, last = w.dates(year)
                text = json.dumps(catalogue(tile, year, w.name, first, last, n_sub))
                # the selection and its frozen copy, as the catalogue rule leaves them
                for top in ("results/catalog", "results/state/catalog"):
                    p = work / top / tile / str(year) / f"{w.name}.json"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_text(text)
                n += 1
    return n


PLAIN_SNAKEFILE = """
rule all:
    input:
        expand("out/{{i}}.txt", i=range({n})),


rule make:
    output:
        "out/{{i}}.txt",
    shell:
        "touch {{output}}"
"""


def run(cmd: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall time, peak RSS (bytes, whole process tree) and combined output of ``cmd``."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    peak = 0
    ps = psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                rss = ps.memory_info().rss + sum(
                    c.memory_info().rss for c in ps.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            stop.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, peak, out


def dry_run(
    work: Path, ns: argparse.Namespace, t_ver: float, plain_done: dict[int, tuple[float, int]]
) -> tuple[int, float, int, float, list[tuple[str, str]]]:
    """``snakemake -n`` on the generated campaign, and a plain DAG of the same size (same run)."""
    base = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--workflow-profile",
            str(REPO / "profiles" / "default"), "-n"]  # fmt: skip
    if ns.triggers:
        base += ["--rerun-triggers", *ns.triggers]
    t_n, m_n, out = run(base, work)
    m = re.search(r"^total\s+(\d+)", out, re.M)
    jobs = int(m.group(1)) if m else -1
    print(f"snakemake -n:          {t_n:6.2f} s  peak {m_n / 2**20:6.0f} MiB  "
          f"({jobs:,} jobs in the DAG)")
    if t_n < 120:  # the quiet variant only differs in printing; skip it when -n is slow
        t_q, m_q, _ = run([*base, "--quiet", "rules"], work)
        print(f"snakemake -n -q rules: {t_q:6.2f} s  peak {m_q / 2**20:6.0f} MiB")
    print(f"ratio -n / --version: {t_n / t_ver:.1f}; -n wall time {t_n:.1f} s "
          f"({'within' if t_n < 60 else 'OVER'} the 60 s target); "
          f"{1000 * (t_n - t_ver) / max(jobs, 1):.2f} ms per job")
    if jobs not in plain_done:
        plain = work / f"plain{jobs}"
        plain.mkdir(exist_ok=True)
        (plain / "Snakefile").write_text(PLAIN_SNAKEFILE.format(n=max(jobs - 1, 1)))
        plain_done[jobs] = run([SNAKEMAKE, "-n", "--cores", "1"], plain)[:2]
    t_p, m_p = plain_done[jobs]
    print(
        f"plain DAG, same size:  {t_p:6.2f} s  peak {m_p / 2**20:6.0f} MiB  "
        f"(one shell rule; Snakemake's floor on this machine)"
    )
    print(f"ratio -n / plain -n of the same size: {t_n / t_p:.2f}")
    counts = re.findall(r"^(\S+)\s+(\d+)$", out.split("Job stats:")[-1], re.M)
    print("job counts: " + ", ".join(f"{r} {c}" for r, c in counts if r != "total"))
    return jobs, t_n, m_n, t_n / t_p, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tiles", type=int, default=31)
    ap.add_argument("--subtiles", type=int, default=20)
    ap.add_argument("--triggers", nargs="+",
                    help="--rerun-triggers for the -n runs (default: Snakemake's, all of them)")
    ap.add_argument("--backends", nargs="+", default=["eocanvas"],
                    choices=["eocanvas", "native", "gpt"], help="plan the campaign for each")
    ap.add_argument("--keep", type=Path, help="generate here and keep it (default: temporary)")
    ns = ap.parse_args()
    work = ns.keep or Path(tempfile.mkdtemp(prefix="bench_dryrun_"))
    try:
        t0 = time.perf_counter()
        n_cat = generate(work, ns.tiles, ns.subtiles)
        print(f"generated {ns.tiles} tiles x {ns.subtiles} sub-tiles x {len(YEARS)} years x 4 "
              f"seasons: {n_cat} frozen catalogues in {time.perf_counter() - t0:.1f} s ({work})")
        t_ver, m_ver, _ = run([SNAKEMAKE, "--version"], work)
        print(f"snakemake --version:   {t_ver:6.2f} s  peak {m_ver / 2**20:6.0f} MiB")
        plain_done: dict[int, tuple[float, int]] = {}
        rows = []
        for backend in ns.backends:
            set_backend(work, backend)
            print(f"== backend {backend}")
            rows.append((backend, *dry_run(work, ns, t_ver, plain_done)))
        if len(rows) > 1:
            print("backend    jobs      -n s   peak MiB  ratio to plain DAG  jobs by rule")
            for backend, jobs, t_n, m_n, ratio, counts in rows:
                print(f"{backend:9s} {jobs:7,d} {t_n:8.1f} {m_n / 2**20:9.0f} {ratio:10.2f}          "
                      + ", ".join(f"{r} {c}" for r, c in counts if r != "total"))
    finally:
        if ns.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
