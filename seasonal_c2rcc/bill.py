"""The bill: what a campaign will cost in remote work, per packing mode, before anything is spent.

For the configured campaign (tiles x years x seasons of the sub-tile grid) it counts catalogue
searches, HDA orders, EOCanvas jobs, bytes staged by the service and the earliest completion time
under the EOCanvas hourly and monthly quotas, side by side for each packing mode. Next to them, the
local backends (``native``, ``gpt``): product downloads (distinct products, bytes from the
catalogue sizes, hours at HDA's order limit) and an estimate of CPU hours (:class:`LocalBill`,
rates and their sources in :data:`NATIVE_PX_PER_CPU_S`, :data:`READ_WHOLE_PRODUCT_CPU_S`,
:data:`GPT_RUN_S`).

Where a frozen catalogue selection ``<catalogue_dir>/<tile>/<year>/<season>.json`` exists the
numbers for that tile/year/season are exact (the planner of :mod:`seasonal_c2rcc.packing` is run on
it). Where it does not, they are **estimated** from the Sentinel-2 revisit (see :data:`ASSUMPTIONS`),
and the bill says how many of the tile/year/seasons are estimates.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths
from .errors import ConfigError
from .packing import DEFAULT_MAX_INPUTS, DEFAULT_PIXEL_BUDGET, PACKING_MODES, plan_jobs
from .quota import QuotaLimits

if TYPE_CHECKING:
    from .grid import Subtile

#: Sentinel-2 platforms flying the two constellation slots (S2C replaced S2A in 2025, same slot).
S2A_FROM = date(2015, 7, 1)
S2B_FROM = date(2017, 3, 1)
REVISIT_DAYS = 10
#: Mean number of relative orbits seeing one tile (one always, the adjacent one for about half the
#: tiles through swath overlap; 30UUA has two: R037 and R080).
ORBITS_PER_TILE = 1.5
#: Assumed mean product size (bytes): one observed S2 L1C order was a 667 MB zip; sizes range
#: about 600-800 MB for full tiles.
PRODUCT_SIZE = 700_000_000
#: Assumed end-to-end duration of one remote job (s): observed 5-8 min (SNAP step ~210 s).
JOB_DURATION_S = 480.0

#: Native C2RCC-MSI cost, pixels per CPU-second (float64, as needed for SNAP parity), per net set:
#: the "px per CPU-s" column of docs/c2rcc.md "Performance" (benchmarks/bench_c2rcc.py on the 2-core
#: development machine): C2RCC-Nets 126-139 k over five runs (the ~270 k px/s wall-clock rate on
#: 2 quiet cores), C2X-Nets 103-110 k, C2X-COMPLEX-Nets 107-117 k.
NATIVE_PX_PER_CPU_S = {
    "C2RCC-Nets": 130_000.0,
    "C2X-Nets": 105_000.0,
    "C2X-COMPLEX-Nets": 110_000.0,
}
#: SNAP's c2rcc.msi default net set (used when the graph names none).
DEFAULT_NET_SET = "C2RCC-Nets"
#: Reading a whole L1C product (all 13 JP2 bands decoded): about 50 s on 2 threads, measured for
#: the SAFE reader on the 2-core development machine (2.2 s per 5490 x 5490 band; documented in
#: docs/quota-and-packing.md, "The bill"), i.e. up to 100 CPU-s.
#: A windowed read decodes only the JP2 tiles it touches: assumed proportional to its area.
READ_WHOLE_PRODUCT_CPU_S = 100.0
#: Area of one Sentinel-2 tile (109.8 km square).
S2_TILE_AREA_M2 = 109_800.0**2
#: Wall time of one gpt run: the SNAP step of one EOCanvas job, observed at about 210 s for a
#: sub-tile polygon (WEkEO job logs); the only gpt timing available, assumed for local gpt runs
#: whatever their region, with ``gpt.threads`` cores busy (2 when SNAP decides).
GPT_RUN_S = 210.0
GPT_ASSUMED_CORES = 2

ASSUMPTIONS = (
    "acquisitions per tile: one every 10 days per platform and relative orbit; S2A from 2015-07, "
    "S2B from 2017-03 (S2C took S2A's slot in 2025); "
    f"{ORBITS_PER_TILE:g} relative orbits per tile on average",
    "fraction of acquisitions under the cloud limit c (tile-level %): (c/100)^0.625, i.e. 37 % at "
    "20 % (the emulator catalogue's distribution; real fractions vary by region and season)",
    "every sub-tile of a tile selects the same scenes (tile-level cloud cover); products "
    f"{PRODUCT_SIZE / 1e6:.0f} MB each",
    f"a remote job takes {JOB_DURATION_S / 60:.0f} min end to end; quotas start unused",
)


@dataclass(frozen=True)
class ModeBill:
    """The cost of the campaign under one packing mode."""

    mode: str
    jobs: int
    bytes_staged: int
    pixels: int
    max_job_pixels: int
    #: seconds from the first submission until the last job is done, under the quota
    completion_s: float


@dataclass(frozen=True)
class LocalBill:
    """The cost of the campaign processed locally (backend ``native`` or ``gpt``).

    Every distinct product is downloaded once (the product cache); processing runs once per
    product and planned job of the configured packing mode (per-product when that is
    multi-input: a local job processes one product)."""

    backend: str
    downloads: int
    bytes_downloaded: int
    #: seconds of ordering at HDA's hourly order limit (downloads / orders per hour)
    ordering_s: float
    #: processing runs: one per product and planned job
    runs: int
    #: pixels processed (at the configured resolution)
    pixels: int
    #: estimated CPU seconds (native: C2RCC at NATIVE_PX_PER_CPU_S plus reading; gpt: GPT_RUN_S
    #: times its cores per run)
    cpu_s: float
    #: of which reading the products (native only)
    read_cpu_s: float = 0.0


@dataclass(frozen=True)
class Bill:
    """The campaign's bill; ``exact`` is False when any tile/year/season was estimated."""

    tiles: tuple[str, ...]
    years: tuple[int, ...]
    seasons: tuple[str, ...]
    n_subtiles: int
    searches: int
    products: int
    hda_orders: int
    catalogues_exact: int
    catalogues_estimated: int
    modes: Mapping[str, ModeBill]
    configured_mode: str
    resolution: float
    pixel_budget: int
    limits: QuotaLimits
    start: float
    #: local backends (native, gpt) next to the EOCanvas modes
    local: Mapping[str, LocalBill] = field(default_factory=dict)
    configured_backend: str = "eocanvas"
    #: the configured graph's c2rcc.msi netSet (it sets the native rate)
    net_set: str = DEFAULT_NET_SET
    assumptions: tuple[str, ...] = field(default=ASSUMPTIONS)

    @property
    def exact(self) -> bool:
        """True when every tile/year/season came from a frozen catalogue."""
        return self.catalogues_estimated == 0


