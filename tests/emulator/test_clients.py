"""The unmodified hda and eocanvas clients against the emulator, endpoint by endpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from seasonal_c2rcc.emulator import FaultConfig
from seasonal_c2rcc.emulator.catalogue import DATASET_ID
from seasonal_c2rcc.flags import FLAG_MASKS

from .helpers import TILE, c2rcc_graph, lonlat_wkt, multi_graph, query, snap_process, utm_box

BOX = utm_box(10_000, 80_000, 10_000)


def wait_done(api: Any, job_id: str, timeout: float = 20.0) -> str:
    """Poll get_job until a final status (the pipeline's non-blocking pattern)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = api.get_job(job_id).status
        if status in ("successful", "failed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still not finished after {timeout} s")


def test_search_order_download_with_hda(emulator, hda_client, tmp_path: Path) -> None:
    q = query()
    r = hda_client.search(dict(q))
    assert len(r) > 5
    ids = [f["id"] for f in r.results]
    assert all(f"_T{TILE}_" in i and i.endswith(".SAFE") for i in ids)
    assert isinstance(r.volume, int) and r.volume == sum(f["properties"]["size"] for f in r.results)
    for f in r.results:
        md = f["properties"]["metadata"]
        assert md["tileId"] == TILE and md["productType"] == "S2MSI1C"
        assert 0.0 <= md["cloudCover"] <= 100.0
        assert 600e6 * 0.3 <= f["properties"]["size"] <= 800e6
    # ordering one item: POST order, HEAD 202 then 200, URL under the emulator
    url = r[0].get_download_urls()[0]
    assert url.startswith(emulator.hda_url + "api/v1/dataaccess/download/")
    # a local download through hda's own stream (HEAD + GET, size checked by the client)
    r[1].download(str(tmp_path))
    files = list(tmp_path.glob("*.zip"))
    assert [f.name for f in files] == [ids[1][:-5] + ".zip"]
    acc = emulator.accounting()
    assert [o["product_id"] for o in acc["orders"]] == ids[:2]
    polls = [p["status"] for p in acc["order_polls"]]
    assert polls.count(202) == 2 and polls.count(200) >= 2
    (dl,) = acc["downloads"]
    assert dl["bytes_sent"] == dl["content_length"] == files[0].stat().st_size
    assert not dl["truncated"]
    assert acc["searches"][0]["query"]["tileId"] == TILE
    assert acc["tokens"][0]["path"] == "/identity/gettoken"


@pytest.mark.parametrize("mode", ["total", "next"])
def test_search_paging_both_modes(emulator, hda_client, mode: str) -> None:
    emulator.set_faults(search_pagination=mode)
    q = query(startdate="2019-01-01T00:00:00Z", enddate="2020-12-31T23:59:59Z")
    r = hda_client.search(dict(q))
    searches = emulator.accounting()["searches"]
    assert len(r) > 200  # so the client had to page at least twice
    assert len(searches) == -(-len(r) // 100)
    assert len({f["id"] for f in r.results}) == len(r)
    limited = hda_client.search(dict(q), limit=7)
    assert len(limited) == 7


def test_hda_metadata_datasets_and_terms(emulator, hda_client) -> None:
    schema = hda_client.metadata(DATASET_ID)
    assert schema["required"] == ["dataset_id"]
    assert "tileId" in schema["properties"] and "cloudCover" not in schema["properties"]
    assert hda_client.dataset(DATASET_ID)["terms"] == ["Copernicus_Sentinel_License"]
    assert [d["dataset_id"] for d in hda_client.datasets()] == [DATASET_ID]
    hda_client.accept_tac(DATASET_ID)
    assert emulator.accounting()["terms"][0]["term"] == "Copernicus_Sentinel_License"


def _order(hda_client: Any, n: int = 1, **q: Any) -> list[str]:
    r = hda_client.search(query(**q))
    return [r[i].get_download_urls()[0] for i in range(n)]


def test_submit_poll_logs_results_download(emulator, hda_client, eocanvas_api,
                                           tmp_path: Path) -> None:
    (url,) = _order(hda_client)
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url})
    job = eocanvas_api.exec_process(proc)
    assert job.status == "accepted" and job.started is None
    seen = {job.status}
    deadline = time.time() + 20
    while job.status not in ("successful", "failed") and time.time() < deadline:
        job.refresh_from_api()
        seen.add(job.status)
        time.sleep(0.05)
    assert job.status == "successful"
    assert "running" in seen
    logs = eocanvas_api.get_job_logs(job)
    assert any("Preparing input: img1" in e.message for e in logs)
    assert logs[0].timestamp.tzinfo is not None
    results = eocanvas_api.get_job_results(job)
    assert len(results) == 1 and results[0].title.startswith(f"wks3:///{job.job_id}/output/")
    name = results[0].title.rsplit("/", 1)[1]
    assert name.endswith(".nc") and len(name) == 36 + 3
    results[0].download(str(tmp_path))
    ds = xr.open_dataset(tmp_path / name)
    assert ds.attrs["product_type"] == "C2RCC_S2-MSI"
    assert ds["conc_chl"].dims == ("y", "x") and ds["lat"].dims == ("y", "x")
    # 10 km box at offsets 10 km / 80 km: columns 166..333 (168 px), rows 1333..1499 (167 px)
    assert (ds.sizes["y"], ds.sizes["x"]) == (167, 168)
    acc = emulator.accounting()
    (sub,) = acc["submissions"]
    assert sub["job_id"] == job.job_id and "<graph" in sub["graph_xml"]
    assert sub["eo_input"] == [{"img1": url}]
    assert sub["eo_config"] == [{"img1": {"uncompress": False, "subPath": ""}}]
    assert sub["work_items"] == [{"write": "Write", "input_key": "img1",
                                  "product_id": sub["products"][0],
                                  "geo_region": lonlat_wkt(BOX)}]
    assert len(acc["status_polls"]) >= 2 and acc["log_fetches"] and acc["results_fetches"]
    assert acc["downloads"][-1]["kind"] == "result"


