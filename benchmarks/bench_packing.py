"""Remote jobs and bytes staged per packing mode, against the per-subtile baseline (issue 4).

Campaigns:

* demo: ``config/demo.yaml`` (2 sub-tiles of 30UUA, 1 year, 2 seasons);
* user: ``config/config.yaml`` (30UUA, the user's 11 sub-tiles, 2016-2023, 4 seasons, 5 scenes).

Catalogues come from the WEkEO emulator's catalogue (the same products its HDA search returns),
selected with the pipeline's own selection code, frozen into a temporary folder, then billed with
:func:`seasonal_c2rcc.bill.compute_bill` (which runs the packing planner on each frozen catalogue).
Every ratio printed is measured in this run.

Run: ``.venv/bin/python benchmarks/bench_packing.py``
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from seasonal_c2rcc.bill import compute_bill, render_bill  # noqa: E402
from seasonal_c2rcc.catalogue import build_selection  # noqa: E402
from seasonal_c2rcc.config import Campaign, load_campaign, load_config_file  # noqa: E402
from seasonal_c2rcc.emulator.catalogue import products_for_tile  # noqa: E402


def freeze_emulator_catalogues(campaign: Campaign, cdir: Path) -> int:
    """Write the selection of every tile/year/season of ``campaign`` from the emulator catalogue."""
    cfg = campaign.config
    n = 0
    for tile in campaign.tiles:
        subs = campaign.subtiles_of(tile)
        for year in campaign.years:
            for window in campaign.seasons:
                d0, d1 = window.dates(year)
                start = datetime.combine(d0, dtime(0, 0), UTC)
                end = datetime.combine(d1, dtime(23, 59, 59), UTC)
                features = [p.feature() for p in products_for_tile(tile, start, end)]
                doc = build_selection(
                    features,
                    tile=tile,
                    year=year,
                    window=window,
                    subtiles=subs,
                    cloud_cover_max=float(cfg["cloud_cover_max"]),
                    images_per_season=int(cfg["images_per_season"]),
                    selection=cfg["selection"],
                    min_coverage=float(cfg["min_subtile_coverage"]),
                )
                out = cdir / tile / str(year) / f"{window.name}.json"
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(doc))
                n += 1
    return n


def bench(name: str, config_file: Path, resolutions: list[float | None]) -> list[dict]:
    campaign = load_campaign(load_config_file(config_file), REPO)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        n = freeze_emulator_catalogues(campaign, Path(tmp))
        t_cat = time.perf_counter() - t0
        for res in resolutions:
            cfg = dict(campaign.config)
            if res is not None:
                cfg["resolution"] = res
            t0 = time.perf_counter()
            bill = compute_bill(cfg, list(campaign.subtiles), tmp)
            t_bill = time.perf_counter() - t0
            assert bill.exact, "every catalogue was frozen"
            print(f"\n=== {name}: {config_file.relative_to(REPO)} at {bill.resolution:g} m "
                  f"({n} catalogues from the emulator in {t_cat:.1f} s; bill in {t_bill:.2f} s)")
            print(render_bill(bill), end="")
            base = bill.modes["per-subtile"]
            for mode, mb in bill.modes.items():
                rows.append({
                    "campaign": name, "resolution": bill.resolution, "mode": mode,
                    "jobs": mb.jobs, "jobs_ratio": mb.jobs / base.jobs,
                    "bytes": mb.bytes_staged, "bytes_ratio": mb.bytes_staged / base.bytes_staged,
                    "completion_days": mb.completion_s / 86400,
                })  # fmt: skip
    return rows


def main() -> None:
    rows = bench("demo", REPO / "config" / "demo.yaml", [None])
    rows += bench("30UUA 2016-2023", REPO / "config" / "config.yaml", [None, 10])
    print("\n=== summary: ratios against the per-subtile baseline (same run)")
    print(f"{'campaign':<16} {'res':>4} {'mode':<12} {'jobs':>6} {'jobs/base':>9} "
          f"{'staged GB':>10} {'bytes/base':>10} {'done (days)':>11}")
    for r in rows:
        print(f"{r['campaign']:<16} {r['resolution']:>4g} {r['mode']:<12} {r['jobs']:>6} "
              f"{r['jobs_ratio']:>9.3f} {r['bytes'] / 1e9:>10.1f} {r['bytes_ratio']:>10.3f} "
              f"{r['completion_days']:>11.2f}")


if __name__ == "__main__":
    main()