# -- quota schedule ------------------------------------------------------------------------------


def submission_times(n: int, limits: QuotaLimits) -> list[float]:
    """Earliest times (s from start) of ``n`` EOCanvas submissions under both rolling windows,
    submitting greedily as soon as a slot frees (what the ledger does)."""
    hour, month = limits.eocanvas_per_hour, limits.eocanvas_per_month
    hw, mw = limits.hour_window, limits.month_window
    t: list[float] = []
    for i in range(n):
        ti = t[-1] if t else 0.0
        if i >= hour:
            ti = max(ti, t[i - hour] + hw)
        if month is not None and i >= month:
            ti = max(ti, t[i - month] + mw)
        t.append(ti)
    return t


def completion_time(n_jobs: int, n_orders: int, limits: QuotaLimits, job_s: float) -> float:
    """Seconds from start until ``n_jobs`` jobs are done: the last submission plus one job, and never
    before the last of ``n_orders`` HDA orders (100 per hour)."""
    if n_jobs == 0:
        return 0.0
    last = _nth_submission(n_jobs, limits.eocanvas_per_hour, limits.hour_window,
                           limits.eocanvas_per_month, limits.month_window)  # fmt: skip
    orders = _nth_submission(n_orders, limits.hda_orders_per_hour, limits.hour_window, None, 0.0)
    return max(last + job_s / limits.time_scale, orders)