def test_blocking_run_downloads_results(emulator, hda_client, eocanvas_api,
                                        tmp_path: Path) -> None:
    (url,) = _order(hda_client)
    proc = snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url})
    proc.run(download_dir=str(tmp_path))
    files = list(tmp_path.glob("*.nc"))
    assert len(files) == 1 and files[0].stat().st_size > 10_000


@pytest.mark.parametrize("out_style", ["${output}_K", "$output_K"])
def test_multi_input_results_paging(emulator_factory, hda_client_factory, eocanvas_api_factory,
                                    tmp_path: Path, out_style: str) -> None:
    emu = emulator_factory(faults=FaultConfig(accept_delay=0.05, job_duration=0.3,
                                              results_page_size=1))
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    urls = _order(hda, 3)
    # offsets and sizes are whole 60 m pixels, so each output is exactly 100 x 100 px
    boxes = [utm_box(12_000 + 12_000 * k, 78_000, 6_000) for k in range(3)]
    graph = multi_graph([lonlat_wkt(b) for b in boxes], out_style=out_style)
    proc = snap_process(graph, {f"img{k + 1}": u for k, u in enumerate(urls)})
    job = api.exec_process(proc)
    assert wait_done(api, job.job_id) == "successful"
    results = api.get_job_results(job.job_id)
    assert len(results) == 3  # reassembled from 3 pages via next-page / prev-page items
    fetches = [f for f in emu.accounting()["results_fetches"] if f["status"] == 200]
    assert [f["page"] for f in fetches] == [1, 2, 3]
    r = hda.search(query())
    ids = [r.results[i]["id"] for i in range(3)]
    for k, res in enumerate(results):
        res.download(str(tmp_path))
        ds = xr.open_dataset(tmp_path / res.title.rsplit("/", 1)[1])
        # each Write node's file comes from its own Read's product and region
        assert ds["metadata"].attrs["source_product"] == ids[k]
        assert ds.sizes["x"] == 100
        x0 = float(ds["crs"].attrs["i2m"].split(",")[4])
        assert x0 == pytest.approx(boxes[k][0], abs=60)


