"""Packing planner: which remote (EOCanvas) jobs serve a tile/year/season's selected products.

Pure functions of a frozen catalogue selection and the sub-tile grid; no I/O, no network.

Modes (``packing:`` in the config):

``per-subtile``
    One job per (product, sub-tile): the first user's notebook design, kept as the baseline.
``per-product`` (default)
    One job per product covering a *group* of that tile's sub-tiles (only those that selected the
    product); a local step clips each sub-tile from the result. Groups are formed so that each job's
    pixel count stays under ``pixel_budget``, so far-apart sub-tiles go to separate jobs.
``multi-input``
    Several products of one tile and season in one job: ``$img1..$imgK`` Read nodes, one
    Read->Subset->Resample->c2rcc.msi->Write branch and one output file per product. Whether the
    real service accepts several Write nodes is **unverified** (see docs/quota-and-packing.md).

Regions: a job's ``utm_bounds`` is the union of its sub-tiles' boxes snapped outward to the S2 tile's
pixel grid at the job resolution. Its ``geo_region`` (what goes into SNAP's ``Subset/geoRegion``) is
that box grown by half a pixel on every side, reprojected corner by corner to lon/lat with pyproj.
SNAP takes floor/ceil of the vertices' pixel positions; with every vertex at a pixel *centre* the
result is the box plus one pixel on each side, on the tile's grid, whatever the floating-point noise
of the lon/lat round trip. :mod:`seasonal_c2rcc.clip` then cuts each sub-tile exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .mgrs import tile_grid

if TYPE_CHECKING:
    from .grid import Subtile

PACKING_MODES = ("per-subtile", "per-product", "multi-input")

#: Default largest pixel count (at the job resolution) of one job. Derivation in
#: docs/quota-and-packing.md: the observed ~210 s SNAP step for a 3401 x 2536 px (8.6 Mpx) subset gives
#: ~41 kpx/s, so 3600 s would be ~148 Mpx; 30 Mpx keeps a 5x margin (~730 s expected).
DEFAULT_PIXEL_BUDGET = 30_000_000
#: Default largest number of products in one multi-input job (= the default images_per_season, so one
#: job per sub-tile group and season); each input stages a whole ~700 MB product.
DEFAULT_MAX_INPUTS = 5

_MODE_CODE = {"per-subtile": "s", "per-product": "g", "multi-input": "m"}


@dataclass(frozen=True)
class RemoteJob:
    """One remote job of the plan.

    ``key`` is deterministic and file-name/wildcard safe (``[A-Za-z0-9_]``), derived from the products,
    the region and the mode, so the same plan gives the same keys in every run. ``products`` are
    product keys (ids without ``.SAFE``) in branch order: product ``products[k-1]`` is read by
    ``$img<k>`` and written by branch ``k``. ``serves`` maps each product to the sub-tile ids that
    selected it and are inside this job's region.
    """

    key: str
    mode: str
    tile: str
    products: tuple[str, ...]
    subtiles: tuple[str, ...]
    geo_region: str
    utm_bounds: tuple[float, float, float, float]
    epsg: int
    resolution: float
    pixels: int
    serves: Mapping[str, tuple[str, ...]] = field(hash=False)

    @property
    def n_inputs(self) -> int:
        """Number of input products (Read nodes)."""
        return len(self.products)

    def branch(self, product: str) -> int:
        """1-based branch number of ``product`` (its ``$img<k>`` and output suffix)."""
        try:
            return self.products.index(product) + 1
        except ValueError:
            raise KeyError(f"{product} is not an input of job {self.key}") from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (for state files and provenance)."""
        return {
            "key": self.key,
            "mode": self.mode,
            "tile": self.tile,
            "products": list(self.products),
            "subtiles": list(self.subtiles),
            "geo_region": self.geo_region,
            "utm_bounds": list(self.utm_bounds),
            "epsg": self.epsg,
            "resolution": self.resolution,
            "pixels": self.pixels,
            "serves": {p: list(s) for p, s in self.serves.items()},
        }


# -- pixel-grid arithmetic ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    """Column/row bounds (half-open) in the tile's pixel grid at one resolution."""

    c0: int
    r0: int
    c1: int
    r1: int

    def union(self, other: _Box) -> _Box:
        return _Box(
            min(self.c0, other.c0), min(self.r0, other.r0),
            max(self.c1, other.c1), max(self.r1, other.r1),
        )  # fmt: skip

    @property
    def pixels(self) -> int:
        # +2 per axis: the one-pixel margin the half-pixel geoRegion pad makes SNAP return.
        return (self.c1 - self.c0 + 2) * (self.r1 - self.r0 + 2)


