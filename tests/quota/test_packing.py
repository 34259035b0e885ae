"""Packing planner: every selected (sub-tile, product) served once, budgets, regions, stable keys."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from lxml import etree
from pyproj import Transformer
from shapely import wkt as shapely_wkt

from seasonal_c2rcc.errors import ConfigError
from seasonal_c2rcc.graph import fill_graph, placeholders
from seasonal_c2rcc.grid import load_subtiles, subtile_raster_grid
from seasonal_c2rcc.packing import (
    DEFAULT_PIXEL_BUDGET,
    PACKING_MODES,
    budget_from_limit,
    index_jobs,
    multi_input_graph,
    plan_jobs,
    result_branch,
    staged_bytes,
)

REPO = Path(__file__).resolve().parents[2]
GRID = REPO / "config" / "subtiles" / "30UUA_utm.json"
GRAPH = REPO / "graphs" / "s2_c2rcc.xml"


@pytest.fixture(scope="module")
def user_subtiles():
    return load_subtiles(GRID, "EPSG:32630")


def catalogue(subtiles, n_products: int = 6, drop: int = 3) -> dict:
    """A selection where sub-tile i misses every product p with (p + i) % drop == 0."""
    prods = {
        f"S2A_MSIL1C_2020060{p}T112119_N0500_R037_T30UUA_20230427T164710": {"size": 700_000_000 + p}
        for p in range(n_products)
    }
    keys = list(prods)
    sel = {s.id: [k for p, k in enumerate(keys) if (p + int(s.id)) % drop] for s in subtiles}
    return {"tile": "30UUA", "year": 2020, "season": "summer", "products": prods, "subtiles": sel}


def pairs(cat: dict) -> set[tuple[str, str]]:
    return {(sid, p) for sid, ps in cat["subtiles"].items() for p in ps}


@pytest.mark.parametrize("mode", PACKING_MODES)
@pytest.mark.parametrize("res", [10, 20, 60])
def test_every_selected_pair_is_served_exactly_once_and_covered(user_subtiles, mode, res):
    cat = catalogue(user_subtiles)
    jobs = plan_jobs(cat, user_subtiles, mode=mode, resolution=res)
    index = index_jobs(jobs)  # raises on a pair served twice
    assert set(index) == pairs(cat)
    by_id = {s.id: s for s in user_subtiles}
    for (sid, p), job in index.items():
        g = subtile_raster_grid(by_id[sid], res)
        xmin, ymin, xmax, ymax = job.utm_bounds
        assert xmin <= g.x0 and g.x0 + g.width * res <= xmax
        assert ymin <= g.y0 - g.height * res and g.y0 <= ymax
        assert p in job.products and sid in job.subtiles
    for job in jobs:
        assert job.pixels <= DEFAULT_PIXEL_BUDGET
        assert re.fullmatch(r"[A-Za-z0-9_]+", job.key)


def test_job_counts_per_mode_for_the_users_grid(user_subtiles):
    cat = catalogue(user_subtiles, n_products=6)
    n_pairs = len(pairs(cat))
    per_sub = plan_jobs(cat, user_subtiles, mode="per-subtile", resolution=20)
    per_prod = plan_jobs(cat, user_subtiles, mode="per-product", resolution=20)
    multi = plan_jobs(cat, user_subtiles, mode="multi-input", resolution=20, max_inputs=3)
    assert len(per_sub) == n_pairs == 44
    # The 11 squares span 40 x 50 km: 5 Mpx at 20 m, one job per product.
    assert len(per_prod) == 6
    assert [j.n_inputs for j in multi] == [3, 3]
    assert staged_bytes(per_sub, cat) > 7 * staged_bytes(per_prod, cat)
    assert staged_bytes(multi, cat) == staged_bytes(per_prod, cat)


def test_far_apart_subtiles_go_to_separate_jobs():
    grid = {
        "30UUA": [
            "POLYGON ((300000 5500000, 310000 5500000, 310000 5510000, 300000 5510000, 300000 5500000))",
            "POLYGON ((310000 5500000, 320000 5500000, 320000 5510000, 310000 5510000, 310000 5500000))",
            "POLYGON ((390000 5580000, 400000 5580000, 400000 5590000, 390000 5590000, 390000 5580000))",
        ]
    }
    subs = _grid(grid)
    cat = {"tile": "30UUA", "products": {"P": {"size": 1}}, "subtiles": {"0": ["P"], "1": ["P"], "2": ["P"]}}
    # 10 m: the union is 100 x 90 km = 90 Mpx > 30 Mpx; the two neighbours stay together.
    jobs = plan_jobs(cat, subs, mode="per-product", resolution=10)
    assert sorted(j.subtiles for j in jobs) == [("0", "1"), ("2",)]
    assert all(j.pixels <= DEFAULT_PIXEL_BUDGET for j in jobs)
    # A bigger budget (or a coarser resolution) puts all three in one job.
    assert len(plan_jobs(cat, subs, mode="per-product", resolution=10, pixel_budget=95_000_000)) == 1
    assert len(plan_jobs(cat, subs, mode="per-product", resolution=20)) == 1


def _grid(data: dict) -> list:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(data, f)
    try:
        return load_subtiles(f.name, "EPSG:32630")
    finally:
        Path(f.name).unlink()


def test_plan_is_deterministic_and_keys_are_stable(user_subtiles):
    cat = catalogue(user_subtiles)
    jobs = plan_jobs(cat, user_subtiles, mode="per-product", resolution=20)
    shuffled_subs = list(user_subtiles)
    random.Random(1).shuffle(shuffled_subs)
    cat2 = json.loads(json.dumps(cat))
    cat2["subtiles"] = dict(reversed(list(cat2["subtiles"].items())))
    assert plan_jobs(cat2, shuffled_subs, mode="per-product", resolution=20) == jobs
    # Pinned: a key change would orphan every job already submitted and re-spend the quota.
    assert jobs[0].key == "S2A_MSIL1C_20200600T112119_N0500_R037_T30UUA_20230427T164710__g15504bf6"
    # Different region or mode -> different key.
    other = plan_jobs(cat, user_subtiles, mode="per-product", resolution=10)
    assert {j.key for j in other}.isdisjoint(j.key for j in jobs)


def test_geo_region_is_lonlat_half_a_pixel_outside_the_box(user_subtiles):
    cat = catalogue(user_subtiles)
    for job in plan_jobs(cat, user_subtiles, mode="per-subtile", resolution=20):
        poly = shapely_wkt.loads(job.geo_region)
        lon0, lat0, lon1, lat1 = poly.bounds
        assert -6.5 < lon0 < lon1 < -4 and 49 < lat0 < lat1 < 51
        back = Transformer.from_crs(4326, job.epsg, always_xy=True)
        xs, ys = zip(*(back.transform(x, y) for x, y in poly.exterior.coords), strict=True)
        xmin, ymin, xmax, ymax = job.utm_bounds
        assert min(xs) == pytest.approx(xmin - 10, abs=1e-3)
        assert max(xs) == pytest.approx(xmax + 10, abs=1e-3)
        assert min(ys) == pytest.approx(ymin - 10, abs=1e-3)
        assert max(ys) == pytest.approx(ymax + 10, abs=1e-3)
        assert job.pixels == 502 * 502


def test_multi_input_respects_budget_and_max_inputs(user_subtiles):
    cat = catalogue(user_subtiles, n_products=9)
    jobs = plan_jobs(cat, user_subtiles, mode="multi-input", resolution=10, max_inputs=4)
    for j in jobs:
        assert j.n_inputs <= 4 and len(set(j.products)) == j.n_inputs
        assert j.pixels <= DEFAULT_PIXEL_BUDGET
    # At 10 m the groups are 16-20 Mpx (one product per job) except the 30 x 40 km group of the
    # products sub-tile 10 did not select (12 Mpx: two per job).
    assert sorted(j.n_inputs for j in jobs) == [1] * 7 + [2]
    assert [j.pixels for j in jobs if j.n_inputs == 2] == [2 * 3002 * 4002]
    jobs20 = plan_jobs(cat, user_subtiles, mode="multi-input", resolution=20, max_inputs=4)
    assert [j.n_inputs for j in jobs20] == [4, 4, 1]


def test_bad_mode_is_a_config_error(user_subtiles):
    with pytest.raises(ConfigError, match="unknown mode"):
        plan_jobs(catalogue(user_subtiles), user_subtiles, mode="per-tile", resolution=20)


def test_default_budget_derivation():
    assert budget_from_limit() == DEFAULT_PIXEL_BUDGET


def test_multi_input_graph_has_one_branch_and_one_write_per_product():
    filled = fill_graph(GRAPH.read_text(), "POLYGON ((-5 50, -4.9 50, -4.9 50.1, -5 50))", 20)
    text = multi_input_graph(filled, 3)
    root = etree.fromstring(text.encode())
    assert placeholders(text) == {"img1", "img2", "img3", "output"}
    writes = [n.get("id") for n in root.findall("node") if n.findtext("operator") == "Write"]
    assert writes == ["Write", "Write_2", "Write_3"]
    for j, w in enumerate(writes, start=1):
        nodes = {n.get("id"): n for n in root.findall("node")}
        # walk back from this Write to its Read: the branch is complete and independent
        ids, cur = [], nodes[w]
        while cur is not None:
            ids.append(cur.get("id"))
            src = cur.find("sources/sourceProduct")
            cur = nodes[src.get("refid")] if src is not None else None
        suffix = "" if j == 1 else f"_{j}"
        assert ids == [f"{n}{suffix}" for n in ("Write", "c2rcc_msi", "Resample", "Subset", "Read")]
        assert nodes[f"Read{suffix}"].findtext("parameters/file") == f"$img{j}"
        expected = "$output" if j == 1 else f"${{output}}_{j}"
        assert nodes[w].findtext("parameters/file") == expected
        assert "POLYGON" in nodes[f"Subset{suffix}"].findtext("parameters/geoRegion")
    # eocanvas accepts it as a graph (the client re-serialises and base64-encodes it)
    from eocanvas.snap.graph import Graph

    assert Graph.from_text(text.encode()).b64encode()


def test_multi_input_graph_refuses_a_graph_it_cannot_replicate():
    with pytest.raises(ConfigError, match="Read node"):
        multi_input_graph("<graph><node id='Write'><operator>Write</operator></node></graph>", 2)


def test_result_branch():
    assert result_branch("71453f54-0f19-11f0-9831-662f84628545.nc") == 1
    assert result_branch("wks3:///job/output/71453f54-0f19-11f0-9831-662f84628545_3.nc") == 3
