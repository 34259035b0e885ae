"""With the WEkEO emulator: a grouped job, clipped, equals a per-subtile job, clipped, on every
sub-tile pixel (the emulator's values depend only on the product and the absolute pixel).

The request goes through the same steps as in production up to the HTTP layer: the planner's region,
``fill_graph`` (and ``multi_input_graph``), eocanvas' own request body, then the emulator's
validation, graph interpretation (geoRegion -> output grid) and NetCDF4-BEAM writer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from seasonal_c2rcc.clip import clip_to_grid, result_grid, source_product
from seasonal_c2rcc.emulator.catalogue import products_for_tile
from seasonal_c2rcc.emulator.jobs import plan_job, validate_execution, write_output
from seasonal_c2rcc.graph import fill_graph
from seasonal_c2rcc.grid import load_subtiles, subtile_raster_grid
from seasonal_c2rcc.packing import multi_input_graph, plan_jobs

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = (REPO / "graphs" / "s2_c2rcc.xml").read_text()
RES = 60


def _products(n: int):
    """``n`` full-tile 30UUA products of summer 2020 from the emulator's catalogue."""
    ps = products_for_tile("30UUA", datetime(2020, 6, 1, tzinfo=UTC), datetime(2020, 8, 31, tzinfo=UTC))
    full = [p for p in ps if p.partial is None]
    return full[:n]


def _run(job, products, tmp: Path) -> dict[str, Path]:
    """Submit ``job`` to the emulator's job planner the way the backend does; write its outputs."""
    from eocanvas.api import Config, ConfigOption, Input
    from eocanvas.processes import SnapProcess
    from eocanvas.snap.graph import Graph

    graph = fill_graph(TEMPLATE, job.geo_region, RES)
    if job.n_inputs > 1:
        graph = multi_input_graph(graph, job.n_inputs)
    keys = [f"img{i + 1}" for i in range(job.n_inputs)]
    ids = [f"{i:024x}" for i in range(job.n_inputs)]
    url = "http://127.0.0.1:1/hda-broker/api/v1/dataaccess/download/"
    body = SnapProcess(
        snap_graph=Graph.from_text(graph.encode()),
        eo_input=[Input(key=k, url=url + d) for k, d in zip(keys, ids, strict=True)],
        eo_config=[Config(key=k, options=ConfigOption(uncompress=False, sub_path="")) for k in keys],
    ).prepare_inputs()
    sub = validate_execution("snap-function", body, set(ids))
    by_key = dict(zip(keys, (products[p] for p in job.products), strict=True))
    plan = plan_job(sub, by_key, max_pixels=50_000_000)
    assert plan.failure is None, plan.failure
    out = {}
    for o in plan.outputs:
        path = tmp / job.key / o.name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(o, path)
        out[by_key[o.input_key].stem] = path
    return out


@pytest.fixture(autouse=True)
def eocanvas_api():
    """eocanvas' process-wide API singleton, with dummy credentials (no network is touched:
    only the request body is built), removed again afterwards."""
    from eocanvas import API, Credentials
    from eocanvas.utils import Singleton

    saved = Singleton._instances.pop(API, None)
    API(credentials=Credentials("u", "p"))
    yield
    Singleton._instances.pop(API, None)
    if saved is not None:
        Singleton._instances[API] = saved


def _values(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as nc:
        nc.set_auto_maskandscale(False)
        return {k: np.asarray(v[...]) for k, v in nc.variables.items()}


@pytest.mark.parametrize("mode", ["per-product", "multi-input"])
def test_grouped_job_clips_to_the_per_subtile_result(tmp_path, mode):
    subs = load_subtiles(REPO / "config" / "subtiles" / "30UUA_utm.json", "EPSG:32630")
    subs = [s for s in subs if s.id in ("4", "10")]  # 20 km apart: one 30 x 30 km group at 60 m
    prods = {p.stem: p for p in _products(1 if mode == "per-product" else 2)}
    cat = {"tile": "30UUA", "products": {k: {"size": 1} for k in prods},
           "subtiles": {s.id: list(prods) for s in subs}}  # fmt: skip
    grouped = plan_jobs(cat, subs, mode=mode, resolution=RES)
    single = plan_jobs(cat, subs, mode="per-subtile", resolution=RES)
    assert len(grouped) == 1 and len(single) == 2 * len(prods)
    grouped_files = {}
    for job in grouped:
        for product, path in _run(job, prods, tmp_path / "g").items():
            grouped_files[product] = (job, path)
            # each result says which product it came from: results can be matched by content
            assert source_product(path) == product
    for job in single:
        ((product, path),) = _run(job, prods, tmp_path / "s").items()
        (sid,) = job.subtiles
        grid = subtile_raster_grid(next(s for s in subs if s.id == sid), RES)
        gjob, gpath = grouped_files[product]
        assert sid in gjob.serves[product]
        a = clip_to_grid(gpath, grid, tmp_path / "clip" / f"g_{product}_{sid}.nc")
        b = clip_to_grid(path, grid, tmp_path / "clip" / f"s_{product}_{sid}.nc")
        va, vb = _values(a), _values(b)
        assert va.keys() == vb.keys() and "conc_chl" in va
        for name in va:
            assert va[name].tobytes() == vb[name].tobytes(), (product, sid, name)
        assert va["conc_chl"].shape == (grid.height, grid.width)
        assert result_grid(a) == grid
        # the grouped result is larger than the sub-tile: the clip really cut something
        assert result_grid(gpath).width > grid.width