@lru_cache(maxsize=65536)
def _snap(tile: str, bounds: tuple[float, float, float, float], res: float) -> _Box:
    """``bounds`` snapped outward to the tile grid (same rule as grid.region_raster_grid)."""
    from .grid import region_raster_grid

    g = region_raster_grid(tile, bounds, res)
    tg = tile_grid(tile)
    c0 = round((g.x0 - tg.ulx) / res)
    r0 = round((tg.uly - g.y0) / res)
    return _Box(c0, r0, c0 + g.width, r0 + g.height)


def _box_utm(tile: str, box: _Box, res: float) -> tuple[float, float, float, float]:
    tg = tile_grid(tile)
    return (tg.ulx + box.c0 * res, tg.uly - box.r1 * res, tg.ulx + box.c1 * res, tg.uly - box.r0 * res)


@lru_cache(maxsize=65536)
def geo_region_wkt(tile: str, utm_bounds: tuple[float, float, float, float], res: float) -> str:
    """Lon/lat WKT POLYGON for SNAP's ``geoRegion`` covering ``utm_bounds`` (a box on the tile's grid
    at ``res``): corners at the centres of the pixels just outside the box, reprojected exactly."""
    from pyproj import Transformer

    xmin, ymin, xmax, ymax = utm_bounds
    h = res / 2.0
    xmin, ymin, xmax, ymax = xmin - h, ymin - h, xmax + h, ymax + h
    tr = Transformer.from_crs(tile_grid(tile).epsg, 4326, always_xy=True)
    corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)]
    pts = [tr.transform(x, y) for x, y in corners]
    return "POLYGON ((" + ", ".join(f"{lon:.9f} {lat:.9f}" for lon, lat in pts) + "))"


def _natural(sid: str) -> tuple[Any, ...]:
    """Sort key that puts "2" before "10"."""
    return (0, int(sid), "") if sid.isdigit() else (1, 0, sid)


@lru_cache(maxsize=65536)
def _clusters(
    tile: str, boxes: tuple[tuple[str, _Box], ...], budget: int
) -> tuple[tuple[str, ...], ...]:
    """Group sub-tiles so each group's bounding box stays within ``budget`` pixels.

    Agglomerative and deterministic: repeatedly merge the two groups whose merged box is smallest,
    while it fits the budget (ties: the pair that comes first in sub-tile order). Compact neighbours
    merge first; groups far apart never merge once their union would exceed the budget. Memoised on
    the set of sub-tiles, which is shared by most products of a season.
    """
    groups: list[tuple[list[str], _Box]] = [([sid], b) for sid, b in boxes]
    while len(groups) > 1:
        best: tuple[int, int, int] | None = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                px = groups[i][1].union(groups[j][1]).pixels
                if px <= budget and (best is None or px < best[0]):
                    best = (px, i, j)
        if best is None:
            break
        _, i, j = best
        merged = (groups[i][0] + groups[j][0], groups[i][1].union(groups[j][1]))
        groups[i] = merged
        del groups[j]
    return tuple(tuple(sorted(g, key=_natural)) for g, _ in groups)


def _job_key(mode: str, products: Sequence[str], geo_region: str) -> str:
    h = hashlib.sha256("|".join([mode, *products, geo_region]).encode()).hexdigest()[:8]
    code = _MODE_CODE[mode]
    if len(products) > 1:
        code += str(len(products))
    return f"{products[0]}__{code}{h}"


def _make_job(
    mode: str,
    tile: str,
    serves: dict[str, tuple[str, ...]],
    boxes: Mapping[str, _Box],
    res: float,
) -> RemoteJob:
    products = tuple(serves)
    sids = sorted({s for ss in serves.values() for s in ss}, key=_natural)
    box = boxes[sids[0]]
    for s in sids[1:]:
        box = box.union(boxes[s])
    utm = _box_utm(tile, box, res)
    geo = geo_region_wkt(tile, utm, res)
    return RemoteJob(
        key=_job_key(mode, products, geo),
        mode=mode,
        tile=tile,
        products=products,
        subtiles=tuple(sids),
        geo_region=geo,
        utm_bounds=utm,
        epsg=tile_grid(tile).epsg,
        resolution=float(res),
        pixels=box.pixels * len(products),
        serves=serves,
    )