def test_job_list_paging_and_service_documents(emulator_factory, hda_client_factory,
                                               eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=FaultConfig(accept_delay=0.0, job_duration=0.1,
                                              eocanvas_jobs_per_hour=50))
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    (url,) = _order(hda)
    ids = {api.exec_process(snap_process(c2rcc_graph(lonlat_wkt(BOX)), {"img1": url})).job_id
           for _ in range(12)}
    jobs = api.get_jobs()
    assert {j.job_id for j in jobs} == ids
    assert len(emu.accounting()["job_lists"]) == 2  # 10 + 2, followed via the absolute next link
    assert api.landing_page().title.startswith("WEkEO")
    assert "conformsTo" in api.get_conformance()
    assert "paths" in api.get_api()
    assert [p.process_id for p in api.get_processes()] == ["snap-function"]
    assert api.get_process("snap-function").version == "10.0.0"


def test_eocanvas_token_path(emulator, eocanvas_api) -> None:
    # eocanvas authenticates on the old /hda-broker/gettoken path
    eocanvas_api.get_processes()
    assert emulator.accounting()["tokens"][0]["path"] == "/hda-broker/gettoken"


def test_values_match_between_big_and_small_jobs(emulator_factory, hda_client_factory,
                                                 eocanvas_api_factory, tmp_path: Path) -> None:
    emu = emulator_factory(faults=FaultConfig(accept_delay=0.0, job_duration=0.1))
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    (url,) = _order(hda)
    big = utm_box(0, 70_000, 30_000)
    small = utm_box(10_000, 80_000, 10_000)
    paths = []
    for box in (big, small):
        job = api.exec_process(snap_process(c2rcc_graph(lonlat_wkt(box)), {"img1": url}))
        assert wait_done(api, job.job_id) == "successful"
        (res,) = api.get_job_results(job.job_id)
        res.download(str(tmp_path))
        paths.append(tmp_path / res.title.rsplit("/", 1)[1])
    from seasonal_c2rcc.beam_netcdf import read_beam_grid

    gb, gs = read_beam_grid(paths[0]), read_beam_grid(paths[1])
    assert gb.res_x == gs.res_x == 60.0
    c0 = round((gs.ulx - gb.ulx) / 60)
    r0 = round((gb.uly - gs.uly) / 60)
    assert (gs.ulx - gb.ulx) % 60 == 0 and c0 > 0 and r0 > 0
    b = xr.open_dataset(paths[0])
    s = xr.open_dataset(paths[1])
    for var in ("conc_chl", "rrs_B3", "c2rcc_flags", "kd489", "lat"):
        np.testing.assert_array_equal(
            b[var].values[r0 : r0 + gs.height, c0 : c0 + gs.width], s[var].values)
    flags = s["c2rcc_flags"].values
    assert (flags & FLAG_MASKS["Valid_PE"]).any()


def test_write_outside_output_dir_is_not_staged_out(emulator_factory, hda_client_factory,
                                                    eocanvas_api_factory) -> None:
    emu = emulator_factory(faults=FaultConfig(accept_delay=0.0, job_duration=0.2))
    hda = hda_client_factory(emu)
    api = eocanvas_api_factory(emu)
    urls = _order(hda, 2)
    graph = multi_graph([lonlat_wkt(BOX), lonlat_wkt(BOX)], out_style="/tmp/elsewhere_K")
    job = api.exec_process(snap_process(graph, {"img1": urls[0], "img2": urls[1]}))
    assert wait_done(api, job.job_id) == "successful"
    assert len(api.get_job_results(job.job_id)) == 1
    logs = [e.message for e in api.get_job_logs(job.job_id)]
    assert any("Write_2" in m and "will not be staged out" in m for m in logs)