def _nth_submission(n: int, hour: int, hw: float, month: int | None, mw: float) -> float:
    """Time of the n-th (1-based) greedy submission; closed form of :func:`submission_times`
    (bursts of ``hour`` per hourly window, ``month`` per monthly window)."""
    if n <= 0:
        return 0.0
    if month is None or month <= hour:
        per_month_windows = 0.0 if month is None else ((n - 1) // month) * mw
        return max(((n - 1) // hour) * hw, per_month_windows)
    m, r = divmod(n - 1, month)
    return m * mw + (r // hour) * hw


# -- catalogue or estimate ----------------------------------------------------------------------


def _clear_fraction(cloud_max: float) -> float:
    return max(0.0, min(1.0, cloud_max / 100.0)) ** 0.625


def estimated_scenes(start: date, end: date, cloud_max: float) -> float:
    """Expected number of acquisitions of one tile under the cloud limit in [start, end]."""
    n = 0.0
    day = start
    while day <= end:
        n += (day >= S2A_FROM) + (day >= S2B_FROM)
        day += timedelta(days=1)
    return n / REVISIT_DAYS * ORBITS_PER_TILE * _clear_fraction(cloud_max)


def _synthetic_catalogue(
    tile: str, year: int, season: str, subtiles: Sequence[Subtile], k: int
) -> dict[str, Any]:
    keys = [f"EST_{tile}_{year}_{season}_{i}" for i in range(k)]
    return {
        "tile": tile,
        "products": {p: {"size": PRODUCT_SIZE} for p in keys},
        "subtiles": {s.id: list(keys) for s in subtiles},
    }


def compute_bill(
    config: Mapping[str, Any],
    subtiles: Sequence[Subtile],
    catalogue_dir: str | Path | None,
    *,
    modes: Iterable[str] = PACKING_MODES,
    start: float | None = None,
    job_duration: float = JOB_DURATION_S,
    net_set: str | None = None,
    base_dir: str | Path = ".",
) -> Bill:
    """Bill the campaign of the validated ``config`` over ``subtiles``.

    ``catalogue_dir`` holds frozen selections ``<tile>/<year>/<season>.json`` (``None``: estimate
    everything). Uses the config's ``years``, ``seasons``, ``tiles``, ``resolution``,
    ``pixel_budget``, ``max_inputs`` (if present), ``cloud_cover_max``, ``images_per_season``,
    ``packing``, ``quota``, ``backend`` and ``gpt``. ``net_set`` (the native C2RCC rate) defaults
    to the netSet of the configured graph, read from ``base_dir``.
    """
    from .config import parse_years
    from .seasons import parse_seasons

    years = parse_years(config["years"])
    seasons = parse_seasons(config.get("seasons"))
    wanted = config.get("tiles")
    subs = [s for s in subtiles if not wanted or s.tile in set(wanted)]
    if not subs:
        raise ConfigError("bill: no sub-tiles in the campaign")
    tiles = list(dict.fromkeys(s.tile for s in subs))
    by_tile = {t: [s for s in subs if s.tile == t] for t in tiles}
    res = float(config.get("resolution", 20))
    budget = int(config.get("pixel_budget", DEFAULT_PIXEL_BUDGET))
    max_inputs = int(config.get("max_inputs", DEFAULT_MAX_INPUTS))
    n_img = int(config.get("images_per_season", 5))
    cloud = float(config.get("cloud_cover_max", 20))
    q = config.get("quota", {}) or {}
    limits = QuotaLimits(
        eocanvas_per_hour=int(q.get("eocanvas_per_hour", 10)),
        eocanvas_per_month=q.get("eocanvas_per_month", 100),
        hda_orders_per_hour=int(q.get("hda_orders_per_hour", 100)),
        time_scale=float(q.get("time_scale", 1.0)),
    )
    modes = tuple(modes)
    for m in modes:
        if m not in PACKING_MODES:
            raise ConfigError(f"bill: unknown packing mode {m!r}")
    configured = str(config["packing"])
    # local backends run the configured packing's jobs (billed or not as an EOCanvas mode); they
    # process one product per job, so multi-input is planned per product for them
    local_mode = "per-product" if configured == "multi-input" else configured
    plan_modes = tuple(dict.fromkeys((*modes, local_mode)))
    net = net_set or _graph_net_set(config, base_dir)
    if net not in NATIVE_PX_PER_CPU_S:
        raise ConfigError(
            f"bill: unknown c2rcc.msi netSet {net!r}; use one of {list(NATIVE_PX_PER_CPU_S)}"
        )
    cdir = Path(catalogue_dir) if catalogue_dir is not None else None

    jobs = dict.fromkeys(modes, 0)
    staged = dict.fromkeys(modes, 0)
    pixels = dict.fromkeys(modes, 0)
    max_px = dict.fromkeys(modes, 0)
    product_size: dict[str, int] = {}  # distinct products -> bytes
    runs = run_pixels = 0
    read_cpu_s = 0.0
    exact = estimated = 0
    estimate_cache: dict[tuple[str, int], dict[str, list[Any]]] = {}
    for tile in tiles:
        for year in years:
            for sw in seasons:
                path = cdir / tile / str(year) / f"{sw.name}.json" if cdir else None
                if path is not None and path.is_file():
                    cat = json.loads(path.read_text())
                    exact += 1
                    plans = {m: plan_jobs(cat, by_tile[tile], mode=m, resolution=res,
                                          pixel_budget=budget, max_inputs=max_inputs)
                             for m in plan_modes}  # fmt: skip
                    sizes = {
                        p: int(v.get("size", PRODUCT_SIZE)) for p, v in cat["products"].items()
                    }
                    used = {p for ps in cat.get("subtiles", {}).values() for p in ps}
                    product_size.update({f"{tile}/{p}": sizes.get(p, PRODUCT_SIZE) for p in used})
                else:
                    estimated += 1
                    d0, d1 = sw.dates(year)
                    k = min(n_img, math.floor(estimated_scenes(d0, d1, cloud)))
                    if (tile, k) not in estimate_cache:
                        cat = _synthetic_catalogue(tile, 0, "est", by_tile[tile], k)
                        estimate_cache[(tile, k)] = {
                            m: plan_jobs(cat, by_tile[tile], mode=m, resolution=res,
                                         pixel_budget=budget, max_inputs=max_inputs)
                            for m in plan_modes
                        }  # fmt: skip
                    plans = estimate_cache[(tile, k)]
                    sizes = None
                    product_size.update({f"{tile}/{year}/{sw.name}/{i}": PRODUCT_SIZE
                                         for i in range(k)})  # fmt: skip
                for j in plans[local_mode]:
                    per_product = j.pixels // len(j.products)
                    area = min(1.0, per_product * res * res / S2_TILE_AREA_M2)
                    runs += len(j.products)
                    run_pixels += j.pixels
                    read_cpu_s += len(j.products) * READ_WHOLE_PRODUCT_CPU_S * area
                for m, js in plans.items():
                    if m not in jobs:
                        continue
                    jobs[m] += len(js)
                    for j in js:
                        pixels[m] += j.pixels
                        max_px[m] = max(max_px[m], j.pixels)
                        staged[m] += sum(
                            sizes[p] if sizes is not None else PRODUCT_SIZE for p in j.products
                        )
    n_orders = len(product_size)
    downloaded = sum(product_size.values())
    ordering_s = n_orders / limits.hda_orders_per_hour * limits.hour_window
    gpt_cores = config["gpt"]["threads"] or GPT_ASSUMED_CORES
    c2rcc_cpu_s = run_pixels / NATIVE_PX_PER_CPU_S[net]
    local = {
        "native": LocalBill("native", n_orders, downloaded, ordering_s, runs, run_pixels,
                            c2rcc_cpu_s + read_cpu_s, read_cpu_s),
        "gpt": LocalBill("gpt", n_orders, downloaded, ordering_s, runs, run_pixels,
                         runs * GPT_RUN_S * gpt_cores),
    }  # fmt: skip
    bills = {
        m: ModeBill(
            mode=m,
            jobs=jobs[m],
            bytes_staged=staged[m],
            pixels=pixels[m],
            max_job_pixels=max_px[m],
            completion_s=completion_time(jobs[m], n_orders, limits, job_duration),
        )
        for m in modes
    }
    return Bill(
        tiles=tuple(tiles),
        years=tuple(years),
        seasons=tuple(sw.name for sw in seasons),
        n_subtiles=len(subs),
        searches=len(tiles) * len(years) * len(seasons),
        products=n_orders,
        hda_orders=n_orders,
        catalogues_exact=exact,
        catalogues_estimated=estimated,
        modes=bills,
        configured_mode=configured,
        resolution=res,
        pixel_budget=budget,
        limits=limits,
        start=time.time() if start is None else float(start),
        local=local,
        configured_backend=str(config["backend"]),
        net_set=net,
    )


def _graph_net_set(config: Mapping[str, Any], base_dir: str | Path) -> str:
    """The configured graph's c2rcc.msi netSet (SNAP's default when it names none or the graph
    file is not there)."""
    from .graph import c2rcc_parameters

    graph = Path(base_dir) / str(config["graph"])
    if not graph.is_file():
        return DEFAULT_NET_SET
    params = c2rcc_parameters(graph.read_text(), where=str(graph)) or {}
    return params.get("netSet") or DEFAULT_NET_SET


# -- rendering -----------------------------------------------------------------------------------


def _duration(s: float) -> str:
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 60 * 86400:
        return f"{s / 86400:.1f} days"
    if s < 730 * 86400:
        return f"{s / (30 * 86400):.1f} months"
    return f"{s / (365 * 86400):.1f} years"


def _pixels(n: int) -> str:
    return f"{n / 1e6:.1f} Mpx" if n >= 1e6 else f"{n / 1e3:.0f} kpx"


def _bytes(n: int) -> str:
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= f:
            return f"{n / f:.1f} {unit}"
    return f"{n} B"


def render_bill(bill: Bill, fmt: str = "text") -> str:
    """The bill as plain text (``fmt="text"``) or a Markdown table (``fmt="markdown"``)."""
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown', got {fmt!r}")
    lim = bill.limits
    status = (
        "EXACT (every tile/year/season from a frozen catalogue)"
        if bill.exact
        else f"ESTIMATE ({bill.catalogues_estimated} of "
        f"{bill.catalogues_exact + bill.catalogues_estimated} tile/year/seasons not searched yet; "
        "estimated from the Sentinel-2 revisit)"
    )
    years = f"{bill.years[0]}-{bill.years[-1]}" if len(bill.years) > 1 else str(bill.years[0])
    head = [
        f"Campaign: {len(bill.tiles)} tile(s) ({', '.join(bill.tiles[:6])}"
        f"{', ...' if len(bill.tiles) > 6 else ''}), {bill.n_subtiles} sub-tiles, years {years}, "
        f"seasons {', '.join(bill.seasons)}; {bill.resolution:g} m, pixel budget "
        f"{bill.pixel_budget / 1e6:g} Mpx",
        f"Bill: {status}",
        f"Quota: EOCanvas {lim.eocanvas_per_hour}/hour, {lim.eocanvas_per_month}/month; "
        f"HDA {lim.hda_orders_per_hour} orders/hour"
        + (f" (time scale 1/{lim.time_scale:g})" if lim.time_scale != 1 else ""),
        f"Catalogue searches: {bill.searches}    HDA orders (unique products): {bill.hda_orders}",
    ]
    cols = ["packing", "EOCanvas jobs", "vs per-subtile", "bytes staged", "largest job",
            "earliest completion", "done by"]  # fmt: skip
    base = bill.modes.get("per-subtile")
    rows = []
    for m, mb in bill.modes.items():
        ratio = f"{mb.jobs / base.jobs:.3f}" if base and base.jobs else "-"
        done = datetime.fromtimestamp(bill.start + mb.completion_s, UTC)
        rows.append([
            m + (" (configured)" if m == bill.configured_mode else ""),
            f"{mb.jobs:,}",
            ratio,
            _bytes(mb.bytes_staged),
            _pixels(mb.max_job_pixels),
            _duration(mb.completion_s),
            done.strftime("%Y-%m-%d %H:%M UTC"),
        ])  # fmt: skip
    notes = (
        []
        if bill.exact
        else ["Assumptions of the estimate:", *[f"  - {a}" for a in bill.assumptions]]
    )
    if "multi-input" in bill.modes:
        notes.append(
            "multi-input needs several Write nodes in one EOCanvas job: unverified on the real "
            "service (docs/quota-and-packing.md)."
        )
    local_title, local_cols, local_rows, local_notes = _local_section(bill)
    if fmt == "markdown":
        lines = [*(f"{h}  " for h in head), "", "| " + " | ".join(cols) + " |",
                 "|" + "---|" * len(cols)]  # fmt: skip
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        if local_rows:
            lines += ["", local_title, "", "| " + " | ".join(local_cols) + " |",
                      "|" + "---|" * len(local_cols)]  # fmt: skip
            lines += ["| " + " | ".join(r) + " |" for r in local_rows]
        return "\n".join(lines + [""] + local_notes + notes) + "\n"

    def table(cols: list[str], rows: list[list[str]]) -> list[str]:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        fmt_row = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [fmt_row.format(*cols), fmt_row.format(*("-" * w for w in widths))]
        return out + [fmt_row.format(*r) for r in rows]

    lines = [*head, "", *table(cols, rows)]
    if local_rows:
        lines += ["", local_title, *table(local_cols, local_rows)]
    return "\n".join(lines + [""] + local_notes + notes) + "\n"


def _local_section(bill: Bill) -> tuple[str, list[str], list[list[str]], list[str]]:
    """Title, columns, rows and notes of the local backends' table (empty rows: none billed)."""
    if not bill.local:
        return "", [], [], []
    per_hour = bill.limits.hda_orders_per_hour
    title = (
        "Local backends (each product downloaded once into the product cache, processed on your "
        "own machines; no EOCanvas quota):"
    )
    cols = ["backend", "downloads", "bytes downloaded", f"ordering at {per_hour}/hour",
            "processing runs", "CPU hours (estimate)"]  # fmt: skip
    rows = []
    for name, lb in bill.local.items():
        cpu = f"{lb.cpu_s / 3600:,.1f}"
        if lb.read_cpu_s:
            cpu += (f" (C2RCC {(lb.cpu_s - lb.read_cpu_s) / 3600:,.1f} + reading "
                    f"{lb.read_cpu_s / 3600:,.1f})")  # fmt: skip
        rows.append([
            name + (" (configured)" if name == bill.configured_backend else ""),
            f"{lb.downloads:,}",
            _bytes(lb.bytes_downloaded),
            _duration(lb.ordering_s),
            f"{lb.runs:,}",
            cpu,
        ])  # fmt: skip
    gpt = bill.local.get("gpt")
    gpt_cores = round(gpt.cpu_s / (gpt.runs * GPT_RUN_S)) if gpt and gpt.runs else GPT_ASSUMED_CORES
    notes = [
        "Local estimates:",
        f"  - native: C2RCC-MSI at {NATIVE_PX_PER_CPU_S[bill.net_set] / 1e3:.0f} k px per "
        f"CPU-second ({bill.net_set}, the graph's netSet; measured, docs/c2rcc.md; every pixel "
        "counted as water, so an upper bound where land fails the valid-pixel expression) plus reading "
        f"{READ_WHOLE_PRODUCT_CPU_S:.0f} CPU-s per whole product (13 JP2 bands), windowed reads in "
        "proportion to their area; writing not included",
        f"  - gpt: {GPT_RUN_S:.0f} s per run (the SNAP step of one EOCanvas job, observed) on "
        f"{gpt_cores} core(s) (gpt.threads); a rough figure: time one run on your machine",
        "  - downloads and processing overlap: ordering at HDA's limit is the floor of the "
        "completion time, CPU hours divided by the cores you give it the other",
    ]
    return title, cols, rows, notes


def bill_from_config(
    config: Mapping[str, Any],
    base_dir: str | Path = ".",
    catalogue_dir: str | Path | None = paths.CATALOGUE_DIR,
) -> Bill:
    """One call for the CLI / Snakemake target: load the campaign from a raw config and bill it."""
    from .config import load_campaign

    campaign = load_campaign(config, base_dir)
    cdir = None if catalogue_dir is None else Path(base_dir) / catalogue_dir
    return compute_bill(campaign.config, list(campaign.subtiles), cdir, base_dir=base_dir)