def product_subtiles(catalogue: Mapping[str, Any], subtile_ids: Iterable[str]) -> dict[str, list[str]]:
    """product key -> sub-tile ids (of ``subtile_ids``) that selected it, in catalogue order."""
    wanted = set(subtile_ids)
    out: dict[str, list[str]] = {}
    for sid, prods in catalogue.get("subtiles", {}).items():
        if sid not in wanted:
            continue
        for p in prods:
            out.setdefault(p, []).append(sid)
    return {p: sorted(s, key=_natural) for p, s in sorted(out.items())}


def plan_jobs(
    catalogue: Mapping[str, Any],
    subtiles: Sequence[Subtile],
    *,
    mode: str = "per-product",
    resolution: float,
    pixel_budget: int = DEFAULT_PIXEL_BUDGET,
    max_inputs: int = DEFAULT_MAX_INPUTS,
) -> list[RemoteJob]:
    """Remote jobs serving every (sub-tile, selected product) pair of one catalogue selection.

    ``catalogue`` is the frozen ``results/catalog/{tile}/{year}/{season}.json`` dict; ``subtiles``
    the campaign's sub-tiles (those of other tiles are ignored; sub-tiles absent from the catalogue
    get nothing). Every (sub-tile, product) pair of the selection is served by exactly one job. The
    result is sorted by key and is a pure function of the inputs.
    """
    if mode not in PACKING_MODES:
        raise ConfigError(f"packing: unknown mode {mode!r}; expected one of {PACKING_MODES}")
    if pixel_budget < 1 or max_inputs < 1:
        raise ConfigError("packing: pixel_budget and max_inputs must be >= 1")
    tile = str(catalogue["tile"])
    res = float(resolution)
    mine = {s.id: s for s in subtiles if s.tile == tile}
    boxes = {sid: _snap(tile, tuple(s.geometry.bounds), res) for sid, s in mine.items()}
    by_product = product_subtiles(catalogue, mine)
    jobs: list[RemoteJob] = []
    if mode == "per-subtile":
        for p, sids in by_product.items():
            for sid in sids:
                jobs.append(_make_job(mode, tile, {p: (sid,)}, boxes, res))
        return sorted(jobs, key=lambda j: j.key)

    units: list[tuple[str, tuple[str, ...]]] = []  # (product, sub-tile group)
    for p, sids in by_product.items():
        key = tuple((sid, boxes[sid]) for sid in sids)
        for group in _clusters(tile, key, int(pixel_budget)):
            units.append((p, group))
    if mode == "per-product":
        jobs = [_make_job(mode, tile, {p: g}, boxes, res) for p, g in units]
        return sorted(jobs, key=lambda j: j.key)
    return sorted(_pack_multi(tile, units, boxes, res, pixel_budget, max_inputs), key=lambda j: j.key)


def _pack_multi(
    tile: str,
    units: list[tuple[str, tuple[str, ...]]],
    boxes: Mapping[str, _Box],
    res: float,
    budget: int,
    max_inputs: int,
) -> list[RemoteJob]:
    """First-fit packing of (product, group) units into multi-input jobs.

    All branches of a job share one region (the union of its sub-tiles), so a job costs
    ``K x pixels(union)``: gpt runs the branches one after another inside the same 3600 s. A product
    appears at most once per job (two Read nodes of one product would stage it twice).
    """

    def ubox(groups: Iterable[tuple[str, ...]]) -> _Box:
        it = [boxes[s] for g in groups for s in g]
        b = it[0]
        for o in it[1:]:
            b = b.union(o)
        return b

    # Units sorted by region then product so that units sharing a region pack together.
    order = sorted(units, key=lambda u: (ubox([u[1]]).c0, ubox([u[1]]).r0, u[1], u[0]))
    bins: list[list[tuple[str, tuple[str, ...]]]] = []
    for unit in order:
        for b in bins:
            if len(b) >= max_inputs or any(p == unit[0] for p, _ in b):
                continue
            if ubox([g for _, g in b] + [unit[1]]).pixels * (len(b) + 1) <= budget:
                b.append(unit)
                break
        else:
            bins.append([unit])
    jobs = []
    for b in bins:
        b.sort(key=lambda u: u[0])  # branch order = product order (stable keys)
        serves = {p: g for p, g in b}
        jobs.append(_make_job("multi-input", tile, serves, boxes, res))
    return jobs


def index_jobs(jobs: Iterable[RemoteJob]) -> dict[tuple[str, str], RemoteJob]:
    """(sub-tile id, product key) -> the job that produces that pair. Raises if a pair is served
    twice (a planner bug that would spend two jobs on one output)."""
    out: dict[tuple[str, str], RemoteJob] = {}
    for j in jobs:
        for p, sids in j.serves.items():
            for sid in sids:
                if (sid, p) in out:
                    raise ValueError(f"({sid}, {p}) served by {out[(sid, p)].key} and {j.key}")
                out[(sid, p)] = j
    return out


def staged_bytes(jobs: Iterable[RemoteJob], catalogue: Mapping[str, Any]) -> int:
    """Bytes the service stages in for ``jobs``: every input of every job is a whole product."""
    prods = catalogue.get("products", {})
    return sum(int(prods[p]["size"]) for j in jobs for p in j.products)


# -- multi-input graph ---------------------------------------------------------------------------


def output_suffix(branch: int) -> str:
    """The Write file of branch ``k``: ``$output`` for k = 1 (the node the service knows), else
    ``${output}_k`` (gpt expands ``${output}``; SNAP appends the extension: ``<uuid1>_k.nc``)."""
    return "$output" if branch == 1 else f"${{output}}_{branch}"


def result_branch(filename: str) -> int:
    """Branch number of a multi-input result file: ``<uuid1>.nc`` -> 1, ``<uuid1>_3.nc`` -> 3.

    The service names outputs ``<uuid1>`` (hex and hyphens, no underscore), so a trailing ``_<k>`` can
    only come from ``${output}_k``.
    """
    import re

    stem = filename.rsplit("/", 1)[-1].split(".", 1)[0]
    m = re.fullmatch(r"[0-9a-fA-F-]+_(\d+)", stem)
    return int(m.group(1)) if m else 1


def multi_input_graph(graph: str, k: int) -> str:
    """Replicate a filled single-input graph into ``k`` independent branches.

    ``graph`` is a filled single-input graph (``fill_graph`` output: only ``$img1`` and ``$output``
    left). Branch 1 is the graph unchanged (node ids kept, so the service's ``Write`` node and its
    ``$output`` are where it expects them); branch ``j`` >= 2 is a copy with every node id suffixed
    ``_j``, its sources re-pointed to the copies, Read file ``$img<j>`` and Write file ``${output}_j``.
    One Write per branch gives one output file per product.
    """
    import copy

    from lxml import etree

    if k < 1:
        raise ConfigError(f"multi-input graph needs k >= 1, got {k}")
    root = etree.fromstring(graph.encode() if isinstance(graph, str) else graph)
    nodes = root.findall("node")
    ids = {n.get("id") for n in nodes}
    reads = [n for n in nodes if (n.findtext("operator") or "").strip() == "Read"]
    writes = [n for n in nodes if (n.findtext("operator") or "").strip() == "Write"]
    if len(reads) != 1 or (reads[0].findtext("parameters/file") or "").strip() != "$img1":
        raise ConfigError("multi-input graph: template needs exactly one Read node with file $img1")
    if len(writes) != 1 or writes[0].get("id") != "Write":
        raise ConfigError("multi-input graph: template needs exactly one Write node with id 'Write'")
    if (writes[0].findtext("parameters/file") or "").strip() != "$output":
        raise ConfigError("multi-input graph: the Write node's file must be $output")
    anchor = nodes[-1]
    for j in range(2, k + 1):
        for n in nodes:
            c = copy.deepcopy(n)
            c.set("id", f"{n.get('id')}_{j}")
            for src in c.iter():
                ref = src.get("refid")
                if ref in ids:
                    src.set("refid", f"{ref}_{j}")
                if src.getparent() is not None and src.getparent().tag == "sources":
                    if src.get("refid") is None and (src.text or "").strip() in ids:
                        src.text = f"{src.text.strip()}_{j}"
            op = (c.findtext("operator") or "").strip()
            if op == "Read":
                c.find("parameters/file").text = f"$img{j}"
            elif op == "Write":
                c.find("parameters/file").text = output_suffix(j)
            anchor.addnext(c)
            anchor = c
    # applicationData (graph builder layout) refers to node ids; it is optional and dropped.
    for app in root.findall("applicationData"):
        root.remove(app)
    return etree.tostring(root, encoding="unicode")


def pixels_per_second_default() -> float:
    """Observed C2RCC throughput used for the default budget (px/s at the job resolution)."""
    return 3401 * 2536 / 210.0


def budget_from_limit(limit_s: float = 3600.0, margin: float = 5.0) -> int:
    """Pixel budget keeping the expected gpt time at ``limit_s / margin`` (default: 30 Mpx)."""
    return int(round(pixels_per_second_default() * limit_s / margin / 1e6)) * 1_000_000
